//! What of the configuration and of edge-setup's records goes into the bundle,
//! as positive lists: a value goes in only where a list here names it; anything
//! else (a key added to edge-setup later, one it does not know) by name only.

use std::path::Path;

use serde_json::{Map, Value};

use crate::config::{self, Config, KEYS};
use crate::error::Result;
use crate::system::System;

/// The configuration keys whose values go into the bundle: settings, and the
/// paths of files (never a file's content). Each value goes in only as its key's
/// rule accepts it, so it is never something else written there.
const CONFIG_VALUES: &[&str] = &[
    "c8y.url",
    "c8y.insecure",
    "c8y.credentials-file",
    "c8y.ca-file",
    "c8y.proxy",
    "c8y.request-timeout",
    "agent.service",
    "device.id",
    "vnc.listen",
    "vnc.desktop-apps",
    "vnc.geometry",
    "vnc.lock-wait",
    "disk.data-mount",
];

/// The fields of the remote access record that go into the bundle: the record
/// also holds salted digests of what was sent (a VNC password among it), which
/// an 8-character password would not withstand offline.
const RECORD_FIELDS: &[&str] = &["tenant", "device"];
const ENDPOINT_FIELDS: &[&str] = &["id", "protocol", "user", "public_key"];

/// The configuration as the bundle has it: every key edge-setup knows with its
/// value (or why not), then the names of other keys in the file; `None` when
/// there is no configuration file.
pub fn config(sys: &System) -> Result<Option<String>> {
    if sys.meta(Path::new(config::PATH))?.is_none() {
        return Ok(None);
    }
    let cfg = Config::load(sys)?;
    let mut text = format!(
        "# The keys of {}, as 'edge-setup config list --all' shows them; the value only\n\
         # of the keys whose values the diagnostic bundle takes (README), others by name.\n",
        config::PATH
    );
    for def in KEYS {
        let value = if !CONFIG_VALUES.contains(&def.name) {
            "(value left out)".to_string()
        } else {
            // an invalid value is not shown: it may be anything, a secret pasted in the wrong place
            match cfg.show(sys, def.name) {
                Ok(Some(v)) if cfg.is_set(def.name) || def.default != Some(v.as_str()) => v,
                Ok(Some(v)) if v.is_empty() => "(default: none)".to_string(),
                Ok(Some(v)) => format!("{v} (default)"),
                Ok(None) => "(not set)".to_string(),
                Err(_) => "(not valid: value left out)".to_string(),
            }
        };
        text.push_str(&format!("{}={value}\n", def.name));
    }
    for name in cfg.stored_names() {
        if config::key(&name).is_err() {
            text.push_str(&format!("{name}=(not a key edge-setup knows: value left out)\n"));
        }
    }
    Ok(Some(text))
}

/// The remote access record without its digests and salt; `None` when it is not JSON.
pub fn remote_access_record(text: &str) -> Option<String> {
    let record: Value = serde_json::from_str(text).ok()?;
    let mut kept = pick(&record, RECORD_FIELDS);
    let endpoints: Vec<Value> = record
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Value::Object(pick(e, ENDPOINT_FIELDS)))
        .collect();
    kept.insert("endpoints".to_string(), Value::Array(endpoints));
    serde_json::to_string_pretty(&Value::Object(kept)).ok()
}

fn pick(object: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| object.get(*f).map(|v| (f.to_string(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::testkit::Fixture;

    /// A key whose name suggests a secret never has its value taken; every key
    /// listed is one edge-setup knows.
    #[test]
    fn the_values_taken_are_of_known_keys_none_named_like_a_secret() {
        for name in CONFIG_VALUES {
            assert!(config::key(name).is_ok(), "{name}");
            for word in ["password", "secret", "token", "passphrase", "private"] {
                assert!(!name.contains(word), "{name}");
            }
        }
    }

    #[test]
    fn the_configuration_shows_known_values_and_only_the_names_of_the_rest() {
        let f = Fixture::debian();
        let sys = f.system(Mode::Image, false);
        assert_eq!(config(&sys).unwrap(), None);
        f.write(
            config::PATH,
            "[c8y]\nurl = \"https://t.example.com\"\ncredentials-file = \"/etc/edge-setup/tenant\"\n\
             proxy = \"http://user:Hunter2@proxy:3128\"\npassword = \"Hunter2\"\n\
             [vnc]\nlisten = \"lan\"\n[extra]\ntoken = \"Hunter2\"\n",
        );
        let text = config(&sys).unwrap().unwrap();
        assert!(!text.contains("Hunter2"), "{text}");
        for line in [
            "c8y.url=https://t.example.com\n",
            "c8y.credentials-file=/etc/edge-setup/tenant\n",
            "c8y.proxy=(not valid: value left out)\n",
            "vnc.listen=lan\n",
            "vnc.geometry=1280x800 (default)\n",
            "vnc.desktop-apps=(default: none)\n",
            "c8y.ca-file=(not set)\n",
            "c8y.password=(not a key edge-setup knows: value left out)\n",
            "extra.token=(not a key edge-setup knows: value left out)\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn the_remote_access_record_loses_its_digests() {
        let text = r#"{"tenant":"t100","device":"4711","salt":"00ff","endpoints":[
            {"id":"1","protocol":"VNC","user":"admin","digest":"abcd"},
            {"id":"2","protocol":"SSH","user":"op","digest":"ef01","public_key":"ssh-ed25519 AAAA"}]}"#;
        let kept: Value = serde_json::from_str(&remote_access_record(text).unwrap()).unwrap();
        assert_eq!(
            kept,
            serde_json::json!({"tenant": "t100", "device": "4711", "endpoints": [
                {"id": "1", "protocol": "VNC", "user": "admin"},
                {"id": "2", "protocol": "SSH", "user": "op", "public_key": "ssh-ed25519 AAAA"}]})
        );
        assert_eq!(remote_access_record("digest: abcd"), None);
    }
}
