//! Option 2, Run post-installation: the tenant admin, the tenant domain, the
//! platform's certificate, key and licences, and the agent's cloud URL. The
//! appliance's part is installing the files, saving config.dat and the agent;
//! the platform's part is the `post-install` platform steps. Success is
//! recorded in a state file: options 3, 4 and 6 need it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use x509_parser::time::ASN1Time;
use zeroize::Zeroizing;

use super::config_dat::{self, ConfigDat};
use super::input::{Field, Input};
use super::unit::{self, Apply, At, Session};
use crate::certs::{self, FileKind};
use crate::config::{self, DeviceId, KeyValue, TenantUrl};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::hooks;
pub use crate::installed::{InstalledFiles, LICENCE_DIR, SSL_DIR, STATE_PATH, State, now_rfc3339, read_state};
use crate::system::System;
use crate::system::fs::{Change, FileSpec};

/// In an image: copies of the files an answers file named on the build host.
pub const SECRETS_DIR: &str = "/etc/edge-setup/secrets";

const PASSWORD_SPECIALS: &str = "~!@#$%^&*()_|+-=?;:'\",.<>{}[]\\/";

/// The tenant password rule of the old post-installer. The message never
/// contains the password.
pub fn check_password(s: &str) -> Result<(), String> {
    let rule = format!("8 to 32 characters: letters, digits and {PASSWORD_SPECIALS}");
    let n = s.chars().count();
    if !(8..=32).contains(&n) {
        return Err(format!("the password must have {rule} (it has {n} characters)"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || PASSWORD_SPECIALS.contains(c))
    {
        return Err(format!(
            "the password has a character that is not allowed; it must have {rule}"
        ));
    }
    Ok(())
}

/// A Cumulocity user name: no white space and none of `/ \ + $ :`.
pub fn check_username(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 64 {
        return Err("the tenant admin username has 1 to 64 characters".into());
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/\\+$:".contains(c))
    {
        return Err(format!(
            "'{s}' is not a valid username: no spaces and none of / \\ + $ :"
        ));
    }
    Ok(())
}

/// Options 3, 4 and 6 refuse until the post-installation succeeded.
pub fn require_state(ctx: &Ctx, what: &str) -> Result<State> {
    read_state(&ctx.sys)?.ok_or_else(|| {
        Error::failure(format!("{what} needs a completed post-installation"))
            .why(format!(
                "{STATE_PATH} does not exist: option 2 has not succeeded on this appliance"
            ))
            .hint("run option 2 first: sudo edge-setup setup post-install")
    })
}

pub fn write_state(ctx: &Ctx, state: &State) -> Result<Change> {
    let json = serde_json::to_string_pretty(state).expect("the state serialises") + "\n";
    ctx.sys
        .write(Path::new(STATE_PATH), json.as_bytes(), FileSpec::root(0o644))
}

/// The files as given, read once and checked; what is installed is what was checked.
pub struct Files {
    pub certificate_source: PathBuf,
    pub key_source: PathBuf,
    pub licence_source: PathBuf,
    pub apama_source: Option<PathBuf>,
    pub certificate: Zeroizing<Vec<u8>>,
    pub key: Zeroizing<Vec<u8>>,
    pub licence: Zeroizing<Vec<u8>>,
    pub apama: Option<Zeroizing<Vec<u8>>>,
}

fn read_input(ctx: &Ctx, path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    ctx.sys.read_host_bytes(path).map_err(|e| match e.why {
        Some(why) => format!("{}: {why}", e.what),
        None => e.what,
    })
}

/// What a blank (or missing) Apama licence means for an option.
pub struct ApamaBlank {
    pub prompt: &'static str,
    /// Taken when a file leaves the key out ("" = none given).
    pub default: String,
}

/// Asks for (or reads) the certificate, key and licences and checks them
/// against `domain`. A bad file from a file source falls back to a prompt on a
/// terminal, like every other value.
pub fn gather_files(
    ctx: &Ctx,
    input: &Input,
    domain: &str,
    saved: Option<&ConfigDat>,
    apama_blank: ApamaBlank,
) -> Result<Files> {
    let current = |k: &str| saved.and_then(|d| d.get(k)).map(str::to_string);
    let now = ASN1Time::now();
    type Read = RefCell<Option<Zeroizing<Vec<u8>>>>;
    let (cert_bytes, key_bytes, licence_bytes, apama_bytes): (Read, Read, Read, Read) = Default::default();
    let leaf = RefCell::new(None);

    let certificate = input.value(
        ctx,
        &Field {
            dat_key: config_dat::SSL_CERTIFICATE,
            answers_key: "certificate",
            prompt: "SSL certificate path (.crt or .cert)",
            secret: false,
            default: current(config_dat::SSL_CERTIFICATE),
            validate: &|s| {
                let path = certs::check_path(s, FileKind::Certificate)?;
                let bytes = read_input(ctx, &path)?;
                *leaf.borrow_mut() = Some(certs::check_certificate(&path, &bytes, domain, now)?);
                *cert_bytes.borrow_mut() = Some(bytes);
                Ok(())
            },
        },
    )?;
    let leaf = leaf.into_inner().expect("validated");
    let key = input.value(
        ctx,
        &Field {
            dat_key: config_dat::SSL_KEY,
            answers_key: "key",
            prompt: "SSL certificate key path (.key)",
            secret: false,
            default: current(config_dat::SSL_KEY),
            validate: &|s| {
                let path = certs::check_path(s, FileKind::Key)?;
                let bytes = read_input(ctx, &path)?;
                certs::check_key(&path, &bytes, &leaf)?;
                *key_bytes.borrow_mut() = Some(bytes);
                Ok(())
            },
        },
    )?;
    let licence_check = |s: &str, kind: FileKind, into: &Read| -> Result<(), String> {
        let path = certs::check_path(s, kind)?;
        let bytes = read_input(ctx, &path)?;
        certs::check_licence(&path, &bytes, kind)?;
        *into.borrow_mut() = Some(bytes);
        Ok(())
    };
    let licence = input.value(
        ctx,
        &Field {
            dat_key: config_dat::C8Y_LICENSE,
            answers_key: "licence",
            prompt: "Cumulocity licence path (.licence)",
            secret: false,
            default: current(config_dat::C8Y_LICENSE),
            validate: &|s| licence_check(s, FileKind::Licence, &licence_bytes),
        },
    )?;
    let apama = input.value(
        ctx,
        &Field {
            dat_key: config_dat::APAMA_LICENSE,
            answers_key: "apama-licence",
            prompt: apama_blank.prompt,
            secret: false,
            default: Some(apama_blank.default),
            validate: &|s| {
                if s.trim().is_empty() {
                    *apama_bytes.borrow_mut() = None;
                    return Ok(());
                }
                licence_check(s, FileKind::ApamaLicence, &apama_bytes)
            },
        },
    )?;
    let apama_source = (!apama.trim().is_empty()).then(|| PathBuf::from(apama.trim()));
    Ok(Files {
        certificate_source: PathBuf::from(certificate.trim()),
        key_source: PathBuf::from(key.trim()),
        licence_source: PathBuf::from(licence.trim()),
        certificate: cert_bytes.into_inner().expect("validated"),
        key: key_bytes.into_inner().expect("validated"),
        licence: licence_bytes.into_inner().expect("validated"),
        apama: apama_source
            .as_ref()
            .map(|_| apama_bytes.into_inner().expect("validated")),
        apama_source,
    })
}

impl Files {
    /// The files to write: target, content, owner and mode (the key 0600).
    pub fn targets<'a>(&'a self, installed: &'a InstalledFiles) -> Vec<(&'static str, &'a Path, &'a [u8], FileSpec)> {
        let mut out = vec![
            (
                "the SSL certificate",
                installed.certificate.as_path(),
                self.certificate.as_slice(),
                FileSpec::root(0o644),
            ),
            (
                "the SSL certificate key",
                installed.key.as_path(),
                self.key.as_slice(),
                FileSpec::root(0o600),
            ),
            (
                "the Cumulocity licence",
                installed.licence.as_path(),
                self.licence.as_slice(),
                FileSpec::root(0o644),
            ),
        ];
        if let (Some(bytes), Some(path)) = (&self.apama, &installed.apama_licence) {
            out.push((
                "the Apama licence",
                path.as_path(),
                bytes.as_slice(),
                FileSpec::root(0o644),
            ));
        }
        out
    }

    /// Records the source paths in config.dat for reuse, as the old script did.
    /// In an image the sources are the build host's: they are copied into the
    /// image (root, 0600) under SECRETS_DIR and those copies are recorded, so
    /// no host path reaches the appliance. Their names cannot clash: each kind
    /// has its own extensions.
    pub fn record(&self, sys: &System, dat: &mut ConfigDat) -> Result<()> {
        let mut sources = vec![
            (config_dat::SSL_CERTIFICATE, &self.certificate_source, &self.certificate),
            (config_dat::SSL_KEY, &self.key_source, &self.key),
            (config_dat::C8Y_LICENSE, &self.licence_source, &self.licence),
        ];
        if let (Some(path), Some(bytes)) = (&self.apama_source, &self.apama) {
            sources.push((config_dat::APAMA_LICENSE, path, bytes));
        }
        for (key, source, bytes) in sources {
            let recorded = match (sys.is_image(), source.file_name()) {
                (true, Some(name)) => {
                    sys.ensure_dir(Path::new(SECRETS_DIR), FileSpec::root(0o700))?;
                    let copy = Path::new(SECRETS_DIR).join(name);
                    sys.write(&copy, bytes, FileSpec::root(0o600))?;
                    copy
                }
                _ => source.clone(),
            };
            dat.set(key, &recorded.to_string_lossy());
        }
        Ok(())
    }
}

/// The agent part of option 2 (and 4): option 7's logic with the cloud URL;
/// `None` turns remote management off.
pub fn configure_agent(ctx: &Ctx, url: Option<&TenantUrl>, device_id: Option<&DeviceId>) -> Result<()> {
    match url {
        Some(url) => crate::agent::enable(
            &ctx.sys,
            url,
            &crate::agent::EnableOpts {
                device_id: device_id.cloned(),
                ..Default::default()
            },
        ),
        None => crate::agent::disable(&ctx.sys),
    }
}

/// `[post-install]`; secrets only as the path of a private file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Table {
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub domain: Option<String>,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub licence: Option<PathBuf>,
    pub apama_licence: Option<PathBuf>,
    pub cloud_url: Option<String>,
}

impl unit::Table for Table {
    const NAME: &'static str = "post-install";

    fn secret_files(&self) -> Vec<&Path> {
        self.password_file
            .iter()
            .chain(&self.key)
            .map(PathBuf::as_path)
            .collect()
    }

    fn plan(&self, ctx: &Ctx, at: &At, session: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        let prepared = prepare(ctx, &at.input())?.with_device_id(session.given_device_id(ctx)?);
        session.post_install = Some(prepared.state());
        Ok(Some(Box::new(prepared)))
    }
}

impl Apply for Prepared {
    fn apply(self: Box<Self>, ctx: &Ctx, session: &mut Session) -> Result<()> {
        apply(ctx, &self)?;
        session.post_installed = true;
        Ok(())
    }
}

/// Option 3 or 6 planned against option 2's record: applied with the record read back
/// when option 2 has run before it in the same file.
pub struct WithState<P> {
    pub prepared: P,
    pub state: State,
    pub apply: fn(&Ctx, &State, &P) -> Result<()>,
}

impl<P> Apply for WithState<P> {
    fn apply(self: Box<Self>, ctx: &Ctx, session: &mut Session) -> Result<()> {
        (self.apply)(ctx, &session.applied_state(ctx, &self.state)?, &self.prepared)
    }
}

/// Validated answers of option 2, ready to apply.
pub struct Prepared {
    username: String,
    password: Zeroizing<String>,
    domain: String,
    files: Files,
    url: Option<TenantUrl>,
    /// The ID the agent registers with when none is set (the answers file's `[device-id]`).
    device_id: Option<DeviceId>,
}

impl Prepared {
    /// The device ID an answers file gives, for the agent this option enables.
    pub fn with_device_id(mut self, id: Option<DeviceId>) -> Self {
        self.device_id = id;
        self
    }

    /// The state the post-installation will record, for options validated in
    /// the same answers file before it has run.
    pub fn state(&self) -> State {
        State {
            tenant_domain: self.domain.clone(),
            tenant_username: self.username.clone(),
            files: InstalledFiles::for_domain(&self.domain, self.files.apama.is_some()),
            completed_at: now_rfc3339(),
            certificates_updated_at: None,
        }
    }
}

/// Gathers and validates every value and file; nothing is changed.
pub fn prepare(ctx: &Ctx, input: &Input) -> Result<Prepared> {
    ctx.sys.require_root("setup post-install")?;
    let state = read_state(&ctx.sys)?;
    let saved = ConfigDat::saved(&ctx.sys);
    let current = |k: &str| saved.as_ref().and_then(|d| d.get(k)).map(str::to_string);

    let username = input.value(
        ctx,
        &Field {
            dat_key: config_dat::TENANT_USERNAME,
            answers_key: "username",
            prompt: "Tenant admin username",
            secret: false,
            default: current(config_dat::TENANT_USERNAME),
            validate: &check_username,
        },
    )?;
    let password = input.value(
        ctx,
        &Field {
            dat_key: config_dat::TENANT_PASSWORD,
            answers_key: "password-file",
            prompt: "Tenant admin password",
            secret: true,
            default: None,
            validate: &check_password,
        },
    )?;
    let fixed = state.as_ref().map(|s| s.tenant_domain.clone());
    let domain = input.value(
        ctx,
        &Field {
            dat_key: config_dat::TENANT_DOMAIN,
            answers_key: "domain",
            prompt: "Tenant domain name (fully qualified; it cannot be changed later)",
            secret: false,
            default: fixed.clone().or_else(|| current(config_dat::TENANT_DOMAIN)),
            validate: &|s| {
                let d = certs::parse_domain(s)?;
                match &fixed {
                    Some(f) if *f != d => Err(format!(
                        "the tenant domain is {f} since the first post-installation and cannot change"
                    )),
                    _ => Ok(()),
                }
            },
        },
    )?;
    let domain = certs::parse_domain(&domain).expect("validated");
    let apama = ApamaBlank {
        prompt: "Apama licence path (.xml, leave blank for none)",
        default: current(config_dat::APAMA_LICENSE).unwrap_or_default(),
    };
    let files = gather_files(ctx, input, &domain, saved.as_ref(), apama)?;
    let configured = ctx
        .config()
        .ok()
        .and_then(|c| c.get(&ctx.sys, config::C8Y_URL).ok().flatten());
    let url = input.value(
        ctx,
        &Field {
            dat_key: config_dat::CLOUD_URL,
            answers_key: "cloud-url",
            prompt: "Enter cloud URL (leave blank to disable remote management)",
            secret: false,
            default: Some(configured.map(|u| u.render()).unwrap_or_default()),
            validate: &|s| {
                if s.trim().is_empty() {
                    Ok(())
                } else {
                    TenantUrl::parse(s).map(drop)
                }
            },
        },
    )?;
    let url = (!url.trim().is_empty()).then(|| TenantUrl::parse(&url).expect("validated"));
    Ok(Prepared {
        username: username.to_string(),
        password,
        domain,
        files,
        url,
        device_id: None,
    })
}

/// What the `post-install` platform steps get on stdin.
#[derive(Serialize)]
struct Payload<'a> {
    tenant_domain: &'a str,
    tenant_username: &'a str,
    tenant_password: &'a str,
    cloud_url: Option<String>,
    files: &'a InstalledFiles,
}

/// Installs the files, saves config.dat, configures the agent, runs the
/// platform steps, then records the success.
pub fn apply(ctx: &Ctx, p: &Prepared) -> Result<()> {
    // first: the agent checks DNS and its files before it writes anything, so
    // a refusal there leaves the appliance as it was
    configure_agent(ctx, p.url.as_ref(), p.device_id.as_ref())?;
    let installed = InstalledFiles::for_domain(&p.domain, p.files.apama.is_some());
    // The same post-installation done before: the platform has it, and a tenant
    // password changed since (option 6) must not be set back to this one.
    let previous = read_state(&ctx.sys)?
        .filter(|s| s.tenant_domain == p.domain && s.tenant_username == p.username && s.files == installed);
    let mut files_changed = false;
    for (what, path, bytes, spec) in p.files.targets(&installed) {
        let step = ctx.out.step(&format!("Installing {what} as {}", path.display()));
        let change = ctx.sys.write(path, bytes, spec)?;
        files_changed |= change != Change::Unchanged;
        step.done(ctx.sys.change_word(change));
    }
    if installed.apama_licence.is_none() {
        let stale = InstalledFiles::for_domain(&p.domain, true)
            .apama_licence
            .expect("asked for");
        if ctx.sys.meta(&stale)?.is_some() {
            let step = ctx
                .out
                .step(&format!("Removing the Apama licence {} (none given)", stale.display()));
            ctx.sys.remove(&stale)?;
            files_changed = true;
            step.done(ctx.sys.word("removed", "would be removed"));
        }
    }

    let step = ctx.out.step(&format!("Saving the answers to {}", config_dat::PATH));
    let mut dat = ConfigDat::default();
    dat.set(config_dat::TENANT_USERNAME, &p.username);
    if previous.is_none() {
        dat.set_password(&p.password);
    }
    dat.set(config_dat::TENANT_DOMAIN, &p.domain);
    p.files.record(&ctx.sys, &mut dat)?;
    if p.files.apama_source.is_none() {
        dat.set(config_dat::APAMA_LICENSE, "");
    }
    dat.set(
        config_dat::CLOUD_URL,
        &p.url.as_ref().map(|u| u.render()).unwrap_or_default(),
    );
    step.done(ctx.sys.change_word(dat.save_merged(&ctx.sys)?));

    if previous.is_some() && !files_changed {
        ctx.out.info(&format!(
            "The post-installation for {} was completed before with these files; the platform steps do not run again (option 6 changes the tenant password).",
            p.domain
        ));
        return Ok(());
    }
    hooks::run(
        &ctx.sys,
        "post-install",
        &Payload {
            tenant_domain: &p.domain,
            tenant_username: &p.username,
            tenant_password: &p.password,
            cloud_url: p.url.as_ref().map(|u| u.render()),
            files: &installed,
        },
    )?;

    let step = ctx
        .out
        .step(&format!("Recording the post-installation in {STATE_PATH}"));
    let state = State {
        files: installed,
        ..p.state()
    };
    step.done(ctx.sys.change_word(write_state(ctx, &state)?));
    ctx.out.info(&format!(
        "Post-installation {} for {}. Options 3 (certificates), 4 (post-upgrade) and 6 (tenant password) {} available.",
        ctx.sys.word("complete", "planned"),
        p.domain,
        ctx.sys.word("are now", "would then be")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rule() {
        assert!(check_password("Secret12").is_ok());
        assert!(check_password("~!@#$%^&*()_|+-=?;:'\",.<>{}[]\\/").is_ok());
        assert!(check_password(&"a".repeat(32)).is_ok());
        let e = check_password("Short1").unwrap_err();
        assert!(e.contains("8 to 32") && e.contains("it has 6 characters"), "{e}");
        assert!(check_password(&"a".repeat(33)).is_err());
        for bad in ["with space1", "tab\there12", "back`tick12", "ümlaut123"] {
            let e = check_password(bad).unwrap_err();
            assert!(e.contains("not allowed"), "{bad}: {e}");
            assert!(!e.contains(bad), "the message must not echo the password");
        }
    }

    #[test]
    fn username_rule() {
        assert!(check_username("admin").is_ok());
        assert!(check_username("jane.doe@example.com").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_username("a/b").is_err());
    }

    #[test]
    fn state_round_trips_without_the_password() {
        let s = State {
            tenant_domain: "edge.example.com".into(),
            tenant_username: "admin".into(),
            files: InstalledFiles::for_domain("edge.example.com", false),
            completed_at: now_rfc3339(),
            certificates_updated_at: None,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("/etc/edge-setup/ssl/edge.example.com.key"), "{json}");
        assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
    }
}
