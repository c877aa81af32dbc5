//! A stand-in for the control plane's bundle endpoint, with the same contract: bearer
//! credential, `ETag`/`If-None-Match` → 304, `?wait=` long-poll, every bundle signed and every
//! response carrying a signed freshness statement (with [`crate::tokens::bundle_key`]). Tests switch it to serving errors, garbage or forged bundles,
//! or kill it outright, to watch the filter keep its last good bundle.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_authz::bundle::Bundle;
use portcullis_authz::bundle_signature::{FRESHNESS_HEADER, SIGNATURE_HEADER};
use serde::Deserialize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// The credential the filter must present.
pub const CREDENTIAL: &str = "test-bundle-credential";

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The bundle, honouring ETags and long-polls.
    Serve,
    /// `503` to everything.
    Unavailable,
    /// `200` with a body that is not a bundle (correctly signed).
    Garbage,
}

#[derive(Debug)]
struct Inner {
    body: String,
    signature: Option<String>,
    etag: String,
    mode: Mode,
    requests: u64,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: watch::Sender<u64>,
}

/// A running bundle server on its own runtime, so dropping it really closes every socket.
pub struct BundleServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    shared: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for BundleServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BundleServer {
    /// Starts serving `bundle` on `port` (0 for a free one).
    pub fn start(bundle: &Bundle, port: u16) -> Self {
        let (changed, _) = watch::channel(0);
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                body: String::new(),
                signature: None,
                etag: String::new(),
                mode: Mode::Serve,
                requests: 0,
            })),
            changed,
        };
        // Built and entered on a plain thread: tests call this from inside their own runtime.
        let (runtime, listener) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
                .unwrap_or_else(|e| panic!("bind bundle server: {e}"));
            (runtime, listener)
        })
        .join()
        .unwrap_or_else(|_| panic!("bundle server thread failed"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let app = axum::Router::new()
            .route("/plugin/v1/bundle", axum::routing::get(serve_bundle))
            .with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let server = BundleServer {
            port,
            shared,
            runtime: Some(runtime),
        };
        server.set_bundle(bundle, true);
        server
    }

    /// Replaces the bundle (signed); with `wake`, pending long-polls answer at once.
    pub fn set_bundle(&self, bundle: &Bundle, wake: bool) {
        let body = serde_json::to_string(bundle).unwrap_or_default();
        let signature = crate::tokens::bundle_signature(body.as_bytes());
        self.set_body(body, Some(signature), wake);
    }

    /// Serves `body` with `signature` (or none) as they are, waking long-polls: what a
    /// man-in-the-middle would send.
    pub fn set_raw(&self, body: String, signature: Option<String>) {
        self.set_body(body, signature, true);
    }

    fn set_body(&self, body: String, signature: Option<String>, wake: bool) {
        {
            let mut inner = lock(&self.shared.inner);
            inner.etag = format!("\"{:x}\"", fxhash(&body));
            inner.body = body;
            inner.signature = signature;
        }
        if wake {
            self.shared.changed.send_modify(|v| *v += 1);
        }
    }

    /// Switches what the server answers and wakes long-polls.
    pub fn set_mode(&self, mode: Mode) {
        lock(&self.shared.inner).mode = mode;
        self.shared.changed.send_modify(|v| *v += 1);
    }

    /// Bundle requests received so far.
    pub fn requests(&self) -> u64 {
        lock(&self.shared.inner).requests
    }

    /// Kills the server: the listener and every open connection close.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for BundleServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    wait: Option<u64>,
}

async fn serve_bundle(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<WaitQuery>,
) -> Response {
    let mut changes = shared.changed.subscribe();
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    {
        let mut inner = lock(&shared.inner);
        inner.requests += 1;
    }
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {CREDENTIAL}"));
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(query.wait.unwrap_or(0).min(60));
    loop {
        let (mode, body, signature, etag) = {
            let inner = lock(&shared.inner);
            let signature = inner.signature.clone();
            (
                inner.mode,
                inner.body.clone(),
                signature,
                inner.etag.clone(),
            )
        };
        match mode {
            Mode::Unavailable => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            Mode::Garbage => {
                // Signed: the filter's parser, not its signature check, must refuse it.
                let garbage = "{\"version\": \"not a bundle";
                let signature = crate::tokens::bundle_signature(garbage.as_bytes());
                return (
                    StatusCode::OK,
                    [
                        ("etag", "\"garbage\""),
                        (SIGNATURE_HEADER, signature.as_str()),
                    ],
                    garbage,
                )
                    .into_response();
            }
            Mode::Serve if etag != if_none_match => {
                let version = crate::tokens::bundle_version(body.as_bytes());
                let mut response = (
                    StatusCode::OK,
                    [
                        ("etag", etag.as_str()),
                        ("content-type", "application/json"),
                    ],
                    body,
                )
                    .into_response();
                if let Some(value) = signature.and_then(|s| HeaderValue::from_str(&s).ok()) {
                    response.headers_mut().insert(SIGNATURE_HEADER, value);
                }
                insert_freshness(&mut response, version);
                return response;
            }
            Mode::Serve => {}
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            let mut response = (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
            insert_freshness(
                &mut response,
                crate::tokens::bundle_version(body.as_bytes()),
            );
            return response;
        }
    }
}

/// The signed statement that `version` is current now.
fn insert_freshness(response: &mut Response, version: u64) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let fresh = crate::tokens::bundle_freshness(version, now_ms);
    if let Ok(value) = HeaderValue::from_str(&fresh) {
        response.headers_mut().insert(FRESHNESS_HEADER, value);
    }
}
