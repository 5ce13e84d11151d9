//! examples/appliance.toml documents every key of the answers file.

mod common;

use common::Image;
use edge_setup::wizard::ANSWER_TABLES;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/appliance.toml");

#[test]
fn the_example_shows_every_table_and_key_the_code_reads() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    for (table, keys) in ANSWER_TABLES {
        let t = match doc.get(*table) {
            Some(toml::Value::Table(t)) => t,
            Some(toml::Value::Array(a)) => a[0].as_table().unwrap(),
            _ => panic!("[{table}] missing from the example"),
        };
        for key in *keys {
            assert!(t.contains_key(*key), "[{table}] {key} missing from the example");
        }
        for key in t.keys() {
            assert!(
                keys.contains(&key.as_str()),
                "[{table}] {key} in the example is not read by the code"
            );
        }
    }
    for table in doc.keys() {
        assert!(
            ANSWER_TABLES.iter().any(|(t, _)| t == table),
            "[{table}] in the example is not read by the code"
        );
    }
}

/// An image with what the example needs, and the example with its files made real.
fn example_image() -> (Image, common::pki::Pki, std::path::PathBuf) {
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
