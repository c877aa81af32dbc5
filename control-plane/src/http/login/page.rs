//! The hosted login pages: server-rendered HTML that works without JavaScript (there is none),
//! with labelled fields and one small stylesheet, sent with headers that keep them out of
//! frames (clickjacking), out of caches and out of `Referer` headers.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::sync::LazyLock;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem;\
box-shadow:0 1px 4px #0002}h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}\
button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem}\
.error{color:#a00;background:#fee;padding:.5rem;border-radius:.3rem}.app{color:#555}";

/// The `Content-Security-Policy`: nothing but this page's own stylesheet (by hash), no frames
/// around it, forms only to this origin.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// Text safe inside HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (plain text) and `body` (HTML, already escaped), with the headers
/// every login page gets; `cookie` is set when given.
pub fn page(status: StatusCode, title: &str, body: &str, cookie: Option<String>) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// An error page that sends the browser nowhere.
pub fn error(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Sign-in error",
        &format!(
            "<h1>Sign-in error</h1><p class=\"error\" role=\"alert\">{}</p>",
            escape(message)
        ),
        None,
    )
}

/// What a login form shows and carries.
#[derive(Debug)]
pub struct Form<'a> {
    /// The application's display name.
    pub client_name: &'a str,
    /// Hidden fields: the authorization request's parameters and the CSRF token.
    pub hidden: &'a [(&'a str, String)],
    /// The error to show, if the last attempt failed.
    pub error: Option<&'a str>,
    /// The username to prefill.
    pub username: Option<&'a str>,
}

fn hidden_fields(hidden: &[(&str, String)]) -> String {
    hidden
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect()
}

fn alert(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

/// The username and password form.
pub fn password_form(form: &Form<'_>) -> String {
    format!(
        "<h1>Sign in</h1><p class=\"app\">to continue to {app}</p>{alert}\
         <form method=\"post\" action=\"/oauth2/login\">{hidden}\
         <label for=\"username\">Username</label>\
         <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" \
         autocapitalize=\"none\" required value=\"{username}\" autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" \
         autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        app = escape(form.client_name),
        alert = alert(form.error),
        hidden = hidden_fields(form.hidden),
        username = escape(form.username.unwrap_or("")),
    )
}

/// The one-time code form (the password was accepted).
pub fn code_form(form: &Form<'_>) -> String {
    format!(
        "<h1>Enter your code</h1><p class=\"app\">from your authenticator app, \
         to continue to {app}</p>{alert}\
         <form method=\"post\" action=\"/oauth2/login\">{hidden}\
         <label for=\"otp\">One-time code</label>\
         <input type=\"text\" id=\"otp\" name=\"otp\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" required autofocus>\
         <button type=\"submit\">Continue</button></form>",
        app = escape(form.client_name),
        alert = alert(form.error),
        hidden = hidden_fields(form.hidden),
    )
}

/// The form that confirms a logout.
pub fn logout_form(hidden: &[(&str, String)]) -> String {
    format!(
        "<h1>Sign out</h1><p>Do you want to sign out?</p>\
         <form method=\"post\" action=\"/oauth2/logout\">{hidden}\
         <button type=\"submit\">Sign out</button></form>",
        hidden = hidden_fields(hidden),
    )
}
