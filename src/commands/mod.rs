//! Commands whose domain modules take only the system: here the clap
//! arguments become calls, and the results become what the user reads.

pub mod check;
pub mod completions;
pub mod config;
pub mod device_id;
pub mod diag;
pub mod image;
pub mod register;
pub mod remote_access;
pub mod remote_connectivity;
pub mod vnc;
pub mod vnc_user;
