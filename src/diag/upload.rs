//! `diag upload`: the bundle attached to the device in the tenant.
// SKELETON: helper B replaces this file.

use crate::error::{Error, Result};
use crate::tenant::Tenant;

pub fn run(_tenant: &Tenant, _bundle: &std::path::Path) -> Result<()> {
    Err(Error::failure("diag upload: not built yet"))
}
