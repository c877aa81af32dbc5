//! RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps): ±1 step of clock skew, each step usable once.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Step length in seconds.
pub const STEP: i64 = 30;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps take).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes what [`base32`] produced (upper case, no padding); `None` on any other character.
pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let value = BASE32.iter().position(|a| *a == c)? as u32;
        buffer = ((buffer << 5) | value) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The code for `secret` at time step `step`.
pub fn code(secret: &[u8], step: i64) -> String {
    let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

/// The step `presented` matches within ±1 of `now`, if it is later than `last_used`.
pub fn verify(secret: &[u8], presented: &str, now: i64, last_used: Option<i64>) -> Option<i64> {
    if presented.len() != 6 || !presented.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.div_euclid(STEP);
    (current - 1..=current + 1)
        .filter(|step| last_used.is_none_or(|last| *step > last))
        .find(|step| crate::keys::secrets::constant_time_eq(&code(secret, *step), presented))
}

/// An `otpauth://` URI for enrolment.
pub fn uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let encode = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&digits=6&period=30",
        encode(issuer),
        encode(account),
        base32(secret),
        encode(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        // RFC 6238 appendix B, last six digits.
        assert_eq!(code(secret, 59 / STEP), "287082");
        assert_eq!(code(secret, 1_111_111_109 / STEP), "081804");
        assert_eq!(code(secret, 2_000_000_000 / STEP), "279037");
    }

    #[test]
    fn codes_are_single_use_and_skew_is_one_step() {
        let secret = b"12345678901234567890";
        let now = 1_000_000_000;
        let step = now / STEP;
        let current = code(secret, step);
        assert_eq!(verify(secret, &current, now, None), Some(step));
        assert_eq!(verify(secret, &current, now, Some(step)), None);
        assert!(verify(secret, &code(secret, step - 1), now, None).is_some());
        assert!(verify(secret, &code(secret, step - 2), now, None).is_none());
        assert!(verify(secret, "12345", now, None).is_none());
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(decode_base32("MZXW6YTBOI").unwrap(), b"foobar");
        let secret: Vec<u8> = (0..20).collect();
        assert_eq!(decode_base32(&base32(&secret)).unwrap(), secret);
        assert!(decode_base32("mzxw").is_none());
    }
}
