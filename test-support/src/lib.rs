//! The one place the workspace's tests get a fresh database and the token and issuer fixtures.
//!
//! - [`db`]: a database that exists for one test, a SQLite file or a new PostgreSQL database,
//!   removed when the test is done.
//! - [`fixtures`]: the issuer and audience test bundles trust, the standard claim set, and the
//!   named test keys.
//! - [`html`]: the hidden fields of the control plane's login and logout forms.
//!
//! Only tests and benches depend on this crate; it is never published.

pub mod db;
pub mod fixtures;
pub mod html;
