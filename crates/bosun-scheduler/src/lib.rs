//! The bosun scheduler.

pub mod framework;
pub mod plugins;
