//! `check`'s certificates area: the SSL certificate and key the post-installation (option 2, updated by
//! option 3) installed: the certificate still valid for the domain, not
//! expiring within 30 days, and the key its own.

use std::path::Path;

use x509_parser::time::ASN1Time;
use zeroize::Zeroizing;

use crate::certs;
use crate::health::{Area, Check, Probe};
use crate::installed as post_install;

const AREA: Area = Area::Certificates;

/// A certificate expiring sooner than this is reported.
const WARN_DAYS: i64 = 30;

pub fn checks(p: &Probe) -> Vec<Check> {
    let state = match post_install::read_state(p.sys) {
        Ok(Some(state)) => state,
        Ok(None) => {
            let why = "no post-installation ran here (option 2 installs them)";
            return vec![
                Check::skipped(AREA, "certificates.expiry", why),
                Check::skipped(AREA, "certificates.key", why),
            ];
        }
        Err(e) => {
            let again = || p.sys.next_command("setup post-install");
            return vec![Check::failed(AREA, "certificates.expiry", e, again)];
        }
    };
    let update = p.sys.next_command("setup certificates");
    let cert_path = &state.files.certificate;
    let pem = match p.sys.read(cert_path) {
        Ok(Some(pem)) => pem,
        Ok(None) => {
            return vec![Check::fail(
                AREA,
                "certificates.expiry",
                format!("{} is missing", p.sys.host_path(cert_path).display()),
                update,
            )];
        }
        Err(e) => return vec![Check::failed(AREA, "certificates.expiry", e, || update)],
    };
    let shown = p.sys.host_path(cert_path);
    let now = ASN1Time::now();
    let cert = match certs::check_certificate(&shown, &pem, &state.tenant_domain, now) {
        Ok(cert) => cert,
        Err(why) => return vec![Check::fail(AREA, "certificates.expiry", why, update)],
    };
    let days = (cert.not_after.timestamp() - now.timestamp()) / 86_400;
    let until = format!(
        "{} for {} expires on {} ({days} days)",
        shown.display(),
        state.tenant_domain,
        cert.not_after.to_datetime().date()
    );
    let expiry = if days < WARN_DAYS {
        Check::warn(AREA, "certificates.expiry", until, update.clone())
    } else {
        Check::ok(AREA, "certificates.expiry", until)
    };
    vec![expiry, key(p, &state.files.key, &cert, &update)]
}

fn key(p: &Probe, path: &Path, cert: &certs::Certificate, update: &str) -> Check {
    let id = "certificates.key";
    let shown = p.sys.host_path(path);
    match p.sys.read(path) {
        Ok(Some(bytes)) => {
            let pem = Zeroizing::new(bytes);
            match certs::check_key(&shown, &pem, cert) {
                Ok(()) => Check::ok(AREA, id, format!("{} is the certificate's key", shown.display())),
                Err(why) => Check::fail(AREA, id, why, update.to_string()),
            }
        }
        Ok(None) => Check::fail(AREA, id, format!("{} is missing", shown.display()), update.to_string()),
        Err(e) => Check::failed(AREA, id, e, || update.to_string()),
    }
}
