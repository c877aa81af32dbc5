//! OAuth 2.0 and OpenID Connect: clients and what they register, scopes, audiences, codes,
//! and the access and ID tokens the control plane signs. The endpoints themselves are in
//! [`crate::http`].

pub mod audience;
pub mod clients;
pub mod codes;
pub mod grant;
pub mod id_token;
pub mod registration;
pub mod scopes;
pub mod service;
pub mod tokens;
