//! What the post-installation (option 2) leaves behind, as its record says: the
//! tenant domain and the files it installed. Options 3, 4 and 6 and `check`
//! read it; the wizard writes it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use x509_parser::time::ASN1Time;

use crate::error::{Error, Result};
use crate::system::System;

/// Where the post-installation records that it succeeded (no secret in it).
pub const STATE_PATH: &str = "/var/lib/edge-setup/post-install.json";
/// Where the platform's certificate and key are installed.
pub const SSL_DIR: &str = "/etc/edge-setup/ssl";
/// Where the licences are installed.
pub const LICENCE_DIR: &str = "/etc/edge-setup/licence";
/// The installed files, as the platform steps and the state file name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub licence: PathBuf,
    pub apama_licence: Option<PathBuf>,
}

impl InstalledFiles {
    pub fn for_domain(domain: &str, apama: bool) -> Self {
        InstalledFiles {
            certificate: Path::new(SSL_DIR).join(format!("{domain}.crt")),
            key: Path::new(SSL_DIR).join(format!("{domain}.key")),
            licence: Path::new(LICENCE_DIR).join("c8y.licence"),
            apama_licence: apama.then(|| Path::new(LICENCE_DIR).join("apama.xml")),
        }
    }
}

/// What a successful post-installation leaves behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub tenant_domain: String,
    pub tenant_username: String,
    pub files: InstalledFiles,
    /// RFC 3339, UTC.
    pub completed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates_updated_at: Option<String>,
}

pub fn now_rfc3339() -> String {
    ASN1Time::now()
        .to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats")
}

pub fn read_state(sys: &System) -> Result<Option<State>> {
    let Some(text) = sys.read_string(Path::new(STATE_PATH))? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::failure(format!("{} is damaged", sys.host_path(Path::new(STATE_PATH)).display()))
            .why(e)
            .hint("run the post-installation again: sudo edge-setup setup post-install")
    })
}
