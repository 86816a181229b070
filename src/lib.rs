//! jwed: a JWE decryption sidecar.
//!
//! jwed is the only process that holds the private decryption key. Callers
//! send it a compact JWE over gRPC; it decrypts the token, verifies the
//! signed JWT inside, validates the claims and returns them. See the README
//! for the threat model and configuration.
//!
//! Imports are grouped std, external crates, then this crate, each group
//! separated by a blank line.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod alg;
pub mod audit;
pub mod audit_verify;
pub mod authz;
pub mod bench;
pub mod cache;
pub mod callers;
pub mod claims;
pub mod cli;
pub mod client;
pub mod compact;
pub mod config;
pub mod decrypt;
pub mod gate;
pub mod issuers;
pub mod json;
pub mod jwk;
pub mod keygen;
pub mod keys;
pub mod metrics;
pub mod mint;
pub mod oaep;
pub mod ops;
pub mod pb;
pub mod revocation;
pub mod server;
pub mod service;
pub mod status;
pub mod store;
pub mod telemetry;
