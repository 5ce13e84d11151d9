//! `diag collect`: the bundle.
// SKELETON: helper A replaces this file.

use crate::error::{Error, Result};
use crate::system::System;

pub fn run(_sys: &System, _output: Option<&std::path::Path>, _since: super::Since) -> Result<()> {
    Err(Error::failure("diag collect: not built yet"))
}
