//! OAuth 2.0: clients and what they register, scopes, audiences and the access tokens the control plane signs. The
//! endpoints themselves are in [`crate::http::oauth`].

pub mod audience;
pub mod clients;
pub mod codes;
pub mod grant;
pub mod registration;
pub mod scopes;
pub mod service;
pub mod tokens;
