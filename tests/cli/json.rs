//! `--json` is the whole contract (issue 27): every command prints one object that the
//! shipped schema accepts, whatever the outcome, usage errors and `--version` included.

use crate::common;

use common::Image;
use common::json::envelope;

/// An image where `vnc` ran, with admin's and operator's homes and their password files.
fn appliance() -> Image {
    let img = Image::debian().with_vnc_set_up();
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    for (home, uid) in [("/home/admin", 1000), ("/home/operator", 1001)] {
        std::fs::create_dir_all(img.path(home)).unwrap();
        std::os::unix::fs::chown(img.path(home), Some(uid), Some(uid)).unwrap();
    }
    img
}

fn run(img: &Image, args: &[&str], stdin: &str) -> (serde_json::Value, i32) {
    let out = img.cmd().arg("--json").args(args).write_stdin(stdin).output().unwrap();
    (envelope(&out), out.status.code().unwrap())
}

#[test]
#[ignore = "needs root"]
fn every_command_prints_one_object_the_schema_accepts() {
    let img = appliance();
    let answers = img.root().join("answers.toml");
    std::fs::write(&answers, "[device-id]\nid = \"edge-json-1\"\n").unwrap();
    let bundle = img.root().join("diag.tar.gz");
    let cases: &[(&[&str], &str, i32)] = &[
        (&["device-id"], "", 1),
        (&["device-id", "set", "edge-json-0"], "", 0),
        (&["device-id"], "", 0),
        (&["config", "set", "vnc.listen", "lan"], "", 0),
        (&["config", "get", "vnc.listen"], "", 0),
        (&["config", "list", "--all"], "", 0),
        (&["config", "set", "vnc.listen", "everywhere"], "", 2),
        (&["config", "unset", "vnc.listen"], "", 0),
        (&["remote-connectivity", "status"], "", 0),
        (
            &["--dry-run", "remote-connectivity", "enable", "--url", "t.example.com"],
            "",
            0,
        ),
        (&["remote-connectivity", "enable", "--url", "t.example.com"], "", 0),
        (&["remote-connectivity", "disable"], "", 0),
        (&["--dry-run", "vnc"], "", 0),
        (&["vnc"], "", 0),
        (&["vnc-user", "--user", "admin", "--password-stdin"], "secret12\n", 0),
        (&["vnc-user", "--user", "admin", "--password-stdin"], "short\n", 2),
        (&["vnc-user", "--user", "admin", "--remove"], "", 0),
        (&["setup", "status"], "", 0),
        (&["setup", "--answers", answers.to_str().unwrap()], "", 0),
        (&["completions", "bash"], "", 0),
        (&["diag", "collect", "--output", bundle.to_str().unwrap()], "", 0),
        (&["diag", "collect"], "", 2),
        (&["image", "prepare"], "", 1),
        // usage errors, --version and --help: the same object
        (&["bogus"], "", 2),
        (&["register", "--timeout", "0"], "", 2),
        (&["--version"], "", 0),
        (&["device-id", "--help"], "", 0),
    ];
    for (args, stdin, code) in cases {
        let (json, got) = run(&img, args, stdin);
        assert_eq!(got, *code, "{args:?}: {json:#}");
        assert_eq!(json.get("error").is_some(), *code != 0, "{args:?}: {json:#}");
    }
}

#[test]
fn a_usage_error_and_the_version_are_objects_too() {
    let img = Image::debian();
    let (json, code) = run(&img, &["bogus"], "");
    assert_eq!(code, 2);
    assert_eq!(json["error"]["exit"], 2);
    assert!(
        json["error"]["what"]
            .as_str()
            .unwrap()
            .contains("unrecognized subcommand 'bogus'"),
        "{json:#}"
    );
    let (json, code) = run(&img, &["register", "--timeout", "0"], "");
    assert_eq!(code, 2);
    assert!(
        json["error"]["what"].as_str().unwrap().contains("--timeout"),
        "{json:#}"
    );
    let (json, code) = run(&img, &["--version"], "");
    assert_eq!(code, 0);
    assert_eq!(json["result"]["version"], edge_setup::cli::VERSION);
}

/// Two `[[vnc-user]]` entries: each user's display is in `results`, in order.
#[test]
#[ignore = "needs root"]
fn answers_give_one_result_per_applied_option() {
    let img = appliance();
    let dir = img.root().join("secrets");
    std::fs::create_dir(&dir).unwrap();
    let mut text = String::from("[device-id]\nid = \"edge-json-2\"\n");
    for user in ["admin", "operator"] {
        let pw = dir.join(user);
        std::fs::write(&pw, "secret12\n").unwrap();
        std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        text.push_str(&format!(
            "[[vnc-user]]\nuser = \"{user}\"\npassword-file = \"{}\"\n",
            pw.display()
        ));
    }
    let answers = img.root().join("answers.toml");
    std::fs::write(&answers, text).unwrap();
    let (json, code) = run(&img, &["setup", "--answers", answers.to_str().unwrap()], "");
    assert_eq!(code, 0, "{json:#}");
    let results = json["results"].as_array().unwrap();
    let users: Vec<_> = results
        .iter()
        .filter(|r| r["option"] == "vnc-user")
        .map(|r| {
            (
                r["result"]["user"].as_str().unwrap(),
                r["result"]["display"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(users, [("admin", 1), ("operator", 2)], "{json:#}");
}

/// Owners are `USER:GROUP` names with their numbers; a file written twice in a run is one
/// change.
#[test]
#[ignore = "needs root"]
fn changes_name_owners_once_and_list_each_path_once() {
    let img = appliance();
    let (json, code) = run(&img, &["vnc-user", "--user", "admin", "--password-stdin"], "secret12\n");
    assert_eq!(code, 0, "{json:#}");
    let changes = json["changes"].as_array().unwrap();
    let dir = changes
        .iter()
        .find(|c| c["action"] == "mkdir" && c["path"].as_str().unwrap().ends_with("/home/admin/.vnc"))
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(dir["owner"], "admin:admin");
    assert_eq!((dir["uid"].as_u64(), dir["gid"].as_u64()), (Some(1000), Some(1000)));
    let (json, _) = run(&img, &["vnc"], "");
    let mut paths = common::json::written(&json);
    let all = paths.len();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), all, "a path is listed twice: {json:#}");
}

/// The changes of a run with paths relative to its root, for comparing two roots.
pub(crate) fn relative_changes(json: &serde_json::Value, root: &std::path::Path) -> Vec<serde_json::Value> {
    let root = root.display().to_string();
    json["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes: {json:#}"))
        .iter()
        .map(|c| {
            let mut c = c.clone();
            for key in ["path", "target", "command"] {
                if let Some(s) = c[key].as_str() {
                    c[key] = s.replace(&root, "").into();
                }
            }
            c
        })
        .collect()
}

/// A dry run plans exactly what the run does (issue 27): each mutating command, after the
/// steps it builds on, on two identical roots, once with --dry-run and once for real; the
/// changes (actions, paths relative to the root, owners, modes, commands) are equal.
#[test]
#[ignore = "needs root"]
fn a_dry_run_plans_exactly_what_the_run_does() {
    let example = crate::examples::example_image;
    // (what, steps before, the command, its standard input)
    type Case<'a> = (&'a str, Vec<Vec<String>>, Vec<String>, &'a str);
    let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let enable_admin = words("vnc-user --user admin --password-stdin");
    let cases: Vec<Case> = vec![
        ("device-id set", vec![], words("device-id set edge-dry-1"), ""),
        ("config set", vec![], words("config set vnc.geometry 1280x800"), ""),
        (
            "config unset",
            vec![words("config set vnc.geometry 1280x800")],
            words("config unset vnc.geometry"),
            "",
        ),
        (
            "enable",
            vec![],
            words("remote-connectivity enable --url t.example.com"),
            "",
        ),
        (
            "disable",
            vec![words("remote-connectivity enable --url t.example.com")],
            words("remote-connectivity disable"),
            "",
        ),
        ("vnc", vec![], words("vnc"), ""),
        ("vnc-user", vec![words("vnc")], enable_admin.clone(), "secret12\n"),
        (
            "vnc-user again",
            vec![words("vnc"), enable_admin.clone()],
            enable_admin.clone(),
            "secret99\n",
        ),
        (
            "vnc-user --remove",
            vec![words("vnc"), enable_admin.clone()],
            words("vnc-user --user admin --remove"),
            "",
        ),
        ("vnc --uninstall", vec![words("vnc")], words("vnc --uninstall"), ""),
        // ANSWERS: the fixture's examples/appliance.toml, its files made real
        (
            "setup --answers (examples/appliance.toml)",
            vec![],
            words("setup --answers ANSWERS"),
            "",
        ),
        (
            "setup network with flags",
            vec![],
            words("setup network --interface eth0 --stack networkd --answers ANSWERS --force"),
            "",
        ),
        (
            "setup config --answers (examples/appliance.toml's [config])",
            vec![],
            words("setup config --answers ANSWERS"),
            "",
        ),
        (
            "setup network --rollback",
            vec![words("setup --answers ANSWERS")],
            words("setup network --rollback --force"),
            "",
        ),
        (
            "setup post-upgrade",
            vec![words("setup --answers ANSWERS"), words("remote-connectivity disable")],
            words("setup post-upgrade --force"),
            "",
        ),
        (
            "setup device-id --answers",
            vec![],
            words("setup device-id --answers ANSWERS"),
            "",
        ),
        (
            "setup vnc-user --answers",
            vec![words("vnc")],
            words("setup vnc-user --answers ANSWERS"),
            "",
        ),
        (
            "config set device.id",
            vec![],
            words("config set device.id edge-dry-2"),
            "",
        ),
        (
            "image prepare",
            vec![words("vnc"), enable_admin.clone()],
            words("image prepare --vnc-passwords"),
            "",
        ),
    ];
    for (what, before, command, stdin) in cases {
        let (dry, real) = (example(), example());
        let mut results = Vec::new();
        for (img, dry_run) in [(&dry, true), (&real, false)] {
            let answers = img.2.display().to_string();
            let command: Vec<&str> = command
                .iter()
                .map(|w| if w == "ANSWERS" { answers.as_str() } else { w.as_str() })
                .collect();
            img.0.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
            // an ethernet interface that is up, for the network option
            img.0.write("/sys/class/net/eth0/type", "1\n");
            img.0.write("/sys/class/net/eth0/operstate", "up\n");
            std::fs::create_dir_all(img.0.path("/sys/class/net/eth0/device")).unwrap();
            // the package's first-boot unit, which `image prepare` enables
            img.0.write(
                "/usr/lib/systemd/system/edge-setup-firstboot.service",
                &std::fs::read_to_string("packaging/systemd/edge-setup-firstboot.service").unwrap(),
            );
            // the VNC packages installed, as an image ready to prepare has them
            // (a fixture's image cannot be entered to install them)
            let packages = edge_setup::vnc::package_set::Desktop::for_os(
                &edge_setup::system::os_release::OsRelease::parse(common::DEBIAN_12),
                edge_setup::system::os_release::Family::Debian,
                &[],
            )
            .packages;
            let status: String = packages
                .iter()
                .map(|p| format!("Package: {p}\nStatus: install ok installed\n\n"))
                .collect();
            img.0.write("/var/lib/dpkg/status", &status);
            for step in &before {
                let stdin = if step == &enable_admin { "secret12\n" } else { "" };
                let step: Vec<&str> = step
                    .iter()
                    .map(|w| if w == "ANSWERS" { answers.as_str() } else { w.as_str() })
                    .collect();
                img.0.cmd().args(&step).write_stdin(stdin).assert().success();
            }
            let mut cmd = img.0.cmd();
            if dry_run {
                cmd.arg("--dry-run");
            }
            let out = cmd.arg("--json").args(&command).write_stdin(stdin).output().unwrap();
            let json = envelope(&out);
            assert!(out.status.success(), "{what}: {json:#}");
            results.push(relative_changes(&json, img.0.root()));
        }
        assert!(!results[1].is_empty(), "{what}: the real run changed nothing");
        assert_eq!(
            results[0], results[1],
            "{what}: the dry run (left) planned other changes than the run made (right)"
        );
    }
}
