//! The post-installation wizard: the old script's menu, each option also a
//! command, and answers files that run every configured option for fleets.

pub mod agent;
pub mod answers;
pub mod certificates;
pub mod config;
pub mod config_dat;
pub mod device_id;
pub mod expand_disk;
pub mod first_boot;
pub mod input;
pub mod network;
pub mod post_install;
pub mod post_upgrade;
pub mod remote_access;
pub mod tenant_password;
pub mod unit;
pub mod vnc;

use std::path::Path;

use zeroize::Zeroizing;

use crate::cli::{self, OptionInput, SetupArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::prompt::Question;
use answers::Answers;
use config_dat::ConfigDat;
use input::{Input, Source};
use unit::{Registered, Session, Unit};

/// One option of the wizard. [`OPTIONS`] is the one list of them: the menu
/// shows it, `setup --answers` applies its tables in its order under its
/// numbers and labels, and tests hold the answers schema and the `setup`
/// subcommands to it.
pub struct SetupOption {
    /// The old post-installer's number (edge-setup's own from 9).
    pub number: u32,
    pub label: &'static str,
    /// Its `setup` subcommand, when it has one.
    pub command: Option<&'static str>,
    /// Its table in an answers file (the same name as its subcommand): typed,
    /// planned and applied by the option's module (see `unit`).
    pub table: Option<&'static dyn Unit>,
    /// What choosing it in the menu does; `None` leaves the menu.
    pub menu: Option<fn(&Ctx) -> Result<()>>,
}

impl SetupOption {
    pub fn table_name(&self) -> Option<&'static str> {
        self.table.map(Unit::name)
    }
}

/// The order an answers file's tables are planned and applied in: the menu's
/// (which shows them by number), the configuration keys first, which the others read.
pub const OPTIONS: [SetupOption; 14] = [
    SetupOption {
        number: 14,
        label: "Set configuration keys",
        command: Some("config"),
        table: Some(&Registered::<config::Table>::UNIT),
        menu: Some(config::interactive),
    },
    SetupOption {
        number: 1,
        label: "Configure network",
        command: Some("network"),
        table: Some(&Registered::<network::Table>::UNIT),
        menu: Some(|ctx| network_option(ctx, &OptionInput::default(), &network::Options::default())),
    },
    SetupOption {
        number: 2,
        label: "Run post-installation",
        command: Some("post-install"),
        table: Some(&Registered::<post_install::Table>::UNIT),
        menu: Some(|ctx| post_install_option(ctx, &OptionInput::default())),
    },
    SetupOption {
        number: 3,
        label: "Update license and SSL certificates",
        command: Some("certificates"),
        table: Some(&Registered::<certificates::Table>::UNIT),
        menu: Some(|ctx| certificates_option(ctx, &OptionInput::default())),
    },
    SetupOption {
        number: 4,
        label: "Run post-upgrade",
        command: Some("post-upgrade"),
        table: None,
        menu: Some(|ctx| post_upgrade::run(ctx, false)),
    },
    SetupOption {
        number: 5,
        label: "Expand data disk size",
        command: Some("expand-disk"),
        table: None,
        menu: Some(expand_disk::run),
    },
    SetupOption {
        number: 6,
        label: "Update tenant password",
        command: Some("tenant-password"),
        table: Some(&Registered::<tenant_password::Table>::UNIT),
        menu: Some(|ctx| tenant_password_option(ctx, &OptionInput::default())),
    },
    SetupOption {
        number: 7,
        label: "Configure Edge Agent",
        command: Some("agent"),
        table: Some(&Registered::<agent::Table>::UNIT),
        menu: Some(|ctx| agent_option(ctx, &OptionInput::default())),
    },
    SetupOption {
        number: 8,
        label: "Exit",
        command: None,
        table: None,
        menu: None,
    },
    SetupOption {
        number: 9,
        label: "Install VNC components",
        command: Some("vnc"),
        table: Some(&Registered::<vnc::Table>::UNIT),
        menu: Some(vnc::install_interactive),
    },
    SetupOption {
        number: 10,
        label: "Enable VNC for a user",
        command: Some("vnc-user"),
        table: Some(&Registered::<vnc::Users>::UNIT),
        menu: Some(vnc::user_interactive),
    },
    SetupOption {
        number: 11,
        label: "Show/set the device ID",
        command: Some("device-id"),
        table: Some(&Registered::<device_id::Table>::UNIT),
        menu: Some(device_id::interactive),
    },
    SetupOption {
        number: 12,
        label: "Status",
        command: Some("status"),
        table: None,
        menu: Some(status),
    },
    SetupOption {
        number: 13,
        label: "Register this device and sync remote access",
        command: Some("remote-access"),
        table: None,
        menu: Some(|ctx| remote_access::run(ctx, &cli::CredentialArgs::default())),
    },
];

const NONINTERACTIVE: &str =
    "edge-setup setup --answers FILE (every option), or one option: edge-setup setup network --config-dat FILE";

pub fn run(ctx: &Ctx, args: &SetupArgs) -> Result<()> {
    if let Some(path) = &args.answers {
        return run_answers(ctx, path, args.force);
    }
    match &args.option {
        Some(cli::SetupCommand::Network(a)) => {
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
        Some(cli::SetupCommand::Agent(a)) => {
            let given = OptionInput {
                config_dat: None,
                answers: a.answers.clone(),
            };
            agent_option(ctx, &given)
        }
        Some(cli::SetupCommand::Status) => status(ctx),
        Some(cli::SetupCommand::Config(a)) => match &a.answers {
            Some(path) => apply_table(ctx, path, &Registered::<config::Table>::UNIT),
            None => config::interactive(ctx),
        },
        Some(cli::SetupCommand::RemoteAccess(a)) => remote_access::run(ctx, a),
        Some(cli::SetupCommand::Vnc(a)) => match &a.answers {
            Some(path) => {
                let origin = format!("{} [vnc]", path.display());
                let answers = Answers::load(ctx, path)?;
                let none = vnc::Table::default();
                match vnc::prepare_install(answers.get().unwrap_or(&none), &origin)? {
                    Some(install) => vnc::apply_install(ctx, &install),
                    None => Err(Error::bad_input(format!(
                        "{origin}: the table does not set install = true"
                    ))),
                }
            }
            None => vnc::install_interactive(ctx),
        },
        Some(cli::SetupCommand::VncUser(a)) => match &a.answers {
            Some(path) => {
                let answers = Answers::load(ctx, path)?;
                let entries = answers.get::<vnc::Users>().map_or(&[][..], |u| &u.0);
                if entries.is_empty() {
                    return Err(Error::bad_input(format!(
                        "{} has no [[vnc-user]] entries",
                        path.display()
                    )));
                }
                let users = vnc::prepare_users(ctx, entries, &format!("{} [[vnc-user]]", path.display()))?;
                vnc::apply_users(ctx, users)
            }
            None => vnc::user_interactive(ctx),
        },
        Some(cli::SetupCommand::PostInstall(input)) => post_install_option(ctx, input),
        Some(cli::SetupCommand::Certificates(a)) if a.rollback => {
            ctx.sys.require_root("setup certificates --rollback")?;
            let state = post_install::require_state(ctx, "Rolling back the certificates")?;
            certificates::rollback(ctx, &state)
        }
        Some(cli::SetupCommand::Certificates(a)) => certificates_option(ctx, &a.input),
        Some(cli::SetupCommand::PostUpgrade(a)) => post_upgrade::run(ctx, a.force),
        Some(cli::SetupCommand::ExpandDisk) => expand_disk::run(ctx),
        Some(cli::SetupCommand::TenantPassword(input)) => tenant_password_option(ctx, input),
        Some(cli::SetupCommand::DeviceId(a)) => match &a.answers {
            Some(path) => apply_table(ctx, path, &Registered::<device_id::Table>::UNIT),
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
    ctx.sys.require_root("setup post-install")?;
    with_input(ctx, given, "post-install", true, |input| {
        let prepared = post_install::prepare(ctx, input)?;
        post_install::apply(ctx, &prepared)
    })
}

/// Options 3 and 6 check that option 2 succeeded before asking anything.
fn certificates_option(ctx: &Ctx, given: &OptionInput) -> Result<()> {
    ctx.sys.require_root("setup certificates")?;
    let state = post_install::require_state(ctx, "Updating the licence and SSL certificates")?;
    with_input(ctx, given, "certificates", true, |input| {
        let prepared = certificates::prepare(ctx, input, &state)?;
        certificates::apply(ctx, &state, &prepared)
    })
}

fn tenant_password_option(ctx: &Ctx, given: &OptionInput) -> Result<()> {
    ctx.sys.require_root("setup tenant-password")?;
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
        let answers = Answers::load(ctx, path)?;
        let t = match answers.values(table) {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        let input = Input {
            source: Source::Answers(&t),
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

/// `setup NAME --answers FILE`: the file's table of one option, planned and applied.
fn apply_table(ctx: &Ctx, path: &Path, unit: &dyn Unit) -> Result<()> {
    let answers = Answers::load(ctx, path)?;
    let file = path.display().to_string();
    if answers.values(unit.name()).is_none() {
        return Err(Error::bad_input(format!("{file} has no [{}] table", unit.name()))
            .hint(format!("add one: see {}", answers::EXAMPLE)));
    }
    let mut session = Session::new(&answers, &file, false);
    match unit.plan(ctx, &mut session)? {
        Some(planned) => planned.apply(ctx, &mut session),
        None => Ok(()),
    }
}

/// `setup --answers FILE`.
fn run_answers(ctx: &Ctx, path: &Path, force: bool) -> Result<()> {
    let answers = Answers::load(ctx, path)?;
    if answers.is_empty() {
        return Err(Error::bad_input(format!("{} configures nothing", path.display()))
            .why("it has no table")
            .hint(format!("see {} for every table and key", answers::EXAMPLE)));
    }
    let file = AnswersFile {
        origin: path.display().to_string(),
        answers,
    };
    apply_files(ctx, std::slice::from_ref(&file), force)
}

/// An answers file to apply: where it came from (for messages) and what it says.
pub struct AnswersFile {
    pub origin: String,
    pub answers: Answers,
}

/// Applies answers files in order. Every option of every file is planned first
/// (a dry run through the same code, each option seeing what the ones before it
/// would do), and only when the whole plan holds are they applied: a refused
/// value, a missing user or file, anywhere, changes nothing. Then the secret
/// files of each file that sets `shred-secrets` are shredded.
pub fn apply_files(ctx: &Ctx, files: &[AnswersFile], force: bool) -> Result<()> {
    if !ctx.sys.dry_run() {
        let planning = ctx.planning();
        let plan = files.iter().try_for_each(|f| apply_answers(&planning, f, force));
        plan.map_err(|e| match &e.hint {
            Some(h) if h.contains("nothing was changed") => e,
            _ => {
                let next = e.hint.clone().map_or_else(String::new, |h| format!("{h}; "));
                e.hint(format!(
                    "{next}nothing was changed: every option is checked before any is applied"
                ))
            }
        })?;
    }
    for f in files {
        if files.len() > 1 {
            ctx.out.info(&format!("== {}", f.origin));
        }
        apply_answers(ctx, f, force)?;
    }
    for f in files.iter().filter(|f| f.answers.shred_secrets) {
        for secret in f.answers.secret_files() {
            let step = ctx.out.step(&format!(
                "Shredding {} ({} sets shred-secrets)",
                secret.display(),
                f.origin
            ));
            let word = match ctx.sys.shred_host_file(secret)? {
                true => ctx.sys.word("shredded", "would be shredded"),
                false => "already gone",
            };
            step.done(word);
        }
    }
    Ok(())
}

/// Checks every table of the file against the system, in the options' order
/// (each against what the ones before it plan), and applies them in that order,
/// each under its number and label.
fn apply_answers(ctx: &Ctx, file: &AnswersFile, force: bool) -> Result<()> {
    let mut session = Session::new(&file.answers, &file.origin, force);
    let mut plan = Vec::new();
    for option in &OPTIONS {
        if let Some(unit) = option.table
            && let Some(planned) = unit.plan(ctx, &mut session)?
        {
            plan.push((option, planned));
        }
    }
    for (option, planned) in plan {
        ctx.out.info(&format!("== {} {}", option.number, option.label));
        planned.apply(ctx, &mut session)?;
        ctx.out.settle_result(option.table_name().unwrap_or_default());
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
        let mut shown: Vec<&SetupOption> = OPTIONS.iter().collect();
        shown.sort_by_key(|o| o.number);
        for o in shown {
            ctx.out.info(&format!("  {:>2}  {}", o.number, o.label));
        }
        let numbers: Vec<u32> = OPTIONS.iter().map(|o| o.number).collect();
        let Some(n) = ctx.prompt.menu("Enter your choice", &numbers)? else {
            return Ok(());
        };
        let option = OPTIONS
            .iter()
            .find(|o| o.number == n)
            .expect("the prompt only accepts menu numbers");
        let Some(run) = option.menu else {
            return Ok(());
        };
        match run(ctx) {
            Ok(()) => ctx.out.info(&format!("{}: done.", option.label)),
            Err(e) => ctx.out.error(&e),
        }
        // the report would scroll off a 24-line console under the menu drawn again at once
        if option.command == Some("status") {
            ctx.prompt.pause("Press Enter to go back to the menu.")?;
        }
    }
}

/// The appliance at a glance: remote connectivity, device ID, DNS, agent, VNC
/// users, first boot. A damaged file or a failed first boot is its error.
fn status(ctx: &Ctx) -> Result<()> {
    let mut st = crate::agent::status(&ctx.sys)?;
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
            let file = ctx.sys.host_path(Path::new(crate::tigervnc::MAPPING_FILE));
            let problem = crate::agent::Problem::new(&file.display().to_string(), &e);
            ctx.out.data(&problem.line());
            st.problems.push(problem);
            Vec::new()
        }
    };
    // whether each user has a password (after `image prepare --vnc-passwords` one has a
    // display and none); read as the users, so only root knows
    let with_password: Option<Vec<(String, bool)>> = (ctx.sys.is_root() || ctx.sys.is_image())
        .then(|| crate::vnc_user::password_files(&ctx.sys).ok())
        .flatten()
        .map(|all| all.into_iter().map(|u| (u.user, !u.files.is_empty())).collect());
    let has_password = |user: &str| {
        with_password
            .as_ref()
            .and_then(|all| all.iter().find(|(u, _)| u == user).map(|(_, has)| *has))
    };
    let listed: Vec<String> = users
        .iter()
        .map(|(user, display)| {
            let port = crate::tigervnc::port(*display);
            match has_password(user) {
                Some(false) => format!(
                    "{user} on :{display} (port {port}; no password: {})",
                    ctx.sys.next_command(&format!("vnc-user --user {user}"))
                ),
                _ => format!("{user} on :{display} (port {port})"),
            }
        })
        .collect();
    ctx.out.data(&format!(
        "VNC users:           {}",
        if listed.is_empty() {
            format!("none ({})", ctx.sys.next_command("vnc-user --user NAME"))
        } else {
            listed.join(", ")
        }
    ));
    // a damaged record is one problem of the status, like a damaged mapping
    let first_boot = crate::image::first_boot::state(&ctx.sys)
        .map_err(|e| {
            let problem = crate::agent::Problem::new(e.what.trim_end_matches(" is damaged"), &e);
            ctx.out.data(&problem.line());
            st.problems.push(problem);
        })
        .ok();
    if let Some(fb) = &first_boot {
        ctx.out.data(&fb.line());
    }
    // what an image left for the first boot (and a failed one still has to run)
    let pending = crate::system::offline::Pending::load(&ctx.sys)
        .map_err(|e| {
            let problem = crate::agent::Problem::new(e.what.trim_end_matches(" is damaged"), &e);
            ctx.out.data(&problem.line());
            st.problems.push(problem);
        })
        .unwrap_or_default();
    for step in &pending.steps {
        ctx.out.data(&format!(
            "  pending:           {}{}",
            step.line(),
            step.left
                .as_ref()
                .map_or(String::new(), |why| format!(" (not by the first boot: {why})"))
        ));
    }
    let mut json = serde_json::json!({ "remote_connectivity": st.to_json() });
    json["first_boot"] = first_boot.as_ref().map_or(serde_json::Value::Null, |fb| fb.to_json());
    if let Some(fb) = json["first_boot"].as_object_mut() {
        fb.insert(
            "pending".into(),
            pending
                .steps
                .iter()
                .map(|s| serde_json::json!({ "command": s.line(), "first_boot": s.left.is_none(), "why": s.left }))
                .collect(),
        );
    }
    json["vnc_users"] = users
        .iter()
        .map(|(user, display)| {
            serde_json::json!({
                "user": user,
                "display": display,
                "port": crate::tigervnc::port(*display),
                "password": has_password(user),
            })
        })
        .collect();
    json["problems"] = serde_json::json!(st.problems);
    ctx.out.result(json);
    match (st.problems.first(), first_boot.and_then(|fb| fb.failure())) {
        (Some(first), _) => Err(crate::agent::damaged(&st.problems, first)),
        (None, Some(failed)) => Err(failed),
        (None, None) => Ok(()),
    }
}
