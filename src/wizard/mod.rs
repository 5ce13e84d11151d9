//! The post-installation wizard: the old script's menu, each option also a
//! command, and answers files that run every configured option for fleets.

pub mod agent;
pub mod certificates;
pub mod config_dat;
pub mod device_id;
pub mod expand_disk;
pub mod input;
pub mod network;
pub mod post_install;
pub mod post_upgrade;
pub mod tenant_password;
pub mod vnc;

use std::path::Path;

use zeroize::Zeroizing;

use crate::cli::{OptionInput, SetupArgs, SetupOption};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::prompt::Question;
use config_dat::ConfigDat;
use input::{Input, Source};

/// The menu's entries in order: the old script's numbers, then edge-setup's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Network,
    PostInstall,
    Certificates,
    PostUpgrade,
    ExpandDisk,
    TenantPassword,
    Agent,
    Exit,
    Vnc,
    VncUser,
    DeviceId,
    Status,
}

impl Entry {
    /// Every entry, in the order shown (by number).
    pub const MENU: [Entry; 12] = [
        Entry::Network,
        Entry::PostInstall,
        Entry::Certificates,
        Entry::PostUpgrade,
        Entry::ExpandDisk,
        Entry::TenantPassword,
        Entry::Agent,
        Entry::Exit,
        Entry::Vnc,
        Entry::VncUser,
        Entry::DeviceId,
        Entry::Status,
    ];

    pub fn number(self) -> u32 {
        match self {
            Entry::Network => 1,
            Entry::PostInstall => 2,
            Entry::Certificates => 3,
            Entry::PostUpgrade => 4,
            Entry::ExpandDisk => 5,
            Entry::TenantPassword => 6,
            Entry::Agent => 7,
            Entry::Exit => 8,
            Entry::Vnc => 9,
            Entry::VncUser => 10,
            Entry::DeviceId => 11,
            Entry::Status => 12,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Entry::Network => "Configure network",
            Entry::PostInstall => "Run post-installation",
            Entry::Certificates => "Update license and SSL certificates",
            Entry::PostUpgrade => "Run post-upgrade",
            Entry::ExpandDisk => "Expand data disk size",
            Entry::TenantPassword => "Update tenant password",
            Entry::Agent => "Configure Edge Agent",
            Entry::Exit => "Exit",
            Entry::Vnc => "Install VNC components",
            Entry::VncUser => "Enable VNC for a user",
            Entry::DeviceId => "Show/set the device ID",
            Entry::Status => "Status",
        }
    }
}

/// The tables an answers file may have, with their keys, in the order of
/// examples/appliance.toml; `run_answers` applies them in menu order.
pub const ANSWER_TABLES: &[(&str, &[&str])] = &[
    (
        "network",
        &["interface", "ip", "netmask", "gateway", "dns", "stack", "allow-remote"],
    ),
    (
        "post-install",
        &[
            "username",
            "password-file",
            "domain",
            "certificate",
            "key",
            "licence",
            "apama-licence",
            "cloud-url",
        ],
    ),
    ("certificates", &["certificate", "key", "licence", "apama-licence"]),
    ("tenant-password", &["password-file"]),
    ("device-id", &["id", "generate"]),
    ("agent", &["url", "insecure", "force"]),
    ("vnc", &["install", "offline", "listen"]),
    ("vnc-user", &["user", "password-file"]),
];

const NONINTERACTIVE: &str =
    "edge-setup setup --answers FILE (every option), or one option: edge-setup setup network --config-dat FILE";

pub fn run(ctx: &Ctx, args: &SetupArgs) -> Result<()> {
    if let Some(path) = &args.answers {
        return run_answers(ctx, path, args.force);
    }
    match &args.option {
        Some(SetupOption::Network(a)) => {
            if a.rollback {
                return network::rollback(ctx, a.force);
            }
            let stack = a
                .stack
                .as_deref()
                .map(|s| crate::network::Stack::parse(s).expect("clap checked the value"));
            let opts = network::Options {
                interface: a.interface.as_deref(),
                stack,
                force: a.force,
            };
            network_option(ctx, &a.input, &opts)
        }
        Some(SetupOption::Agent(a)) => {
            let given = OptionInput {
                config_dat: None,
                answers: a.answers.clone(),
            };
            agent_option(ctx, &given)
        }
        Some(SetupOption::Status) => status(ctx),
        Some(SetupOption::Vnc(a)) => match &a.answers {
            Some(path) => {
                let answers = load_answers(ctx, path)?;
                let origin = format!("{} [vnc]", path.display());
                let table = answers.get("vnc").and_then(|v| v.as_table());
                match table.map(|t| vnc::prepare_install(t, &origin)).transpose()?.flatten() {
                    Some(install) => vnc::apply_install(ctx, &install),
                    None => Err(Error::bad_input(format!(
                        "{origin}: the table does not set install = true"
                    ))),
                }
            }
            None => vnc::install_interactive(ctx),
        },
        Some(SetupOption::VncUser(a)) => match &a.answers {
            Some(path) => {
                let answers = load_answers(ctx, path)?;
                let origin = format!("{} [[vnc-user]]", path.display());
                let users = match answers.get("vnc-user") {
                    Some(v) => vnc::prepare_users(ctx, v, &origin)?,
                    None => {
                        return Err(Error::bad_input(format!(
                            "{} has no [[vnc-user]] entries",
                            path.display()
                        )));
                    }
                };
                vnc::apply_users(ctx, users)
            }
            None => vnc::user_interactive(ctx),
        },
        Some(SetupOption::PostInstall(input)) => post_install_option(ctx, input),
        Some(SetupOption::Certificates(a)) if a.rollback => {
            ctx.require_root("setup certificates --rollback")?;
            let state = post_install::require_state(ctx, "Rolling back the certificates")?;
            certificates::rollback(ctx, &state)
        }
        Some(SetupOption::Certificates(a)) => certificates_option(ctx, &a.input),
        Some(SetupOption::PostUpgrade(a)) => post_upgrade::run(ctx, a.force),
        Some(SetupOption::ExpandDisk) => expand_disk::run(ctx),
        Some(SetupOption::TenantPassword(input)) => tenant_password_option(ctx, input),
        Some(SetupOption::DeviceId(a)) => match &a.answers {
            Some(path) => {
                let table = load_answers(ctx, path)?;
                device_id::from_table(
                    ctx,
                    table.get("device-id").and_then(|v| v.as_table()),
                    &path.display().to_string(),
                )
            }
            None => device_id::interactive(ctx),
        },
        None => menu(ctx),
    }
}

fn network_option(ctx: &Ctx, given: &OptionInput, opts: &network::Options) -> Result<()> {
    with_input(ctx, given, "network", true, |input| {
        let prepared = network::prepare(ctx, input, opts)?;
        network::apply(ctx, &prepared)
    })
}

fn agent_option(ctx: &Ctx, given: &OptionInput) -> Result<()> {
    with_input(ctx, given, "agent", false, |input| {
        let prepared = agent::prepare(ctx, input)?;
        agent::apply(ctx, &prepared)
    })
}

fn post_install_option(ctx: &Ctx, given: &OptionInput) -> Result<()> {
    ctx.require_root("setup post-install")?;
    with_input(ctx, given, "post-install", true, |input| {
        let prepared = post_install::prepare(ctx, input)?;
        post_install::apply(ctx, &prepared)
    })
}

/// Options 3 and 6 check that option 2 succeeded before asking anything.
fn certificates_option(ctx: &Ctx, given: &OptionInput) -> Result<()> {
    ctx.require_root("setup certificates")?;
    let state = post_install::require_state(ctx, "Updating the licence and SSL certificates")?;
    with_input(ctx, given, "certificates", true, |input| {
        let prepared = certificates::prepare(ctx, input, &state)?;
        certificates::apply(ctx, &state, &prepared)
    })
}

fn tenant_password_option(ctx: &Ctx, given: &OptionInput) -> Result<()> {
    ctx.require_root("setup tenant-password")?;
    let state = post_install::require_state(ctx, "Updating the tenant password")?;
    with_input(ctx, given, "tenant-password", false, |input| {
        let prepared = tenant_password::prepare(ctx, input)?;
        tenant_password::apply(ctx, &state, &prepared)
    })
}

/// Runs `f` with the option's input: `--config-dat`, `--answers`, or (on a
/// terminal, for options that offer it) the old `[F]`/`[C]` question.
fn with_input(
    ctx: &Ctx,
    given: &OptionInput,
    table: &str,
    offers_file: bool,
    f: impl FnOnce(&Input) -> Result<()>,
) -> Result<()> {
    let interactive_terminal = !ctx.yes && ctx.prompt_is_interactive();
    let noninteractive =
        format!("edge-setup setup {table} --config-dat FILE, or --answers FILE with a [{table}] table");
    if let Some(path) = &given.config_dat {
        let dat = read_config_dat(ctx, path)?;
        let input = Input {
            source: Source::ConfigDat(&dat),
            interactive: false,
            noninteractive: &noninteractive,
            origin: path.display().to_string(),
        };
        return f(&input);
    }
    if let Some(path) = &given.answers {
        let answers = load_answers(ctx, path)?;
        let empty = toml::Table::new();
        let t = answers.get(table).and_then(|v| v.as_table()).unwrap_or(&empty);
        let input = Input {
            source: Source::Answers(t),
            interactive: false,
            noninteractive: &noninteractive,
            origin: format!("{} [{table}]", path.display()),
        };
        return f(&input);
    }
    if offers_file && interactive_terminal {
        let q = Question {
            prompt: "Enter [F] to take input from file or [C] to take input from console",
            noninteractive: &noninteractive,
        };
        let choice = ctx
            .prompt
            .text(q, Some("C"), &|s| match s.to_ascii_uppercase().as_str() {
                "F" | "C" => Ok(()),
                _ => Err("enter F or C".into()),
            })?;
        if choice.eq_ignore_ascii_case("F") {
            let default = ctx.sys.host_path(Path::new(config_dat::PATH)).display().to_string();
            let q = Question {
                prompt: "Input file",
                noninteractive: &noninteractive,
            };
            let path = ctx.prompt.text(q, Some(&default), &|s| {
                if s.is_empty() {
                    Err("enter a path".into())
                } else {
                    Ok(())
                }
            })?;
            let dat = read_config_dat(ctx, Path::new(&path))?;
            let input = Input {
                source: Source::ConfigDat(&dat),
                interactive: true,
                noninteractive: &noninteractive,
                origin: path,
            };
            return f(&input);
        }
    }
    let input = Input {
        source: Source::Console,
        interactive: interactive_terminal,
        noninteractive: &noninteractive,
        origin: "the console".to_string(),
    };
    f(&input)
}

fn read_config_dat(ctx: &Ctx, path: &Path) -> Result<ConfigDat> {
    let text = Zeroizing::new(ctx.sys.read_host_file(path)?);
    ConfigDat::parse(&text).map_err(|(line, why)| {
        Error::bad_input(format!("{}:{line}: cannot read this line", path.display()))
            .why(why)
            .hint("fix the line (key=value, as the post-installer wrote it) and run the command again")
    })
}

/// Reads an answers file: TOML, one table per option, no unknown tables.
fn load_answers(ctx: &Ctx, path: &Path) -> Result<toml::Table> {
    let text = Zeroizing::new(ctx.sys.read_host_file(path)?);
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, col) = e
            .span()
            .map(|s| crate::config::line_col(&text, s.start))
            .unwrap_or((1, 1));
        Error::bad_input(format!(
            "{}:{line}:{col}: the answers file is not valid TOML",
            path.display()
        ))
        .why(e.message())
    })?;
    for (name, value) in &table {
        let Some((_, keys)) = ANSWER_TABLES.iter().find(|(t, _)| t == name) else {
            let names: Vec<&str> = ANSWER_TABLES.iter().map(|(t, _)| *t).collect();
            return Err(Error::bad_input(format!("{}: unknown table [{name}]", path.display()))
                .why(format!("an answers file has the tables {}", names.join(", ")))
                .hint("see examples/appliance.toml for every table and key"));
        };
        // [[vnc-user]] is an array of tables, one per user
        let tables: Vec<&toml::Table> = match value {
            toml::Value::Table(t) => vec![t],
            toml::Value::Array(a) if a.iter().all(toml::Value::is_table) => {
                a.iter().filter_map(toml::Value::as_table).collect()
            }
            _ => {
                return Err(Error::bad_input(format!(
                    "{}: '{name}' must be a table ([{name}])",
                    path.display()
                )));
            }
        };
        for t in tables {
            if let Some(k) = t.keys().find(|k| !keys.contains(&k.as_str())) {
                return Err(
                    Error::bad_input(format!("{}: unknown key '{k}' in [{name}]", path.display()))
                        .why(format!("[{name}] has the keys {}", keys.join(", ")))
                        .hint("see examples/appliance.toml"),
                );
            }
        }
    }
    Ok(table)
}

/// `setup --answers FILE`: plans every configured option (a dry run through the
/// same code, each option seeing what the ones before it would do), and only
/// when the whole plan holds applies them in order: a refused value, a missing
/// user or file, anywhere in the file, changes nothing.
fn run_answers(ctx: &Ctx, path: &Path, force: bool) -> Result<()> {
    let answers = load_answers(ctx, path)?;
    if answers.is_empty() {
        return Err(Error::bad_input(format!("{} configures nothing", path.display()))
            .why("it has no table")
            .hint("see examples/appliance.toml for every table and key"));
    }
    if !ctx.sys.dry_run() {
        apply_answers(&ctx.planning(), path, &answers, force).map_err(|e| {
            let next = e.hint.clone().map_or_else(String::new, |h| format!("{h}; "));
            e.hint(format!(
                "{next}nothing was changed: every option is checked before any is applied"
            ))
        })?;
    }
    apply_answers(ctx, path, &answers, force)
}

fn apply_answers(ctx: &Ctx, path: &Path, answers: &toml::Table, force: bool) -> Result<()> {
    let origin = |t: &str| format!("{} [{t}]", path.display());
    let input_of = |name: &str| {
        answers.get(name).and_then(|v| v.as_table()).map(|t| Input {
            source: Source::Answers(t),
            interactive: false,
            noninteractive: "the answers file",
            origin: origin(name),
        })
    };
    let network_prepared = match input_of("network") {
        Some(input) => Some(network::prepare(
            ctx,
            &input,
            &network::Options {
                force,
                ..Default::default()
            },
        )?),
        None => None,
    };
    // [device-id] runs in its menu place, last; an ID it sets is the one options
    // 2 and 7 register the agent with, when none is set yet.
    let device_table = answers.get("device-id").and_then(|v| v.as_table());
    let given_id = match device_table {
        Some(t) => match device_id::plan(t, &origin("device-id"))? {
            Some(device_id::Plan::Set(id)) => Some(id),
            _ => None,
        },
        None => None,
    };
    let post_install_prepared = match input_of("post-install") {
        Some(input) => Some(post_install::prepare(ctx, &input)?.with_device_id(given_id.clone())),
        None => None,
    };
    // Options 3 and 6 need option 2: done before, or in this same file.
    let needs_state = ["certificates", "tenant-password"]
        .iter()
        .any(|t| answers.contains_key(*t));
    let state = match (&post_install_prepared, needs_state) {
        (Some(p), _) => Some(p.state()),
        (None, true) => Some(post_install::require_state(
            ctx,
            "The [certificates] and [tenant-password] tables",
        )?),
        (None, false) => None,
    };
    let certificates_prepared = match (input_of("certificates"), &state) {
        (Some(input), Some(state)) => Some(certificates::prepare(ctx, &input, state)?),
        _ => None,
    };
    let password_prepared = match input_of("tenant-password") {
        Some(input) => Some(tenant_password::prepare(ctx, &input)?),
        None => None,
    };
    let agent_prepared = match input_of("agent") {
        Some(input) => Some(agent::prepare(ctx, &input)?.with_device_id(given_id)),
        None => None,
    };
    let vnc_install = match answers.get("vnc").and_then(|v| v.as_table()) {
        Some(t) => vnc::prepare_install(t, &origin("vnc"))?,
        None => None,
    };
    let vnc_users = match answers.get("vnc-user") {
        Some(v) => vnc::prepare_users(ctx, v, &origin("vnc-user"))?,
        None => Vec::new(),
    };
    if let Some(p) = &network_prepared {
        ctx.out.info("== 1 Configure network");
        network::apply(ctx, p)?;
    }
    if let Some(p) = &post_install_prepared {
        ctx.out.info("== 2 Run post-installation");
        post_install::apply(ctx, p)?;
    }
    // After option 2 ran, the recorded state is the one to use.
    let state = match &post_install_prepared {
        Some(_) => post_install::read_state(&ctx.sys)?.or(state),
        None => state,
    };
    if let (Some(p), Some(state)) = (&certificates_prepared, &state) {
        ctx.out.info("== 3 Update license and SSL certificates");
        certificates::apply(ctx, state, p)?;
    }
    if let (Some(p), Some(state)) = (&password_prepared, &state) {
        ctx.out.info("== 6 Update tenant password");
        tenant_password::apply(ctx, state, p)?;
    }
    if let Some(p) = &agent_prepared {
        ctx.out.info("== 7 Configure Edge Agent");
        agent::apply(ctx, p)?;
    }
    if let Some(install) = &vnc_install {
        ctx.out.info("== 9 Install VNC components");
        vnc::apply_install(ctx, install)?;
    }
    if !vnc_users.is_empty() {
        ctx.out.info("== 10 Enable VNC for users");
        vnc::apply_users(ctx, vnc_users)?;
    }
    if device_table.is_some() {
        ctx.out.info("== 11 Show/set the device ID");
        device_id::from_table(ctx, device_table, &origin("device-id"))?;
    }
    Ok(())
}

/// The numbered menu; comes back after each option until 8, Esc or Ctrl-D.
fn menu(ctx: &Ctx) -> Result<()> {
    if ctx.yes || !ctx.prompt_is_interactive() {
        return Err(Error::bad_input("the setup menu needs a terminal")
            .why(if ctx.yes {
                "--yes was given"
            } else {
                "standard input is not a terminal"
            })
            .hint(format!("run it without the menu: {NONINTERACTIVE}")));
    }
    loop {
        ctx.out.info("");
        ctx.out.info("edge-setup: appliance setup");
        for e in Entry::MENU {
            ctx.out.info(&format!("  {:>2}  {}", e.number(), e.label()));
        }
        let numbers: Vec<u32> = Entry::MENU.iter().map(|e| e.number()).collect();
        let Some(n) = ctx.prompt.menu("Enter your choice", &numbers)? else {
            return Ok(());
        };
        let entry = Entry::MENU
            .into_iter()
            .find(|e| e.number() == n)
            .expect("the prompt only accepts menu numbers");
        let result = match entry {
            Entry::Exit => return Ok(()),
            Entry::Network => network_option(ctx, &OptionInput::default(), &network::Options::default()),
            Entry::Agent => agent_option(ctx, &OptionInput::default()),
            Entry::PostInstall => post_install_option(ctx, &OptionInput::default()),
            Entry::Certificates => certificates_option(ctx, &OptionInput::default()),
            Entry::PostUpgrade => post_upgrade::run(ctx, false),
            Entry::ExpandDisk => expand_disk::run(ctx),
            Entry::TenantPassword => tenant_password_option(ctx, &OptionInput::default()),
            Entry::Vnc => vnc::install_interactive(ctx),
            Entry::VncUser => vnc::user_interactive(ctx),
            Entry::DeviceId => device_id::interactive(ctx),
            Entry::Status => status(ctx),
        };
        match result {
            Ok(()) => ctx.out.info(&format!("{}: done.", entry.label())),
            Err(e) => ctx.out.error(&e),
        }
    }
}

/// The appliance at a glance: remote connectivity, device ID, DNS, agent, VNC users.
fn status(ctx: &Ctx) -> Result<()> {
    let mut st = crate::agent::status(ctx)?;
    for line in st.lines() {
        ctx.out.data(&line);
    }
    let users: Vec<(String, u32)> = match crate::vnc_user::load_mappings(&ctx.sys) {
        Ok((mappings, _)) => mappings
            .appliance
            .entries()
            .map(|(user, display, _)| (user.to_string(), display))
            .collect(),
        Err(e) => {
            st.problems.push(crate::agent::Problem {
                file: ctx
                    .sys
                    .host_path(Path::new(crate::tigervnc::MAPPING_FILE))
                    .display()
                    .to_string(),
                problem: match &e.why {
                    Some(why) => format!("{}: {why}", e.what),
                    None => e.what.clone(),
                },
                next: e.hint.clone(),
            });
            ctx.out.data(&format!("damaged:             {e}"));
            Vec::new()
        }
    };
    let listed: Vec<String> = users
        .iter()
        .map(|(user, display)| format!("{user} on :{display} (port {})", crate::tigervnc::port(*display)))
        .collect();
    ctx.out.data(&format!(
        "VNC users:           {}",
        if listed.is_empty() {
            "none (sudo edge-setup vnc-user --user NAME)".to_string()
        } else {
            listed.join(", ")
        }
    ));
    let mut json = serde_json::json!({ "remote_connectivity": st.to_json() });
    json["vnc_users"] = users
        .iter()
        .map(|(user, display)| {
            serde_json::json!({"user": user, "display": display, "port": crate::tigervnc::port(*display)})
        })
        .collect();
    json["problems"] = serde_json::json!(st.problems);
    ctx.out.result(json);
    match st.problems.first() {
        Some(first) => Err(crate::agent::damaged(&st.problems, first)),
        None => Ok(()),
    }
}
