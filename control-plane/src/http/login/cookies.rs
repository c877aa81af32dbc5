//! The login pages' cookies: read from a request and set on a response, always `HttpOnly`,
//! `SameSite=Lax` and `Path=/`; with an https issuer also `Secure` and named with the `__Host-`
//! prefix, so that no other host (a subdomain) can plant or read one.

use axum::http::{header, HeaderMap};

/// A cookie the login pages use.
#[derive(Debug, Clone, Copy)]
pub struct Cookie {
    /// Its name without the `__Host-` prefix.
    pub name: &'static str,
    /// The prefix every value it holds starts with.
    pub prefix: &'static str,
}

/// The browser's CSRF cookie.
pub const LOGIN: Cookie = Cookie {
    name: "portcullis-login",
    prefix: "pcl_",
};

/// The browser's sign-in session.
pub const SESSION: Cookie = Cookie {
    name: "portcullis-session",
    prefix: "pcb_",
};

/// Length of a value: the prefix and 43 base64url characters (256 bits).
const VALUE_LENGTH: usize = 47;

impl Cookie {
    fn full_name(self, secure: bool) -> String {
        if secure {
            format!("__Host-{}", self.name)
        } else {
            self.name.to_owned()
        }
    }

    /// Its value in `headers`, if the browser sent one of the right shape.
    pub fn read(self, headers: &HeaderMap, secure: bool) -> Option<String> {
        let wanted = self.full_name(secure);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, v)| *n == wanted && v.len() == VALUE_LENGTH && v.starts_with(self.prefix))
            .map(|(_, v)| v.to_owned())
    }

    /// `Set-Cookie` for `value`, kept `max_age` seconds.
    pub fn set(self, value: &str, max_age: i64, secure: bool) -> String {
        let secure_flag = if secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure_flag}",
            self.full_name(secure)
        )
    }
}
