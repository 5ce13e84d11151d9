//! Option 14, Set configuration keys, and the `[config]` table of an answers
//! file: the keys of `edge-setup config`, written as in edge-setup.toml
//! (`vnc.geometry = "1920x1080"`), each read by its key's own rule. The keys
//! another table sets (`c8y.url` is `[agent] url`, ...) are refused here: one
//! place per key in a file.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::unit::{self, Apply, At, Session};
use crate::config::{self, KEYS, KeyDef};
use crate::context::Ctx;
use crate::error::Result;
use crate::prompt::Question;

/// Keys another table of an answers file sets, with that table's key.
const ELSEWHERE: &[(&str, &str)] = &[
    (config::C8Y_URL.name, "[agent] url, which also enables the agent"),
    (config::C8Y_INSECURE.name, "[agent] insecure"),
    (config::VNC_LISTEN.name, "[vnc] listen"),
    (config::DEVICE_ID.name, "[device-id] id"),
];

/// Every key by section (`vnc`) and name in it (`geometry`): those set elsewhere too,
/// which are refused with where they go rather than as unknown.
static SECTIONS: LazyLock<BTreeMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    let mut sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for def in KEYS {
        let (section, key) = def.name.split_once('.').expect("key names have a section");
        sections.entry(section).or_default().push(key);
    }
    sections
});
/// What `[config]` holds: the sections, or the keys' full names (`"vnc.geometry" = ...`, as
/// a dictionary with dotted names from Ansible writes them).
static TOP_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| SECTIONS.keys().copied().chain(KEYS.iter().map(|d| d.name)).collect());

/// The keys of `edge-setup config` this option sets, in `config list`'s order.
pub fn settable() -> impl Iterator<Item = &'static KeyDef> {
    KEYS.iter().filter(|d| !ELSEWHERE.iter().any(|(k, _)| *k == d.name))
}

/// `[config]`: checked values, normalised as `config set` stores them, in file order.
#[derive(Default, Clone)]
pub struct Table {
    pub values: Vec<(&'static KeyDef, String)>,
}

impl unit::Table for Table {
    const NAME: &'static str = "config";

    fn plan(&self, ctx: &Ctx, _: &At, _: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        ctx.sys.require_root("setup config")?;
        Ok(Some(Box::new(self.clone())))
    }
}

impl Apply for Table {
    fn apply(self: Box<Self>, ctx: &Ctx, _: &mut Session) -> Result<()> {
        crate::commands::config::set_keys(ctx, &self.values)?;
        let keys: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(d, v)| (d.name.to_string(), v.as_str().into()))
            .collect();
        ctx.out.result(serde_json::json!({ "keys": keys }));
        Ok(())
    }
}

/// Menu entry: one key, asked with its rule, its example and its value now.
pub fn interactive(ctx: &Ctx) -> Result<()> {
    ctx.sys.require_root("setup config")?;
    let cfg = ctx.config()?;
    for def in settable() {
        let now = cfg.show(&ctx.sys, def.name)?.unwrap_or_default();
        ctx.out.info(&format!("  {:<22} {now}", def.name));
    }
    drop(cfg);
    let q = Question {
        prompt: "Key to set",
        noninteractive: "edge-setup config set KEY VALUE, or setup --answers FILE with a [config] table",
    };
    let name = ctx.prompt.text(q, None, &|s| key(s).map(drop))?;
    let def = key(&name).expect("validated at the prompt");
    ctx.out
        .info(&format!("{}: {} For example: {}", def.name, def.doc, def.example));
    let now = ctx.config()?.show(&ctx.sys, def.name)?;
    let prompt = format!("Value of {}", def.name);
    let q = Question {
        prompt: &prompt,
        noninteractive: "edge-setup config set KEY VALUE",
    };
    let value = ctx.prompt.text(q, now.as_deref(), &|s| (def.validate)(s).map(drop))?;
    let normalized = config::validate_value(def, &value)?;
    crate::commands::config::set_keys(ctx, &[(def, normalized)])
}

/// A key this option sets, or why not.
fn key(name: &str) -> std::result::Result<&'static KeyDef, String> {
    if let Some((_, there)) = ELSEWHERE.iter().find(|(k, _)| *k == name) {
        return Err(format!("{name} is set with {there}"));
    }
    settable().find(|d| d.name == name).ok_or_else(|| {
        let names: Vec<&str> = settable().map(|d| d.name).collect();
        format!("no key '{name}' (keys: {})", names.join(", "))
    })
}

/// As edge-setup.toml holds them: a table per section, lists as arrays.
impl Serialize for Table {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut sections: BTreeMap<&str, BTreeMap<&str, toml::Value>> = BTreeMap::new();
        for (def, value) in &self.values {
            let (section, key) = def.name.split_once('.').expect("key names have a section");
            let value = match def.list {
                true => toml::Value::Array(value.split(',').filter(|v| !v.is_empty()).map(|v| v.into()).collect()),
                false => toml::Value::String(value.clone()),
            };
            sections.entry(section).or_default().insert(key, value);
        }
        sections.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Table, D::Error> {
        d.deserialize_map(TableVisitor)
    }
}

struct TableVisitor;

impl<'de> Visitor<'de> for TableVisitor {
    type Value = Table;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table of configuration keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Table, A::Error> {
        let mut table = Table::default();
        while let Some(name) = map.next_key_seed(Name(None))? {
            match config::key(name) {
                Ok(def) => table.values.push((def, map.next_value_seed(Value(def))?)),
                Err(_) => table.values.extend(map.next_value_seed(Section(name))?),
            }
        }
        Ok(table)
    }
}

/// A name in `[config]` (`None`: a section or a key's full name) or in a section,
/// refused when unknown (in a seed, so that toml places the error at the name).
struct Name(Option<&'static str>);

impl<'de> DeserializeSeed<'de> for Name {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<&'static str, D::Error> {
        let name = String::deserialize(d)?;
        let (known, full): (&'static [&'static str], String) = match self.0 {
            None => (&TOP_NAMES, name.clone()),
            Some(section) => (
                SECTIONS.get(section).map_or(&[], Vec::as_slice),
                format!("{section}.{name}"),
            ),
        };
        if let Some((full, there)) = ELSEWHERE.iter().find(|(k, _)| *k == full) {
            return Err(de::Error::custom(format!("{full} is set with {there}")));
        }
        known
            .iter()
            .find(|k| **k == name)
            .copied()
            .ok_or_else(|| de::Error::unknown_field(&name, known))
    }
}

/// The keys of one section, each value checked by its key's rule.
struct Section(&'static str);

impl<'de> DeserializeSeed<'de> for Section {
    type Value = Vec<(&'static KeyDef, String)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Section {
    type Value = Vec<(&'static KeyDef, String)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a table of the {} keys", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while let Some(key) = map.next_key_seed(Name(Some(self.0)))? {
            let name = format!("{}.{key}", self.0);
            let def = config::key(&name).expect("a settable key");
            values.push((def, map.next_value_seed(Value(def))?));
        }
        Ok(values)
    }
}

/// A key's value: a string, number or boolean as `config set` takes it, a list
/// key's as an array of strings too; normalised by the key's rule.
struct Value(&'static KeyDef);

impl<'de> DeserializeSeed<'de> for Value {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<String, D::Error> {
        let def = self.0;
        let text = match toml::Value::deserialize(d)? {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) if def.list => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| de::Error::custom(format!("invalid type: {} takes strings", def.name)))?
                .join(","),
            other => {
                return Err(de::Error::custom(format!(
                    "invalid type: {} for {}, expected a string like \"{}\"",
                    other.type_str(),
                    def.name,
                    def.example
                )));
            }
        };
        // the value itself is at the line and column the error names
        (def.validate)(&text).map_err(|rule| de::Error::custom(format!("invalid value for {}: {rule}", def.name)))
    }
}
