//! A throw-away certificate authority per test: a CA, and a server certificate it signs for the
//! name Envoy sends as SNI (and `localhost`, `127.0.0.1`), as PEM files the control plane and
//! Envoy are pointed at.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore};

/// The name the control plane's certificate is for: the filter's default `authority`, which
/// Envoy also sends as SNI.
pub const SERVER_NAME: &str = "portcullis-control-plane";

/// A CA and the server certificate it signed, written under `dir`.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate (what Envoy trusts).
    pub ca: PathBuf,
    /// The server certificate (`PORTCULLIS_TLS_CERT`).
    pub cert: PathBuf,
    /// The server's private key (`PORTCULLIS_TLS_KEY`).
    pub key: PathBuf,
}

impl TestCa {
    /// Generates a CA and a server certificate in a fresh directory named after `name`.
    pub fn generate(name: &str) -> Self {
        let dir = crate::repo_root().join(format!("target/e2e/ca-{name}-{}", crate::free_port()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let fail = |e: rcgen::Error| -> ! { panic!("certificate generation: {e}") };
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("Portcullis test CA {name}"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let ca = ca_params.self_signed(&ca_key).unwrap_or_else(|e| fail(e));
        let names = vec![SERVER_NAME.to_owned(), "localhost".to_owned()];
        let mut leaf = CertificateParams::new(names).unwrap_or_else(|e| fail(e));
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let leaf_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let leaf = leaf
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap_or_else(|e| fail(e));
        let written = TestCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        for (path, text) in [
            (&written.ca, ca.pem()),
            (&written.cert, leaf.pem()),
            (&written.key, leaf_key.serialize_pem()),
        ] {
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        written
    }

    /// `GET path` over TLS to `port` on 127.0.0.1, trusting only this CA and expecting
    /// [`SERVER_NAME`]; the status line, or `None` when the connection or handshake fails.
    pub fn status_line(&self, port: u16, path: &str) -> Option<String> {
        let pem = std::fs::read(&self.ca).ok()?;
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(&pem).ok()?).ok()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(SERVER_NAME).ok()?;
        let mut connection = ClientConnection::new(Arc::new(config), name).ok()?;
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut tls = rustls::Stream::new(&mut connection, &mut tcp);
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: {SERVER_NAME}\r\nconnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).ok()?;
        let mut head = [0u8; 12];
        tls.read_exact(&mut head).ok()?;
        Some(String::from_utf8_lossy(&head).into_owned())
    }
}
