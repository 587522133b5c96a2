//! The etcd v3 backend of [`bosun_store::Store`].
