//! The command line, all clap types in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCandidates;

pub mod complete;

/// The version and the commit it was built from (see build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("EDGE_SETUP_COMMIT"), ")");

#[derive(Debug, Parser)]
#[command(
    name = "edge-setup",
    version = VERSION,
    about = "Set up a Cumulocity IoT Edge appliance: VNC, device identity, agent and network.",
    after_help = "Exit codes: 0 success, 1 failure, 2 bad input or usage, 3 not permitted.",
    max_term_width = 80
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Operate on the system image rooted at DIR: files are written under DIR,
    /// users and the distribution come from DIR/etc, and commands are printed
    /// for the target instead of run.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print the plan (files with owner and mode, commands) and change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Never prompt: a missing answer is an error naming the flag or key that gives it.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Print the result as one JSON object on stdout (schema in the README):
    /// what changed (or with --dry-run would change), notes, and the error if any.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Command {
    /// Whether the command changes the system (and so says "Nothing to
    /// change" when it did not); queries and the interactive menu do not.
    pub fn mutates(&self) -> bool {
        match self {
            Command::DeviceId(a) => !matches!(a.action, None | Some(DeviceIdAction::Show)),
            Command::Config(a) => matches!(a.action, ConfigAction::Set { .. } | ConfigAction::Unset { .. }),
            Command::RemoteConnectivity(a) => !matches!(a.action, None | Some(RemoteConnectivityAction::Status)),
            Command::Vnc(_) => true,
            // the privileged part answers the user's run, which says it
            Command::VncUser(a) => !a.system_part,
            Command::Setup(a) => a.answers.is_some() || !matches!(a.option, None | Some(SetupCommand::Status)),
            Command::Image(_) => true,
            Command::Register(_) => true,
            Command::RemoteAccess(a) => !matches!(a.action, RemoteAccessAction::List { .. }),
            Command::Completions(_) => false,
            Command::Check(a) => a.fix,
            Command::Diag(a) => matches!(a.action, DiagAction::Upload { .. }),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show, set or generate the Edge device ID registered in Cumulocity.
    DeviceId(DeviceIdArgs),
    /// Get, set, unset or list configuration keys.
    Config(ConfigArgs),
    /// Connect the Edge agent to a Cumulocity tenant (remote management), or stop it.
    RemoteConnectivity(RemoteConnectivityArgs),
    /// Install the VNC components (TigerVNC, desktop, firewall, sudoers rule); run as root.
    Vnc(VncArgs),
    /// Enable a user for VNC: password, display, session (run it as that user).
    VncUser(VncUserArgs),
    /// The post-installation wizard: a menu, or one option as a command.
    Setup(SetupArgs),
    /// Golden images: prepare one for cloning, and each clone's first boot.
    Image(ImageArgs),
    /// Register this device in the tenant of c8y.url: request, accept, wait.
    Register(RegisterArgs),
    /// This device's Cloud Remote Access endpoints in the tenant: one VNC
    /// endpoint per VNC user, SSH endpoints with a key made here.
    RemoteAccess(RemoteAccessArgs),
    /// Print the completion script for SHELL on stdout (the packages install bash's, zsh's and fish's).
    Completions(CompletionsArgs),
    /// Check the appliance: each finding with the command that fixes it; --fix
    /// applies edge-setup's own safe fixes.
    Check(CheckArgs),
    /// Diagnostics: collect a bundle of the appliance's state for support, or
    /// attach it to the device in the tenant.
    Diag(DiagArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when no check failed (warnings do not fail unless --strict), 1 when \
one did. As an ordinary user it checks your own VNC session; root checks everything."
)]
pub struct CheckArgs {
    /// Only these areas (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "AREA,...")]
    pub only: Vec<crate::health::Area>,
    /// Apply the fixes that are edge-setup's own (restart a session, remove a stale
    /// X lock or socket, restore a password file's owner and mode, the /etc/hosts
    /// line, the sudoers rule, the tenant's endpoints), then check again.
    #[arg(long)]
    pub fix: bool,
    /// Fail on warnings too.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct DiagArgs {
    #[command(subcommand)]
    pub action: DiagAction,
}

#[derive(Debug, Subcommand)]
pub enum DiagAction {
    /// Collect versions, checks, configuration (secrets redacted), mappings, units,
    /// journals, logs, network, firewall, disk and time into one .tar.gz (root's, 0600),
    /// then run the diagnostic plugins.
    Collect {
        /// Where to write the bundle, a path on this host (default: a new file in
        /// /var/lib/edge-setup/diag; needed with --root).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// How far back journal excerpts go, like 2h, 30m or 1d.
        #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = crate::diag::parse_since)]
        since: crate::diag::Since,
    },
    /// Attach a bundle to this device in the tenant: an event, then the bundle as its binary.
    #[command(
        after_help = "FILE is a regular file (not a link) of gzip data, at most 50 MiB. The tenant \
user needs the permission Events: admin (ROLE_EVENT_ADMIN); the device is the one 'edge-setup \
device-id' shows, registered in the tenant of c8y.url."
    )]
    Upload {
        /// The bundle 'diag collect' wrote.
        #[arg(value_name = "FILE")]
        bundle: PathBuf,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
}

/// Where the tenant credentials come from. Never the command line: a line
/// TENANT/USER and a line with the password, or one line 'Bearer TOKEN'.
#[derive(Debug, Args, Clone, Default)]
pub struct CredentialArgs {
    /// Read the tenant credentials from standard input (TENANT/USER, then the
    /// password; or one line 'Bearer TOKEN').
    #[arg(long, conflicts_with = "credentials")]
    pub credentials_stdin: bool,
    /// Read them from FILE, root's and mode 0600, in the same form (default:
    /// the file c8y.credentials-file names).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "The device ID is the one 'edge-setup device-id' shows; the tenant is c8y.url.")]
pub struct RegisterArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Accept the request once the device has asked for its credentials
    /// (PENDING_ACCEPTANCE), as Device Management > Registration > Accept does.
    #[arg(long)]
    pub accept: bool,
    /// Wait until the device is accepted or registered.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after SECONDS.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, requires = "wait",
          value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub timeout: u32,
}

#[derive(Debug, Args)]
pub struct RemoteAccessArgs {
    #[command(subcommand)]
    pub action: RemoteAccessAction,
}

#[derive(Debug, Subcommand)]
pub enum RemoteAccessAction {
    /// Make the tenant's VNC endpoints match this appliance: one per user with a
    /// display ('VNC NAME (:N)', 127.0.0.1, port 5900+N, the user's password);
    /// edge-setup's endpoints of users without a display are deleted, others
    /// are never touched.
    Sync {
        #[command(flatten)]
        credentials: CredentialArgs,
        /// Only this user's endpoint.
        #[arg(long, value_name = "NAME", add = ArgValueCandidates::new(complete::users))]
        user: Option<String>,
    },
    /// List the device's endpoints; those edge-setup manages are marked.
    List {
        #[command(flatten)]
        credentials: CredentialArgs,
    },
    /// An SSH endpoint that logs in as a user with a key pair made here: the SSH
    /// server installed and started, the public key authorized for the user,
    /// the private key and the host key sent in the endpoint.
    Ssh {
        #[command(flatten)]
        credentials: CredentialArgs,
        /// The user the endpoint logs in as.
        #[arg(long, value_name = "NAME", add = ArgValueCandidates::new(complete::users))]
        user: String,
        /// The SSH server's port on this device.
        #[arg(long, default_value_t = 22, value_parser = clap::value_parser!(u16).range(1..))]
        port: u16,
        /// An RSA key in PEM form instead of ED25519, for tenants that take no OpenSSH keys.
        #[arg(long)]
        rsa: bool,
        /// Make a new key pair even when the endpoint is up to date.
        #[arg(long)]
        rotate: bool,
        /// Also keep the private key in FILE (root's, mode 0600); by default it
        /// leaves this device only in the request to the tenant.
        #[arg(long, value_name = "FILE")]
        save_private_key: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub action: ImageAction,
}

#[derive(Debug, Subcommand)]
pub enum ImageAction {
    /// Make this machine (or --root DIR) ready to be captured as a golden image:
    /// empty /etc/machine-id, remove the device ID and edge-setup's per-machine
    /// records, enable edge-setup-firstboot.service. SSH host keys and users'
    /// VNC passwords are listed, and removed only when asked.
    Prepare {
        /// Also remove the SSH host keys (cloud-init, or else the first boot, makes new ones).
        #[arg(long)]
        ssh_host_keys: bool,
        /// Also remove the users' VNC password files and disable their sessions
        /// (their displays are kept for a new password).
        #[arg(long)]
        vnc_passwords: bool,
    },
    /// The first boot of an appliance made from a prepared image (run by
    /// edge-setup-firstboot.service): SSH host keys if none, the host name for the
    /// VNC sessions, the device ID, then every /etc/edge-setup/answers.d/*.toml, all
    /// checked before any is applied.
    FirstBoot,
}

#[derive(Debug, Args)]
#[command(
    after_help = "For example: edge-setup completions bash > ~/.local/share/bash-completion/completions/edge-setup"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SetupArgs {
    /// Run every option this answers file (TOML, see examples/appliance.toml) configures, in menu order.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// With --answers: configure the network even over SSH (as [network] allow-remote = true).
    #[arg(long, requires = "answers")]
    pub force: bool,
    #[command(subcommand)]
    pub option: Option<SetupCommand>,
}

/// Where an option takes its values from, when not from the console.
#[derive(Debug, Args, Clone, Default)]
pub struct OptionInput {
    /// Take the values from a config.dat file of the old post-installer (key=value).
    #[arg(long, value_name = "FILE", conflicts_with = "answers")]
    pub config_dat: Option<PathBuf>,
    /// Take the values from this option's table of an answers file (TOML).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// 1 Configure network: a static IPv4 address, gateway and DNS server.
    Network(NetworkArgs),
    /// 7 Configure Edge Agent: the cloud URL (blank disables remote management).
    Agent(AnswersArg),
    /// 2 Run post-installation: tenant admin, domain, SSL certificate and key, licences, cloud URL.
    PostInstall(OptionInput),
    /// 3 Update license and SSL certificates (for the domain set by post-install).
    Certificates(CertificatesArgs),
    /// 4 Run post-upgrade: re-apply the saved network and agent configuration.
    PostUpgrade(PostUpgradeArgs),
    /// 5 Expand data disk size, after the disk was grown on the hypervisor.
    ExpandDisk,
    /// 6 Update tenant password.
    TenantPassword(OptionInput),
    /// Install the VNC components (as `edge-setup vnc`), or from the [vnc] table.
    Vnc(AnswersArg),
    /// Enable VNC for a user (as `edge-setup vnc-user`), or for each [[vnc-user]] entry.
    VncUser(AnswersArg),
    /// Show or set the device ID (as `edge-setup device-id`).
    DeviceId(AnswersArg),
    /// The appliance's status: remote connectivity, device ID, DNS, agent service.
    Status,
    /// 14 Set configuration keys (as `edge-setup config set`), or each key of the [config] table.
    Config(AnswersArg),
    /// 13 Register this device and sync remote access (register --accept --wait,
    /// then remote-access sync); asks for the tenant user without credentials.
    RemoteAccess(CredentialArgs),
}

#[derive(Debug, Args)]
pub struct NetworkArgs {
    #[command(flatten)]
    pub input: OptionInput,
    /// The interface to configure (default: the first ethernet interface that is up).
    #[arg(long, value_name = "NAME", add = ArgValueCandidates::new(complete::interfaces))]
    pub interface: Option<String>,
    /// The network stack to write for (default: detected).
    #[arg(long, value_parser = ["networkmanager", "networkd", "ifupdown", "ifcfg"])]
    pub stack: Option<String>,
    /// Restore the network files as they were before the last change.
    #[arg(long, conflicts_with_all = ["interface", "stack", "config_dat", "answers"])]
    pub rollback: bool,
    /// Run even over SSH (the change can cut the connection).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CertificatesArgs {
    #[command(flatten)]
    pub input: OptionInput,
    /// Put back the files the last update replaced.
    #[arg(long, conflicts_with_all = ["config_dat", "answers"])]
    pub rollback: bool,
}

#[derive(Debug, Args)]
pub struct PostUpgradeArgs {
    /// Run even over SSH (re-applying the network can cut the connection).
    #[arg(long)]
    pub force: bool,
}

/// An option that reads its table of an answers file, or asks on the console.
#[derive(Debug, Args)]
pub struct AnswersArg {
    /// Take the values from this option's table of an answers file (TOML).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeviceIdArgs {
    #[command(subcommand)]
    pub action: Option<DeviceIdAction>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceIdAction {
    /// Print the device ID (the default action).
    Show,
    /// Set the device ID (1 to 64 letters, digits, '-', '_', '.', ':').
    Set {
        /// The new device ID.
        id: String,
    },
    /// Derive a stable ID from this machine (DMI serial, else /etc/machine-id).
    Generate {
        /// Replace an ID that is already set.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the value of a key.
    Get {
        /// The key, like vnc.geometry ('edge-setup config list --doc' lists them).
        #[arg(add = ArgValueCandidates::new(complete::config_keys))]
        key: String,
    },
    /// Validate and store a value (lists comma-separated).
    Set {
        /// The key, like vnc.geometry ('edge-setup config list --doc' lists them).
        #[arg(add = ArgValueCandidates::new(complete::config_keys))]
        key: String,
        /// The value; the key's parser checks it and says what it expects.
        value: String,
    },
    /// Remove a key (it falls back to its default).
    Unset {
        /// The key, like vnc.geometry.
        #[arg(add = ArgValueCandidates::new(complete::config_keys))]
        key: String,
    },
    /// List the keys that are set.
    List {
        /// Also list keys that are not set, with their defaults.
        #[arg(long)]
        all: bool,
        /// Describe every key with an example.
        #[arg(long)]
        doc: bool,
    },
}

#[derive(Debug, Args)]
pub struct RemoteConnectivityArgs {
    #[command(subcommand)]
    pub action: Option<RemoteConnectivityAction>,
}

#[derive(Debug, Subcommand)]
pub enum RemoteConnectivityAction {
    /// Store the tenant URL, enable remote connectivity and restart the agent.
    Enable {
        /// The tenant URL: https://host[:port] or a bare host (default: c8y.url).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Accept an unencrypted http:// URL.
        #[arg(long)]
        insecure: bool,
        /// Enable even though no DNS server is configured.
        #[arg(long)]
        force: bool,
    },
    /// Disable remote connectivity; the tenant URL is kept for a later enable.
    Disable,
    /// Show whether remote connectivity is enabled, the tenant, DNS and the agent
    /// (the default action; with --json as data).
    Status,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct VncArgs {
    #[command(subcommand)]
    pub action: Option<VncAction>,
    /// Install from a directory of package files (.deb or .rpm) made by 'edge-setup vnc bundle DIR'.
    #[arg(long, value_name = "DIR", conflicts_with = "uninstall")]
    pub offline: Option<PathBuf>,
    /// Remove what 'edge-setup vnc' added: the packages it installed, its files, the firewall
    /// and sudoers rules. Users' VNC password files are kept.
    #[arg(long)]
    pub uninstall: bool,
    /// With --uninstall: also remove the users' VNC password files.
    #[arg(long, requires = "uninstall")]
    pub purge: bool,
}

#[derive(Debug, Subcommand)]
pub enum VncAction {
    /// Rewrite the sudoers rule of an earlier 'edge-setup vnc' so that it names this binary
    /// (and any earlier edge-setup it names that is still installed); the packages run it on
    /// install and upgrade. Without a rule it changes nothing: it never creates one.
    RefreshSudoers,
    /// Download the VNC packages and all their dependencies into DIR, for 'edge-setup vnc --offline DIR'
    /// on an appliance without network. Run it on a machine with the same distribution and a network.
    Bundle {
        /// The directory to fill (created when missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(
    after_help = "Run it as yourself to enable yourself (the privileged part runs through sudo for members \
of the vncusers group), or 'sudo edge-setup vnc-user --user NAME' to enable someone else."
)]
pub struct VncUserArgs {
    /// The user to enable (root only; default: the user who ran sudo).
    #[arg(long, value_name = "NAME", add = ArgValueCandidates::new(complete::users))]
    pub user: Option<String>,
    /// Read the password from the first line of standard input and an optional
    /// view-only password from the second, like 'vncpasswd -f'.
    #[arg(long, conflicts_with = "remove")]
    pub password_stdin: bool,
    /// Take the user's VNC access away: stop the session, free the display, delete the password file.
    #[arg(long)]
    pub remove: bool,
    /// The privileged part, run by vnc-user itself through sudo; the user comes from SUDO_UID.
    #[arg(long = "system-part", hide = true, conflicts_with_all = ["user", "password_stdin"])]
    pub system_part: bool,
    /// With --system-part: restart the running session, whose password file or settings
    /// the user part has just changed.
    #[arg(long, hide = true, requires = "system_part", conflicts_with = "remove")]
    pub restart: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let a = Cli::try_parse_from(["edge-setup", "--root", "/img", "device-id"]).unwrap();
        let b = Cli::try_parse_from(["edge-setup", "device-id", "--root", "/img"]).unwrap();
        assert_eq!(a.global.root, b.global.root);
    }

    /// Every command, with the path of names that reaches it.
    fn all(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        let path = format!("{path} {}", cmd.get_name()).trim().to_string();
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            all(sub, &path, out);
        }
    }

    #[test]
    fn every_help_fits_80_columns_and_every_argument_is_described() {
        let mut cmds = Vec::new();
        let mut root = Cli::command();
        root.build();
        all(&root, "", &mut cmds);
        assert!(cmds.len() > 20, "{}", cmds.len());
        for (path, mut cmd) in cmds {
            if cmd.is_hide_set() || path.ends_with(" help") {
                continue;
            }
            assert!(cmd.get_about().is_some(), "{path} has no description");
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{path}: argument {id} has no description");
            }
            let help = cmd.render_help().to_string();
            for line in help.lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{path} --help has a line over 80 columns:\n{line}"
                );
            }
        }
    }
}
