//! TLS on the control plane's own listener, when `PORTCULLIS_TLS_CERT` and `PORTCULLIS_TLS_KEY`
//! name a PEM certificate chain and its private key.
//!
//! The rule: with both set, the listener speaks only TLS 1.3 (rustls, ring provider) and
//! HTTP/1.1; a connection whose handshake fails or takes longer than [`HANDSHAKE_TIMEOUT`] is
//! dropped without reaching the service. Without them it speaks plain HTTP, for a TLS-terminating
//! proxy in front or a loopback-only development setup.
//!
//! The reason: passwords, client secrets, tokens and the bundle credential cross this listener,
//! and the bundle signature only proves where a bundle came from: TLS keeps those secrets off the
//! wire and stops anyone on the path from withholding or replaying bundles unnoticed. Handshakes
//! run on their own tasks so a slow or silent client cannot hold up everyone else's accept.

use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file is missing, unreadable or not PEM.
    #[error("{path}: {problem}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no certificate in the file")]
    NoCertificate(String),
    /// rustls refused the certificate and key (e.g. the key does not match).
    #[error("the TLS certificate and key are unusable: {0}")]
    Rejected(#[from] rustls::Error),
}

/// The acceptor for the certificate chain in `cert` and the private key in `key` (PEM files).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let pem = |path: &Path| {
        let path = path.display().to_string();
        move |e: rustls::pki_types::pem::Error| TlsError::Pem {
            path: path.clone(),
            problem: e.to_string(),
        }
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A connection the service reads and writes: plain TCP or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Source {
    Plain(TcpListener),
    Tls {
        handshaken: mpsc::Receiver<(Box<dyn Stream>, SocketAddr)>,
        acceptor: tokio::task::JoinHandle<()>,
    },
}

/// The service's listener: plain TCP, or TLS with every handshake on its own task.
pub struct Incoming {
    local: SocketAddr,
    source: Source,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tls = matches!(self.source, Source::Tls { .. });
        f.debug_struct("Incoming")
            .field("local", &self.local)
            .field("tls", &tls)
            .finish()
    }
}

impl Incoming {
    /// Serves `listener` as it is, or through `tls`.
    pub fn new(listener: TcpListener, tls: Option<TlsAcceptor>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let Some(tls) = tls else {
            return Ok(Incoming {
                local,
                source: Source::Plain(listener),
            });
        };
        let (ready, handshaken) = mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = accept_tcp(&listener).await;
                let (tls, ready) = (tls.clone(), ready.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = ready
                                .send((Box::new(stream) as Box<dyn Stream>, peer))
                                .await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Incoming {
            local,
            source: Source::Tls {
                handshaken,
                acceptor,
            },
        })
    }
}

/// The next TCP connection; accept errors (out of descriptors, …) are logged and retried.
async fn accept_tcp(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Source::Tls { acceptor, .. } = &self.source {
            acceptor.abort();
        }
    }
}

impl Listener for Incoming {
    type Io = Box<dyn Stream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.source {
            Source::Plain(listener) => {
                let (tcp, peer) = accept_tcp(listener).await;
                (Box::new(tcp), peer)
            }
            Source::Tls { handshaken, .. } => match handshaken.recv().await {
                Some(accepted) => accepted,
                // The acceptor task only ends when this listener is dropped.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_certificate_files_are_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("portcullis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (empty, missing) = (dir.join("empty.pem"), dir.join("missing.pem"));
        std::fs::write(&empty, "no PEM here\n").unwrap();
        let error = acceptor(&missing, &missing).err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(error.contains("missing.pem"), "{error}");
        let error = acceptor(&empty, &empty).err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(
            error.contains("empty.pem") && error.contains("no certificate"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
