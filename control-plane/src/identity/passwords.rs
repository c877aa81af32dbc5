//! Password hashing with argon2id (m=19456 KiB, t=2, p=1), run on blocking threads behind a
//! semaphore so a login flood queues instead of stalling the async runtime.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Why a password was refused at creation or change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than 8 or more than 128 characters.
    #[error("password must be 8 to 128 characters")]
    Length,
    /// On the list of common passwords.
    #[error("password is too common")]
    Common,
}

/// The common passwords of 8 characters or more among the 30,000 most common (zxcvbn's list;
/// shorter ones are refused by length anyway), lower-cased, sorted, one per line, zlib
/// compressed (45 KiB instead of 109 KiB); provenance and license in
/// `control-plane/data/common-passwords.LICENSE`.
const COMMON_ZLIB: &[u8] = include_bytes!("../../data/common-passwords.txt.zlib");

/// The inflated list, sorted for binary search; empty if it does not inflate (a test guards it).
static COMMON: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    miniz_oxide::inflate::decompress_to_vec_zlib(COMMON_ZLIB)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
});

/// Whether `password` (compared lower-cased) is on the common list.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON
        .binary_search_by(|entry| entry.as_str().cmp(&lower))
        .is_ok()
}

/// Checks length (in characters, never truncated) and the common list.
pub fn check_policy(password: &str) -> Result<(), PasswordPolicyError> {
    let length = password.chars().count();
    if !(8..=128).contains(&length) {
        return Err(PasswordPolicyError::Length);
    }
    if is_common(password) {
        return Err(PasswordPolicyError::Common);
    }
    Ok(())
}

/// Why hashing failed (never the password's fault).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hashing task could not run.
    #[error("password hashing unavailable")]
    Unavailable,
}

/// The result of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password matched.
    pub matches: bool,
    /// A fresh hash with today's parameters, when the stored one is weaker.
    pub rehash: Option<String>,
}

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt_bytes =
        crate::keys::secrets::random_bytes::<16>().map_err(|_| HashError::Unavailable)?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| HashError::Unavailable)?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| HashError::Unavailable)
}

fn is_current(hash: &PasswordHash<'_>) -> bool {
    hash.algorithm.as_str() == "argon2id"
        && Params::try_from(hash).is_ok_and(|p| p.m_cost() >= 19_456 && p.t_cost() >= 2)
}

fn verify_now(stored: &str, password: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified {
            matches: false,
            rehash: None,
        };
    };
    // Verification uses the parameters recorded in the stored hash.
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    let rehash = if matches && !is_current(&parsed) {
        hash_now(password).ok()
    } else {
        None
    };
    Verified { matches, rehash }
}

impl Hasher {
    /// A hasher running at most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let dummy = hash_now("portcullis-dummy-password")?;
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    /// A hash of `password` with today's parameters.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Unavailable)?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .map_err(|_| HashError::Unavailable)?
    }

    /// Checks `password` against `stored`; with `None` (unknown user) it spends the same time
    /// on a dummy hash and never matches.
    pub async fn verify(
        &self,
        stored: Option<&str>,
        password: &str,
    ) -> Result<Verified, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Unavailable)?;
        let known = stored.is_some();
        let stored = stored
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_owned();
        let verified = tokio::task::spawn_blocking(move || verify_now(&stored, &password))
            .await
            .map_err(|_| HashError::Unavailable)?;
        Ok(if known {
            verified
        } else {
            Verified {
                matches: false,
                rehash: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_characters_and_refuses_common_passwords() {
        assert_eq!(check_policy("short"), Err(PasswordPolicyError::Length));
        assert_eq!(
            check_policy(&"x".repeat(129)),
            Err(PasswordPolicyError::Length)
        );
        assert_eq!(check_policy("Password1"), Err(PasswordPolicyError::Common));
        assert!(check_policy("correct horse battery").is_ok());
        // Eight multi-byte characters are eight characters.
        assert!(check_policy("ééééxéé1").is_ok());
    }

    #[test]
    fn the_shipped_common_list_inflates_sorted_and_covers_the_breach_lists() {
        assert!(
            COMMON.len() >= 10_000,
            "only {} common passwords inflated",
            COMMON.len()
        );
        assert!(
            COMMON.windows(2).all(|pair| pair[0] < pair[1]),
            "the list must be sorted for binary search"
        );
        for common in [
            "iloveyou",
            "sunshine",
            "trustno1",
            "baseball",
            "superman",
            "Qwertyuiop",
        ] {
            assert_eq!(
                check_policy(common),
                Err(PasswordPolicyError::Common),
                "{common} is accepted"
            );
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_required_parameters() {
        let hasher = Hasher::new(2).unwrap();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let ok = hasher
            .verify(Some(&hash), "correct horse battery")
            .await
            .unwrap();
        assert!(ok.matches && ok.rehash.is_none());
        let long_prefix = hasher
            .verify(Some(&hash), "correct horse battery!")
            .await
            .unwrap();
        assert!(!long_prefix.matches);
        assert!(
            !hasher
                .verify(None, "correct horse battery")
                .await
                .unwrap()
                .matches
        );
    }

    #[tokio::test]
    async fn weaker_hashes_are_rehashed_on_login() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"correct horse battery",
            &SaltString::encode_b64(&[1; 16]).unwrap(),
        )
        .unwrap()
        .to_string();
        let verified = Hasher::new(1)
            .unwrap()
            .verify(Some(&weak), "correct horse battery")
            .await
            .unwrap();
        assert!(verified.matches);
        assert!(verified.rehash.unwrap().contains("m=19456,t=2,p=1"));
    }
}
