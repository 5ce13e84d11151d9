//! The checks of edge-setup's own state, identity, agent, tenant and disk
//! (the VNC area's are `vnc_user::health`), the post-installation's certificates,
//! and the fixes `check --fix` applies. Checks only read.

pub mod agent;
pub mod certificates;
pub mod connection;
pub mod disk;
pub mod edge_setup;
pub mod fix;
pub mod identity;

pub use crate::health::{Area, Check, Fix, Probe, Status};
