//! `edge-setup remote-access sync | list | ssh`.

use serde_json::json;

use crate::cli::{CredentialArgs, RemoteAccessAction, RemoteAccessArgs};
use crate::context::Ctx;
use zeroize::Zeroizing;

use crate::config::{C8Y_CREDENTIALS_FILE, FilePath, KeyValue};
use crate::error::{Error, Result};
use crate::remote_access::{self, Device, ssh};
use crate::system::packages;
use crate::tenant::{self, Credentials, Tenant};

/// The tenant of c8y.url with the credentials the arguments of `command` (as typed, for
/// the hint) name.
pub fn connect<'a>(ctx: &'a Ctx, args: &CredentialArgs, command: &str) -> Result<Tenant<'a>> {
    Tenant::new(&ctx.sys, credentials(ctx, args, command)?)
}

/// Standard input (two lines, or one 'Bearer' line), the file named, or the
/// file c8y.credentials-file names.
pub fn credentials(ctx: &Ctx, args: &CredentialArgs, command: &str) -> Result<Credentials> {
    if args.credentials_stdin {
        let mut text = Zeroizing::new(String::new());
        while let Some(line) = ctx.read_stdin_line(tenant::CREDENTIALS_MAX as usize)? {
            text.push_str(&line);
            text.push('\n');
            if text.starts_with("Bearer ") || text.lines().count() == 2 {
                break;
            }
        }
        return Credentials::parse(&text, "standard input");
    }
    if let Some(file) = &args.credentials {
        return tenant::credentials_file(file);
    }
    tenant::configured(&ctx.sys)?.ok_or_else(|| {
        Error::bad_input("no tenant credentials were given")
            .why(format!(
                "neither --credentials-stdin nor --credentials FILE, and {C8Y_CREDENTIALS_FILE} is not set"
            ))
            .hint(format!(
                "give them on standard input: printf '%s\\n' \"$TENANT/$USER\" \"$PASSWORD\" | sudo edge-setup {command} --credentials-stdin; \
                 or keep them in a root-only file: sudo edge-setup config set {C8Y_CREDENTIALS_FILE} /etc/edge-setup/tenant-credentials"
            ))
    })
}

pub fn run(ctx: &Ctx, args: &RemoteAccessArgs) -> Result<()> {
    match &args.action {
        RemoteAccessAction::List { credentials } => {
            let tenant = connect(ctx, credentials, "remote-access list")?;
            let device = Device::find(&tenant)?;
            let (listed, record) = remote_access::list(&device)?;
            ctx.out.result(json!({
                "managed_object": device.managed_object,
                "endpoints": remote_access::list_json(&listed, &record),
            }));
            if listed.is_empty() {
                ctx.out.data(&format!(
                    "Device {} has no remote access endpoints.",
                    device.managed_object
                ));
            }
            for l in &listed {
                let owner = match record.endpoints.iter().find(|o| o.id == l.id) {
                    Some(o) => format!("edge-setup ({})", o.user),
                    None => "not edge-setup's".to_string(),
                };
                ctx.out.data(&format!(
                    "{:<8} {:<24} {:<5} {}:{:<6} {owner}",
                    l.id, l.name, l.protocol, l.hostname, l.port
                ));
            }
            Ok(())
        }
        RemoteAccessAction::Sync { credentials, user } => {
            let command = match user {
                Some(u) => format!("remote-access sync --user {u}"),
                None => "remote-access sync".to_string(),
            };
            ctx.sys.require_root(&command)?;
            let tenant = connect(ctx, credentials, &command)?;
            let device = Device::find(&tenant)?;
            let outcomes = remote_access::locked(&ctx.sys, || remote_access::sync(&device, user.as_deref()))?;
            ctx.out
                .result(json!({"managed_object": device.managed_object, "endpoints": outcomes}));
            Ok(())
        }
        RemoteAccessAction::Ssh {
            credentials,
            user,
            port,
            rsa,
            rotate,
            save_private_key,
        } => {
            let command = format!("remote-access ssh --user {user}");
            ctx.sys.require_root(&command)?;
            let save_private_key = save_private_key
                .as_deref()
                .map(|p| {
                    FilePath::parse(&p.display().to_string())
                        .map(|f| f.0)
                        .map_err(|why| Error::bad_input("--save-private-key was refused").why(why))
                })
                .transpose()?;
            // before the first request: once the tenant holds the key, a file that
            // cannot be written leaves an endpoint whose private key nobody here has
            if let Some(file) = &save_private_key {
                ssh::check_key_file(&ctx.sys, file)?;
            }
            let tenant = connect(ctx, credentials, &command)?;
            let device = Device::find(&tenant)?;
            let opts = ssh::Options {
                user: user.clone(),
                port: *port,
                rsa: *rsa,
                rotate: *rotate,
                save_private_key,
                lock_timeout: packages::lock_timeout(&ctx.env),
            };
            let retry = format!("sudo edge-setup remote-access ssh --user {user}");
            let outcome = remote_access::locked(&ctx.sys, || ssh::ensure(&device, &retry, &opts))?;
            ctx.out
                .result(json!({"managed_object": device.managed_object, "endpoints": [outcome]}));
            Ok(())
        }
    }
}
