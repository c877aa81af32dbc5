//! Key material: the master key that seals every secret at rest, the token-signing keys, the
//! ID-token keys and the bundle-signing keys, each with its pre-publication and rotation.

pub mod bundle;
pub mod id_token;
pub mod material;
pub mod secrets;
pub mod service;
pub mod signing;
