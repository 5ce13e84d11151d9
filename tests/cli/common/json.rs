//! `--json` output checked against the schema the package ships
//! (`packaging/schema/edge-setup-output.schema.json`).

use std::sync::OnceLock;

const SCHEMA: &str = include_str!("../../../packaging/schema/edge-setup-output.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
    })
}

/// The one JSON object of a run's stdout, valid against the schema (a panic says where not).
pub fn envelope(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let errors: Vec<String> = validator()
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not as the schema says: {errors:#?}\n{value:#}");
    value
}

/// The paths a run wrote (or with --dry-run would write), in order.
pub fn written(json: &serde_json::Value) -> Vec<&str> {
    json["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes: {json:#}"))
        .iter()
        .filter(|c| c["action"] == "write")
        .map(|c| c["path"].as_str().unwrap())
        .collect()
}
