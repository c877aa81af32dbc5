//! Policies: the set and its validation, the versioned store, the test corpus, Cedar's
//! diagnostics for authors, and the admin API's own policies.

pub mod admin_api;
pub mod corpus;
pub mod diagnostics;
pub mod service;
pub mod set;
pub mod store;
