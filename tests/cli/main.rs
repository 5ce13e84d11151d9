//! The integration tests, one binary: a module per command or concern. One test binary
//! links edge-setup and its dependencies once; fifteen linked them fifteen times, which on
//! two cores was most of the tests' build.

mod common;

mod check;
mod completion;
mod config;
mod device_id;
mod diag;
mod diag_upload;
mod examples;
mod expand_disk_real;
mod hints;
mod image;
mod json;
mod layout;
mod menu;
mod platform_steps;
mod post_install;
mod remote_access;
mod remote_connectivity;
mod setup;
mod streams;
mod version;
mod vnc;
mod vnc_user;
