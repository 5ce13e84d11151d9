//! edge-setup: provisions a Cumulocity IoT Edge appliance.
//!
//! A library with a thin `main`: `app::run` turns a process into an exit code;
//! each capability is a module with its own command; everything that touches
//! the operating system goes through `system`.

pub mod agent;
pub mod app;
pub mod certs;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod device_id;
pub mod diag;
pub mod disk;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod health;
pub mod hooks;
pub mod image;
pub mod installed;
pub mod network;
pub mod output;
pub mod prompt;
pub mod registration;
pub mod remote_access;
pub mod system;
pub mod tenant;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tigervnc;
pub mod values;
pub mod vnc;
pub mod vnc_user;
pub mod wizard;
