//! bosun's native container runtime: OCI image store, overlay rootfs, namespaces, cgroups, shim.
