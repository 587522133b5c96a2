//! bosun's native container runtime: OCI image store, overlay rootfs, namespaces, cgroups, shim.
//!
//! Layers, bottom up: [`image`] (content-addressed store, layers unpacked once), [`cgroup`]
//! (v1 and v2 behind one trait), [`spec`] (what a container is), the container's init
//! (namespaces, overlay rootfs, pivot_root, capabilities) run by the [`shim`] (one per
//! container, survives the agent), and [`runtime::Runtime`], the API the kubelet calls.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bench;
pub mod cgroup;
pub mod error;
pub mod exec;
pub(crate) mod fsutil;
pub mod image;
mod init;
pub mod logs;
pub mod runtime;
pub mod sandbox;
pub mod shim;
pub mod spec;

pub use error::{Error, Result};
pub use runtime::{Runtime, RuntimeConfig};
pub use spec::{ContainerSpec, ContainerState, Status};
