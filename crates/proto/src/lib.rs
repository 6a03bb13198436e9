//! Generated protobuf messages and gRPC services of Meridian.
//!
//! The `.proto` sources live in the repository's top-level `proto/` directory; this crate only
//! compiles them (with a vendored protoc, so no system install is needed). Everything is under
//! the [`v1`] module, mirroring the `meridian.v1` protobuf package; [`etcdserverpb`] holds the
//! small part of etcd's API the benchmark workload speaks.

/// Messages and services of the `meridian.v1` protobuf package.
#[allow(clippy::all, missing_docs, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("meridian.v1");
}

/// The client side of etcd's v3 KV `Put` (for `meridian workload kv` against etcd).
#[allow(clippy::all, missing_docs, rust_2018_idioms)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
