//! Pure decision logic shared by the Portcullis edge filter and the control plane.
//!
//! Nothing on the request path performs I/O, so the crate builds for `wasm32-wasip1` (inside
//! Envoy) and natively (control plane, tests) and both sides decide identically; [`folder`], which
//! reads a policy folder for the control plane, tools and tests, is the one module that touches
//! the file system. A request flows through the modules in
//! this order:
//!
//! 1. [`bearer`] takes the token from the `Authorization` header (never the query string).
//! 2. [`jws`] splits and decodes the compact JWS strictly; [`jwk`] holds the trusted keys, and the
//!    key, not the token header, chooses the algorithm.
//! 3. [`claims`] reads the RFC 9068 claims with typed `NumericDate`s and checks them.
//! 4. [`revocation`] rejects revoked tokens, sessions and subjects.
//! 5. [`path`] normalises the request path the way the upstream will see it.
//! 6. [`policy`] builds the Cedar request from the verified identity and evaluates it against
//!    the [`slice`] of policies whose heads may match.
//!
//! [`bundle_signature`] checks that a bundle was signed by a key pinned in the filter
//! configuration, [`bundle`] turns it into a validated [`bundle::Snapshot`], and
//! [`gate`] runs the whole pipeline with its caches. [`config`] is the filter's configuration
//! contract and [`issue`] signs tokens (used by the control plane and tests).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bearer;
pub mod bundle;
pub mod bundle_signature;
pub mod cache;
pub mod claims;
pub mod config;
pub mod context;
pub mod corpus;
pub mod ed25519;
pub mod endpoint;
pub mod entity_store;
pub mod evaluation;
pub mod folder;
pub mod gate;
pub mod issue;
pub mod json;
pub mod jwk;
pub mod jws;
pub mod path;
pub mod policy;
pub mod revocation;
pub mod slice;
