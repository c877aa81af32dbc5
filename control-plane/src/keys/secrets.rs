//! Random identifiers and secrets, keyed hashes for stored secrets, and sealing of private keys
//! at rest under the master key.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Why the master key or a sealed value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The operating system's random source failed.
    #[error("no randomness available")]
    Random,
    /// The master key is not base64 of 32 bytes.
    #[error("PORTCULLIS_MASTER_KEY must be base64 of exactly 32 bytes")]
    BadMasterKey,
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file can be read by its group or by others.
    #[error("master key file {path} is readable by others (mode {mode:o}); chmod 600 it")]
    KeyFileExposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A sealed value does not open under this master key (wrong key or tampering).
    #[error("sealed value does not open under the master key")]
    Unseal,
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|_| SecretError::Random)?;
    Ok(bytes)
}

/// A random identifier: 128 bits as 32 lowercase hex digits.
pub fn random_id() -> Result<String, SecretError> {
    Ok(hex(&random_bytes::<16>()?))
}

/// A random secret with a recognisable prefix: 256 bits, base64url.
pub fn random_secret(prefix: &str) -> Result<String, SecretError> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The purposes keyed hashes are used for; each gets its own key derived from the master key.
#[derive(Debug, Clone, Copy)]
pub enum HashPurpose {
    /// Client secrets.
    ClientSecret,
    /// Refresh tokens.
    RefreshToken,
    /// Authorization codes.
    AuthorizationCode,
    /// The login page's CSRF token, derived from its cookie.
    Csrf,
    /// Browser session cookies.
    BrowserSession,
}

/// The master key and the keys derived from it.
#[derive(Clone)]
pub struct MasterKey {
    cipher: ChaCha20Poly1305,
    client_secret_key: [u8; 32],
    refresh_token_key: [u8; 32],
    authorization_code_key: [u8; 32],
    csrf_key: [u8; 32],
    browser_session_key: [u8; 32],
    audit_chain_key: [u8; 32],
    audit_checkpoint_seed: [u8; 32],
    audit_address_key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key size");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl MasterKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey {
            cipher: ChaCha20Poly1305::new(&derive(&bytes, "portcullis seal v1").into()),
            client_secret_key: derive(&bytes, "portcullis client secret v1"),
            refresh_token_key: derive(&bytes, "portcullis refresh token v1"),
            authorization_code_key: derive(&bytes, "portcullis authorization code v1"),
            csrf_key: derive(&bytes, "portcullis csrf v1"),
            browser_session_key: derive(&bytes, "portcullis browser session v1"),
            audit_chain_key: derive(&bytes, "portcullis audit chain v1"),
            audit_checkpoint_seed: derive(&bytes, "portcullis audit checkpoint v1"),
            audit_address_key: derive(&bytes, "portcullis audit address v1"),
        }
    }

    /// Parses base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadMasterKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// Reads the key from `path`, creating it (mode 0600) with a fresh random key when absent.
    /// Only for the single-node SQLite default; shared databases take the key from the
    /// environment.
    pub fn from_file_or_create(path: &Path) -> Result<Self, SecretError> {
        let io = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                refuse_exposed(path)?;
                Self::from_base64(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let encoded = STANDARD.encode(random_bytes::<32>()?);
                write_private(path, &encoded).map_err(io)?;
                Self::from_base64(&encoded)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The keyed hash (HMAC-SHA256, hex) of a secret for `purpose`.
    pub fn keyed_hash(&self, purpose: HashPurpose, secret: &str) -> String {
        let key = match purpose {
            HashPurpose::ClientSecret => &self.client_secret_key,
            HashPurpose::RefreshToken => &self.refresh_token_key,
            HashPurpose::AuthorizationCode => &self.authorization_code_key,
            HashPurpose::Csrf => &self.csrf_key,
            HashPurpose::BrowserSession => &self.browser_session_key,
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key size");
        mac.update(secret.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The key the audit chain's HMACs are made with (never stored).
    pub fn audit_chain_key(&self) -> &[u8; 32] {
        &self.audit_chain_key
    }

    /// The pseudonym of a client address in the audit log: a keyed hash (128 bits, hex), the
    /// same for the same address, that no one without the master key can compute or reverse.
    pub fn address_pseudonym(&self, address: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.audit_address_key)
            .expect("HMAC takes any key size");
        mac.update(address.as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// The Ed25519 key audit checkpoints are signed with (derived, never stored).
    pub fn audit_checkpoint_key(&self) -> portcullis_authz::issue::SigningKey {
        portcullis_authz::issue::SigningKey::ed25519("audit-checkpoint", self.audit_checkpoint_seed)
    }

    /// Encrypts `plaintext` bound to `context` (e.g. the key id); base64 of nonce ‖ ciphertext.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, SecretError> {
        let nonce = random_bytes::<12>()?;
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unseal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SecretError::Unseal)?;
        if bytes.len() < 12 {
            return Err(SecretError::Unseal);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Unseal)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unseal)
    }
}

/// Refuses a key file that its group or others may read or write.
#[cfg(unix)]
fn refuse_exposed(path: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::KeyFileExposed {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_exposed(_: &Path) -> Result<(), SecretError> {
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = key.seal("kid-1", b"private").unwrap();
        assert_eq!(key.open("kid-1", &sealed).unwrap(), b"private");
        assert!(key.open("kid-2", &sealed).is_err());
        assert!(MasterKey::from_bytes([8; 32])
            .open("kid-1", &sealed)
            .is_err());
        assert!(!sealed.contains("private"));
    }

    #[test]
    fn keyed_hashes_depend_on_purpose_and_key() {
        let key = MasterKey::from_bytes([7; 32]);
        let a = key.keyed_hash(HashPurpose::ClientSecret, "s");
        assert_ne!(a, key.keyed_hash(HashPurpose::RefreshToken, "s"));
        assert_ne!(
            a,
            MasterKey::from_bytes([9; 32]).keyed_hash(HashPurpose::ClientSecret, "s")
        );
        assert_eq!(a.len(), 64);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("portcullis-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("portcullis.key");
        let _ = std::fs::remove_file(&path);
        let created = MasterKey::from_file_or_create(&path).unwrap();
        let reread = MasterKey::from_file_or_create(&path).expect("a 0600 file is accepted");
        assert_eq!(
            created.keyed_hash(HashPurpose::ClientSecret, "s"),
            reread.keyed_hash(HashPurpose::ClientSecret, "s")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = MasterKey::from_file_or_create(&path).err();
        assert!(
            matches!(
                refused,
                Some(SecretError::KeyFileExposed { mode: 0o644, .. })
            ),
            "{refused:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn master_key_must_be_32_bytes() {
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
    }
}
