//! The post-installation wizard: the old script's menu, each option also a command.

pub mod config_dat;
