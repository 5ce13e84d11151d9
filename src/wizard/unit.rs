//! An answers table as one unit: its typed table, its plan against the system,
//! and the apply of that plan. An option registers its table in [`super::OPTIONS`]
//! with [`Registered`], and answers files are read, planned and applied through
//! this alone: a new table is its own module, one registry entry, its `setup`
//! subcommand and its lines in examples/appliance.toml.

use std::any::Any;
use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::answers::Answers;
use super::input::{Input, Source};
use super::{device_id, post_install};
use crate::config::DeviceId;
use crate::context::Ctx;
use crate::error::Result;

/// An option's table in an answers file, typed: serde's derive (with
/// `deny_unknown_fields`) or the option's own `Deserialize` is its schema.
pub trait Table: Serialize + DeserializeOwned + Any + Send + Sync {
    /// Its name in an answers file: `[name]`, or `[[name]]` for a list.
    const NAME: &'static str;

    /// The secret files it names, which `shred-secrets` removes after the apply.
    fn secret_files(&self) -> Vec<&Path> {
        Vec::new()
    }

    /// Checks the table against the system and against the options planned
    /// before it in the same file (`session`); changes nothing. `None` when the
    /// table asks for nothing.
    fn plan(&self, ctx: &Ctx, at: &At, session: &mut Session) -> Result<Option<Box<dyn Apply>>>;
}

/// A checked table, ready to apply.
pub trait Apply {
    fn apply(self: Box<Self>, ctx: &Ctx, session: &mut Session) -> Result<()>;
}

/// Where a table was read, for messages and for the lookups the options share
/// with config.dat and the console.
pub struct At<'a> {
    /// The file, as given on the command line.
    pub file: &'a str,
    pub name: &'static str,
    /// The table's keys with their values as the schema read them.
    pub values: toml::Table,
}

impl At<'_> {
    /// `FILE [name]`, or `FILE [[name]]` for a list.
    pub fn origin(&self) -> String {
        format!("{} [{}]", self.file, self.name)
    }

    /// The table as an option's input (never interactive).
    pub fn input(&self) -> Input<'_> {
        Input {
            source: Source::Answers(&self.values),
            interactive: false,
            noninteractive: "the answers file",
            origin: self.origin(),
        }
    }
}

/// What the options of one answers file share while they are planned and applied.
pub struct Session<'a> {
    pub answers: &'a Answers,
    pub file: &'a str,
    /// `setup --answers --force`: the network even over SSH.
    pub force: bool,
    /// Option 2's record as this file plans it; options 3 and 6 need it.
    pub post_install: Option<post_install::State>,
    /// Whether option 2 has been applied in this run: its record is then read back.
    pub post_installed: bool,
}

impl<'a> Session<'a> {
    pub fn new(answers: &'a Answers, file: &'a str, force: bool) -> Session<'a> {
        Session {
            answers,
            file,
            force,
            post_install: None,
            post_installed: false,
        }
    }

    /// The ID the file's `[device-id]` table sets, for options 2 and 7 to register the
    /// agent with when none is set yet ([device-id] itself applies last, in its menu place).
    pub fn given_device_id(&self, ctx: &Ctx) -> Result<Option<DeviceId>> {
        let Some(table) = self.answers.get::<device_id::Table>() else {
            return Ok(None);
        };
        let origin = format!("{} [{}]", self.file, device_id::Table::NAME);
        Ok(match device_id::plan(table, &origin, ctx.sys.is_image())? {
            Some(device_id::Plan::Set(id)) => Some(id),
            _ => None,
        })
    }

    /// Option 2's record for options 3 and 6 to plan with: this file's, or the one an
    /// earlier run left.
    pub fn post_install_state(&self, ctx: &Ctx) -> Result<post_install::State> {
        match &self.post_install {
            Some(s) => Ok(s.clone()),
            None => post_install::require_state(ctx, "The [certificates] and [tenant-password] tables"),
        }
    }

    /// The record to apply options 3 and 6 with: read back once option 2 has run.
    pub fn applied_state(&self, ctx: &Ctx, planned: &post_install::State) -> Result<post_install::State> {
        Ok(match self.post_installed {
            true => post_install::read_state(&ctx.sys)?.unwrap_or_else(|| planned.clone()),
            false => planned.clone(),
        })
    }
}

/// A table as the registry holds it, its type erased.
pub trait Unit: Sync {
    fn name(&self) -> &'static str;
    /// Reads this table (if the document has it) from a whole answers document,
    /// parsed once for every table (`Document`).
    fn parse(&self, document: &Document) -> std::result::Result<Option<Parsed>, toml::de::Error>;
    fn plan(&self, ctx: &Ctx, session: &mut Session) -> Result<Option<Box<dyn Apply>>>;
    fn secret_files<'a>(&self, answers: &'a Answers) -> Vec<&'a Path>;
}

/// An answers document as toml parsed it, with the places of its keys and values.
pub type Document<'i> = toml::Spanned<toml::de::DeTable<'i>>;

/// One table read from a file: its typed value and its keys.
pub struct Parsed {
    pub(super) typed: Box<dyn Any + Send + Sync>,
    pub(super) values: toml::Value,
}

impl Parsed {
    pub fn new<T: Table>(table: T) -> Parsed {
        let values = toml::Value::try_from(&table).expect("a table serializes as it was read");
        Parsed {
            typed: Box::new(table),
            values,
        }
    }
}

/// Registers `T` in [`super::OPTIONS`]: `table: Some(&Registered::<agent::Table>::UNIT)`.
pub struct Registered<T>(PhantomData<fn() -> T>);

impl<T: Table> Registered<T> {
    pub const UNIT: Self = Registered(PhantomData);
}

impl<T: Table> Unit for Registered<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn parse(&self, document: &Document) -> std::result::Result<Option<Parsed>, toml::de::Error> {
        let table = Only::<T>(T::NAME, PhantomData).deserialize(toml::Deserializer::from(document.clone()))?;
        Ok(table.map(Parsed::new))
    }

    fn plan(&self, ctx: &Ctx, session: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        let Some(table) = session.answers.get::<T>() else {
            return Ok(None);
        };
        let values = match session.answers.values(T::NAME) {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        let at = At {
            file: session.file,
            name: T::NAME,
            values,
        };
        table.plan(ctx, &at, session)
    }

    fn secret_files<'a>(&self, answers: &'a Answers) -> Vec<&'a Path> {
        answers.get::<T>().map(T::secret_files).unwrap_or_default()
    }
}

/// Deserializes the one key `.0` of a document, and nothing else: each option
/// reads its own table from the whole text, so toml places its errors (line and
/// column) as for the file. The other names are checked against the registry
/// before (`answers::unknown_names`).
pub(super) struct Only<T>(pub &'static str, pub PhantomData<T>);

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Only<T> {
    type Value = Option<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Option<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Only<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an answers file")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0 {
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}
