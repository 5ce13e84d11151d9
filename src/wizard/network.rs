//! Option 1, Configure network.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::config_dat::{self, ConfigDat};
use super::input::{Field, Input, Source};
use super::unit::{self, Apply, At, Session};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::network::{self, Settings, Stack};
use crate::prompt::Question;
use crate::system::runner::{Cmd, Tool};

/// `[network]`. Values are checked when the option is planned, where they meet
/// the same rules as config.dat and the console.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Table {
    pub interface: Option<String>,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub dns: Option<String>,
    pub stack: Option<String>,
    #[serde(default)]
    pub allow_remote: bool,
}

impl unit::Table for Table {
    const NAME: &'static str = "network";

    fn plan(&self, ctx: &Ctx, at: &At, session: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        let opts = Options {
            force: session.force,
            ..Default::default()
        };
        Ok(Some(Box::new(prepare(ctx, &at.input(), &opts)?)))
    }
}

impl Apply for Prepared {
    fn apply(self: Box<Self>, ctx: &Ctx, _: &mut Session) -> Result<()> {
        apply(ctx, &self)
    }
}

/// How the network option was asked for, besides its input.
#[derive(Default)]
pub struct Options<'a> {
    pub interface: Option<&'a str>,
    pub stack: Option<Stack>,
    pub force: bool,
}

/// Refuses over SSH unless forced: the change can cut the session it runs in.
/// Never in an image or a dry run, where no live link is at risk. `how` is the
/// form that allows it where it was asked for.
pub fn refuse_over_ssh(ctx: &Ctx, what: &str, force: bool, how: &str) -> Result<()> {
    if ctx.over_ssh() && !force && !ctx.sys.is_image() && !ctx.sys.dry_run() {
        return Err(
            Error::not_permitted(format!("{what} does not run over a remote (SSH) connection"))
                .why("it can cut the connection it runs in and leave the appliance half-configured")
                .hint(format!(
                    "run it on the appliance's local console, or, if you have another way back in: {how}"
                )),
        );
    }
    Ok(())
}

/// Validated answers of option 1, ready to apply.
pub struct Prepared {
    stack: Stack,
    settings: Settings,
}

/// Gathers and validates every value; nothing is changed.
pub fn prepare(ctx: &Ctx, input: &Input, opts: &Options) -> Result<Prepared> {
    let allowed = opts.force || input.answers_flag("allow-remote");
    let how = match &input.source {
        super::input::Source::Answers(_) => format!(
            "allow-remote = true in {}, or edge-setup setup --answers FILE --force",
            input.origin
        ),
        _ => "add --force".to_string(),
    };
    refuse_over_ssh(ctx, "Configuring the network", allowed, &how)?;
    ctx.sys.require_root("setup network")?;
    let stack = match opts.stack {
        Some(s) => s,
        None => match input.answers_str("stack") {
            Some(s) => Stack::parse(&s)
                .map_err(|rule| Error::bad_input(format!("{}: 'stack' is not valid", input.origin)).why(rule))?,
            None => network::detect_stack(&ctx.sys)?,
        },
    };
    let interface = choose_interface(ctx, input, opts)?;
    let saved = ConfigDat::saved(&ctx.sys);
    let current = |k: &str| saved.as_ref().and_then(|d| d.get(k)).map(str::to_string);

    let ip = input.value(
        ctx,
        &Field {
            dat_key: config_dat::NETWORK_IP,
            answers_key: "ip",
            prompt: "IP address",
            secret: false,
            default: current(config_dat::NETWORK_IP),
            validate: &|s| network::parse_ip(s).map(drop),
        },
    )?;
    let netmask = input.value(
        ctx,
        &Field {
            dat_key: config_dat::NETMASK,
            answers_key: "netmask",
            prompt: "Netmask",
            secret: false,
            default: current(config_dat::NETMASK),
            validate: &|s| network::parse_netmask(s).map(drop),
        },
    )?;
    let address: Ipv4Addr = network::parse_ip(&ip).expect("validated");
    let prefix = network::parse_netmask(&netmask).expect("validated");
    let in_subnet = |s: &str| -> Result<(), String> {
        let gateway = network::parse_ip(s)?;
        Settings {
            interface: interface.clone(),
            address,
            prefix,
            gateway,
            dns: gateway,
        }
        .validate()
    };
    let gateway = input.value(
        ctx,
        &Field {
            dat_key: config_dat::GATEWAY_IP,
            answers_key: "gateway",
            prompt: "Gateway IP",
            secret: false,
            default: current(config_dat::GATEWAY_IP),
            validate: &in_subnet,
        },
    )?;
    let dns = input.value(
        ctx,
        &Field {
            dat_key: config_dat::DNS_SERVER_IP,
            answers_key: "dns",
            prompt: "DNS server IP (if unknown, the gateway IP)",
            secret: false,
            default: Some(gateway.to_string()),
            validate: &|s| network::parse_ip(s).map(drop),
        },
    )?;
    let settings = Settings {
        interface: interface.clone(),
        address,
        prefix,
        gateway: network::parse_ip(&gateway).expect("validated"),
        dns: network::parse_ip(&dns).expect("validated"),
    };
    Ok(Prepared { stack, settings })
}

/// Writes, applies and records the prepared settings.
pub fn apply(ctx: &Ctx, prepared: &Prepared) -> Result<()> {
    let Prepared { stack, settings } = prepared;
    let stack = *stack;
    ctx.out.progress(3);
    let step = ctx.out.step(&format!(
        "Writing a static address {}/{} on {} for {stack}",
        settings.address, settings.prefix, settings.interface
    ));
    let plan = network::plan(&ctx.sys, stack, settings)?;
    let changed = network::write(&ctx.sys, stack, settings, &plan)?;
    step.done(if changed {
        ctx.sys.word(
            "written (previous files kept for --rollback)",
            "would be written (previous files kept for --rollback)",
        )
    } else {
        "unchanged"
    });

    let step = ctx.out.step(&format!("Applying the configuration with {stack}"));
    if changed {
        for cmd in plan.apply {
            ctx.sys.run(cmd)?;
        }
        step.done(if ctx.sys.applies_commands() {
            "applied"
        } else if ctx.sys.is_image() && !ctx.sys.dry_run() {
            "applied by the network's service when the image boots"
        } else {
            "planned"
        });
    } else {
        step.done("nothing to change");
    }

    let step = ctx.out.step(&format!("Saving the answers to {}", config_dat::PATH));
    let mut dat = ConfigDat::default();
    dat.set(config_dat::NETWORK_IP, &settings.address.to_string());
    dat.set(config_dat::NETMASK, &network::netmask_of(settings.prefix).to_string());
    dat.set(config_dat::GATEWAY_IP, &settings.gateway.to_string());
    dat.set(config_dat::DNS_SERVER_IP, &settings.dns.to_string());
    dat.set(config_dat::NETWORK_INTERFACE, &settings.interface);
    step.done(ctx.sys.change_word(dat.save_merged(&ctx.sys)?));
    ctx.out.finish_bar();
    if changed {
        ctx.out.info(if ctx.sys.dry_run() {
            "The network would be configured as above."
        } else {
            "Network configured. To undo it: sudo edge-setup setup network --rollback"
        });
    } else {
        ctx.out
            .info("The network is already configured this way; nothing changed.");
    }
    Ok(())
}

/// The interface: given, else the first ethernet interface that is up (asked
/// when there are several on a terminal).
fn choose_interface(ctx: &Ctx, input: &Input, opts: &Options) -> Result<String> {
    let given = opts
        .interface
        .map(str::to_string)
        .or_else(|| input.answers_str("interface"))
        .or_else(|| input.config_dat_str(config_dat::NETWORK_INTERFACE));
    if let Some(name) = given {
        return network::parse_interface(&name)
            .map_err(|rule| Error::bad_input(format!("'{name}' is not a valid interface")).why(rule));
    }
    let all = network::interfaces(&ctx.sys)?;
    let up: Vec<String> = all.iter().filter(|(_, up)| *up).map(|(n, _)| n.clone()).collect();
    match (up.len(), input.interactive) {
        (0, _) => Err(Error::failure("no ethernet interface is up")
            .why(format!(
                "found: {}",
                if all.is_empty() {
                    "none".to_string()
                } else {
                    all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                }
            ))
            .hint(match &input.source {
                // named where the input came from: the file's key, not a flag
                Source::Answers(_) => format!("name the interface: interface = \"NAME\" in {}", input.origin),
                _ => "name the interface: edge-setup setup network --interface NAME".to_string(),
            })),
        (1, _) | (_, false) => Ok(up[0].clone()),
        _ => {
            let q = Question {
                prompt: "Interface to configure",
                noninteractive: "--interface NAME",
            };
            let i = ctx
                .prompt
                .choose(q, &up)?
                .ok_or_else(|| Error::bad_input("no interface chosen"))?;
            Ok(up[i].clone())
        }
    }
}

/// `setup network --rollback`: the files as they were before the last change.
pub fn rollback(ctx: &Ctx, force: bool) -> Result<()> {
    refuse_over_ssh(ctx, "Rolling back the network", force, "add --force")?;
    ctx.sys.require_root("setup network --rollback")?;
    let step = ctx.out.step("Restoring the network files of before the last change");
    let rb = network::rollback(&ctx.sys)?;
    step.done("restored");
    let step = ctx.out.step(&format!("Applying them with {}", rb.stack));
    let reload = match rb.stack {
        Stack::NetworkManager => vec![
            Cmd::new(Tool::Nmcli).args(["connection", "reload"]),
            Cmd::new(Tool::Nmcli).args(["device", "connect", &rb.interface]),
        ],
        Stack::Networkd => vec![
            Cmd::new(Tool::Networkctl).arg("reload"),
            Cmd::new(Tool::Networkctl).args(["reconfigure", &rb.interface]),
        ],
        Stack::Ifupdown => vec![
            Cmd::new(Tool::Ifdown).args(["--force", &rb.interface]),
            Cmd::new(Tool::Ifup).arg(&rb.interface),
        ],
        Stack::Ifcfg => vec![
            Cmd::new(Tool::Ifdown).arg(&rb.interface),
            Cmd::new(Tool::Ifup).arg(&rb.interface),
        ],
    };
    for cmd in reload {
        ctx.sys.run(cmd)?;
    }
    step.done(if ctx.sys.applies_commands() {
        "applied"
    } else {
        "planned"
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::testkit::Fixture;
    use crate::wizard::input::Source;

    const SSH: [(&str, &str); 1] = [("SSH_CONNECTION", "10.0.0.9 50000 10.0.0.5 22")];

    fn ctx(mode: Mode, dry_run: bool) -> (Fixture, Ctx) {
        let f = Fixture::empty();
        let ctx = f.ctx(f.system(mode, dry_run)).with_env(SSH);
        (f, ctx)
    }

    #[test]
    fn over_ssh_a_live_network_change_is_refused_with_the_form_that_allows_it() {
        let (_d, live) = ctx(Mode::Live, false);
        let table: toml::Table = "ip = \"10.0.0.5\"".parse().unwrap();
        let input = Input {
            source: Source::Answers(&table),
            interactive: false,
            noninteractive: "the answers file",
            origin: "/root/a.toml [network]".to_string(),
        };
        let err = prepare(&live, &input, &Options::default()).err().expect("refused");
        assert_eq!(err.kind, crate::error::Kind::NotPermitted);
        let hint = err.hint.unwrap();
        assert!(
            hint.contains("allow-remote = true in /root/a.toml [network], or edge-setup setup --answers FILE --force"),
            "{hint}"
        );
        let err = refuse_over_ssh(&live, "Configuring the network", false, "add --force").unwrap_err();
        assert!(err.hint.unwrap().ends_with("add --force"));
        refuse_over_ssh(&live, "Configuring the network", true, "add --force").unwrap();
        let allowed: toml::Table = "allow-remote = true".parse().unwrap();
        let input = Input {
            source: Source::Answers(&allowed),
            ..input
        };
        // allowed: it goes on to the next check (root, as these tests may not be)
        let passed = prepare(&live, &input, &Options::default()).err();
        assert!(passed.as_ref().is_none_or(|e| !e.what.contains("SSH")), "{passed:?}");
    }

    #[test]
    fn over_ssh_an_image_or_a_dry_run_is_not_refused() {
        for (mode, dry_run) in [(Mode::Image, false), (Mode::Live, true)] {
            let (_d, ctx) = ctx(mode, dry_run);
            refuse_over_ssh(&ctx, "Configuring the network", false, "add --force").unwrap();
        }
    }
}
