//! bosun's native container runtime: OCI image store, overlay rootfs, namespaces, cgroups, shim.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cgroup;
pub mod error;
pub(crate) mod fsutil;
pub mod image;

pub use error::{Error, Result};

pub mod shim {
    //! placeholder
    pub fn main(_args: Vec<String>) -> i32 {
        0
    }
}
