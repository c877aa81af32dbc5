//! Who people and machines are: users and their passwords and TOTP, sessions and their
//! revocations, the login throttle, and the authority an administrator holds over others.

pub mod authority;
pub mod browser_sessions;
pub mod login;
pub mod passwords;
pub mod service;
pub mod sessions;
pub mod throttle;
pub mod totp;
pub mod users;
