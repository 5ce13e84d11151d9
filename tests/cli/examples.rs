//! examples/appliance.toml documents every key of the answers file.

use crate::common;

use common::Image;
use edge_setup::wizard::OPTIONS;
use edge_setup::wizard::answers::{self, Answers};
use edge_setup::wizard::{agent, certificates, config, device_id, network, post_install, tenant_password, vnc};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/appliance.toml");

/// Every table and key of the schema: each table is written out in full (no
/// `..Default`), so a key added to a table fails to compile here until it is
/// added, and then fails the test until the example shows it; `[config]` holds
/// every key it sets.
fn every_key() -> toml::Table {
    let s = || Some(String::new());
    let p = || Some(std::path::PathBuf::from("/p"));
    let all = Answers::default()
        .with(network::Table {
            interface: s(),
            ip: s(),
            netmask: s(),
            gateway: s(),
            dns: s(),
            stack: s(),
            allow_remote: false,
        })
        .with(post_install::Table {
            username: s(),
            password_file: p(),
            domain: s(),
            certificate: p(),
            key: p(),
            licence: p(),
            apama_licence: p(),
            cloud_url: s(),
        })
        .with(certificates::Table {
            certificate: p(),
            key: p(),
            licence: p(),
            apama_licence: p(),
        })
        .with(tenant_password::Table { password_file: p() })
        .with(device_id::Table {
            id: s(),
            generate: false,
        })
        .with(agent::Table {
            url: s(),
            insecure: false,
            force: false,
        })
        .with(vnc::Table {
            install: false,
            offline: p(),
            listen: s(),
        })
        .with(vnc::Users(vec![vnc::UserEntry {
            user: String::new(),
            password_file: "/p".into(),
        }]))
        .with(config::Table {
            values: config::settable().map(|d| (d, d.example.to_string())).collect(),
        });
    let mut schema = toml::Table::new();
    schema.insert("shred-secrets".into(), true.into());
    for unit in answers::units() {
        let values = all
            .values(unit.name())
            .unwrap_or_else(|| panic!("[{}] is not in every_key", unit.name()));
        schema.insert(unit.name().into(), values.clone());
    }
    schema
}

fn first_table(v: &toml::Value) -> &toml::Table {
    match v {
        toml::Value::Table(t) => t,
        toml::Value::Array(a) => a[0].as_table().unwrap(),
        other => panic!("not a table: {other}"),
    }
}

/// The keys of a table, nested ones as `section.key`.
fn key_paths(t: &toml::Table) -> Vec<String> {
    t.iter()
        .flat_map(|(k, v)| match v {
            toml::Value::Table(inner) => key_paths(inner).into_iter().map(|i| format!("{k}.{i}")).collect(),
            _ => vec![k.clone()],
        })
        .collect()
}

#[test]
fn the_example_shows_every_table_and_key_of_the_schema() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let example: toml::Table = text.parse().unwrap();
    Answers::parse(&text, std::path::Path::new(EXAMPLE)).expect("the example fits the schema");
    let schema = every_key();
    for (table, value) in &schema {
        if !matches!(value, toml::Value::Table(_) | toml::Value::Array(_)) {
            assert!(
                example.contains_key(table),
                "the top-level key {table} is missing from the example"
            );
            continue;
        }
        let shown = key_paths(first_table(
            example
                .get(table)
                .unwrap_or_else(|| panic!("[{table}] missing from the example")),
        ));
        for key in key_paths(first_table(value)) {
            assert!(shown.contains(&key), "[{table}] {key} missing from the example");
        }
    }
    assert_eq!(example.len(), schema.len());
}

#[test]
fn every_table_of_the_schema_is_an_option_of_the_menu_and_a_setup_subcommand() {
    let tables: Vec<String> = every_key()
        .into_iter()
        .filter(|(_, v)| matches!(v, toml::Value::Table(_) | toml::Value::Array(_)))
        .map(|(k, _)| k)
        .collect();
    let registered: Vec<&str> = OPTIONS.iter().filter_map(|o| o.table_name()).collect();
    let mut sorted = registered.clone();
    sorted.sort();
    assert_eq!(tables, sorted, "the answers tables and the options' tables differ");
    let setup = <edge_setup::cli::Cli as clap::CommandFactory>::command();
    let setup = setup.find_subcommand("setup").unwrap();
    let mut subcommands: Vec<&str> = setup.get_subcommands().map(|c| c.get_name()).collect();
    let mut commands: Vec<&str> = OPTIONS.iter().filter_map(|o| o.command).collect();
    subcommands.sort();
    commands.sort();
    assert_eq!(subcommands, commands, "the setup subcommands and the options differ");
    for o in &OPTIONS {
        if let Some(t) = o.table_name() {
            assert_eq!(o.command, Some(t), "option {}'s table and subcommand differ", o.number);
        }
    }
    let mut numbers: Vec<u32> = OPTIONS.iter().map(|o| o.number).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=14).collect::<Vec<_>>());
}

/// An image with what the example needs, and the example with its files made real.
pub fn example_image() -> (Image, common::pki::Pki, std::path::PathBuf) {
    let img = Image::debian();
    img.write("/etc/network/interfaces", "auto lo\niface lo inet loopback\n");
    // the example's files, made real
    let pki = common::pki::Pki::new();
    let text = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace("/root/ssl/edge.example.com.crt", &pki.file("edge.crt"))
        .replace("/root/ssl/edge.example.com.key", &pki.file("edge.key"))
        .replace("/root/edge.example.com.licence", &pki.file("c8y.licence"))
        .replace("/root/apama.xml", &pki.file("apama.xml"))
        .replace("/root/tenant-password", &pki.file("password"))
        .replace("/root/new-tenant-password", &pki.file("new-password"))
        .replace("/root/admin.vncpass", &pki.file("vnc-password"));
    pki.secret("vnc-password", "secret12");
    std::fs::create_dir_all(img.path("/home/admin")).unwrap();
    std::os::unix::fs::chown(img.path("/home/admin"), Some(1000), Some(1000)).unwrap();
    let answers = pki.answers(&text);
    (img, pki, answers)
}

#[test]
fn the_example_is_accepted_by_setup() {
    let (img, _pki, answers) = example_image();
    img.cmd().arg("setup").arg("--answers").arg(&answers).assert().success();
    assert!(
        img.read("/etc/network/interfaces")
            .unwrap()
            .contains("address 192.168.10.20/24")
    );
    assert_eq!(
        img.read("/usr/edge/properties/edge-agent/device-id").unwrap(),
        "edge-plant7-01\n"
    );
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
#[ignore = "needs root"]
fn the_example_twice_changes_nothing_the_second_time() {
    let (img, _pki, answers) = example_image();
    let run = || {
        img.cmd()
            .args(["--json", "setup", "--answers"])
            .arg(&answers)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let first = json_of(&first);
    assert_eq!(first["changed"], true);
    assert!(first["changes"].as_array().unwrap().len() > 10, "{first}");
    let before = (img.snapshot(), img.mtimes());
    let second = run();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let second = json_of(&second);
    assert_eq!(second["changes"], serde_json::json!([]), "{second}");
    assert_eq!(second["changed"], false);
    assert!(before == (img.snapshot(), img.mtimes()), "the second run touched files");
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&answers)
        .assert()
        .success()
        .stderr(predicates::str::ends_with("Nothing to change.\n"));
}
