//! The login form's CSRF defence: a random value in an `HttpOnly`, `SameSite=Lax` cookie, and
//! in every form a keyed hash of it, which only this server can compute. A form posted from
//! another site carries no matching token (it cannot read the cookie or the page), so a login
//! CSRF (signing the victim into the attacker's account) is refused.

use super::cookies::LOGIN;
use crate::keys::secrets::{constant_time_eq, random_secret, HashPurpose, MasterKey};
use axum::http::HeaderMap;

/// How long a login form stays usable, in seconds.
pub const FORM_LIFETIME: i64 = 1_800;

/// The login cookie of one browser.
#[derive(Debug, Clone)]
pub struct LoginCookie {
    value: String,
    /// `Set-Cookie` to send when the value is new.
    pub set_cookie: Option<String>,
}

impl LoginCookie {
    /// The browser's cookie, or a new one to set.
    pub fn of(
        headers: &HeaderMap,
        secure: bool,
    ) -> Result<Self, crate::keys::secrets::SecretError> {
        if let Some(value) = LOGIN.read(headers, secure) {
            return Ok(LoginCookie {
                value,
                set_cookie: None,
            });
        }
        let value = random_secret(LOGIN.prefix)?;
        Ok(LoginCookie {
            set_cookie: Some(LOGIN.set(&value, FORM_LIFETIME, secure)),
            value,
        })
    }

    /// The browser's cookie, only if it sent one.
    pub fn sent(headers: &HeaderMap, secure: bool) -> Option<Self> {
        LOGIN.read(headers, secure).map(|value| LoginCookie {
            value,
            set_cookie: None,
        })
    }

    /// The token forms carry.
    pub fn token(&self, master: &MasterKey) -> String {
        master.keyed_hash(HashPurpose::Csrf, &self.value)
    }

    /// Whether `presented` is this cookie's token.
    pub fn accepts(&self, master: &MasterKey, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| constant_time_eq(&self.token(master), p))
    }
}
