//! Code generated from `proto/jwed/v1/jwed.proto` by `build.rs`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("jwed.v1");

/// Encoded `FileDescriptorSet` of the jwed protos, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jwed_descriptor.bin"));
