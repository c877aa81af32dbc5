//! The root context: configuration, and keeping a fresh bundle in every worker.

use crate::host;
use crate::metrics::Metrics;
use crate::schedule;
use crate::shared::{self, SharedKeys};
use portcullis_authz::bundle::Snapshot;
use portcullis_authz::bundle_signature::{
    PinnedKeys, SignatureError, FRESHNESS_HEADER, SIGNATURE_HEADER,
};
use portcullis_authz::config::PluginConfig;
use portcullis_authz::gate::Gate;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// How often each worker looks at the shared state.
const TICK: Duration = Duration::from_millis(100);

/// Per-worker state shared by the root context and every request on that worker.
#[derive(Debug)]
pub struct Worker {
    /// The configuration.
    pub config: Rc<PluginConfig>,
    /// The gate over the newest valid snapshot, if any.
    pub gate: Option<Gate>,
    /// When the control plane last confirmed the bundle, ms since the epoch.
    pub confirmed_ms: u64,
    /// Set by a request that met an unknown `kid`.
    pub refresh_wanted: bool,
    /// Metrics.
    pub metrics: Metrics,
    /// The bundle-signing keys from the configuration: only bundles they signed are applied.
    pinned: PinnedKeys,
    /// A shared version that failed to load here; not retried until it changes.
    failed_version: Option<u64>,
}

impl Worker {
    /// Whether the snapshot is missing or older than the staleness limit at `now_ms`.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        let limit = self.config.staleness_limit_seconds.saturating_mul(1_000);
        self.gate.is_none() || now_ms.saturating_sub(self.confirmed_ms) > limit
    }

    fn install(&mut self, snapshot: Snapshot) {
        for rejected in &snapshot.rejected_keys {
            host::log(
                LogLevel::Warn,
                &format!("portcullis: bundle key ignored: {rejected}"),
            );
        }
        host::log(
            LogLevel::Info,
            &format!(
                "portcullis: bundle version {} in force ({} keys, {} policies, {} revocations)",
                snapshot.version,
                snapshot.keys.len(),
                snapshot.engine.policy_count(),
                snapshot.revocations.len()
            ),
        );
        self.metrics.gauge("bundle.version", snapshot.version);
        self.gate = Some(Gate::new(Arc::new(snapshot), &self.config));
    }

    fn version(&self) -> Option<u64> {
        self.gate.as_ref().map(|g| g.snapshot().version)
    }

    /// Reads a bundle after the one in force, reusing its compiled policies when unchanged.
    fn read_bundle(&self, bytes: &[u8]) -> Result<Snapshot, portcullis_authz::bundle::BundleError> {
        Snapshot::from_json_after(bytes, self.gate.as_ref().map(|g| g.snapshot().as_ref()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchKind {
    /// The regular (long-)poll holding the fetch lease.
    Poll,
    /// An extra immediate fetch after an unknown `kid`.
    KidRefresh,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    kind: FetchKind,
    started_ms: u64,
    failures: u32,
}

/// How far ahead of this clock a control plane's signed time may be.
const MAX_CLOCK_AHEAD_MS: u64 = 5 * 60 * 1_000;

/// When the control plane vouched, signed, that `version` was current: the response's
/// freshness statement if it verifies and is neither older than the staleness limit (a
/// replayed response) nor implausibly far ahead of this clock; ms since the epoch, at most now.
/// Anything else is refused (counted by reason), and the response counts as a failed fetch.
fn freshness(
    worker: &mut Worker,
    header: Option<String>,
    version: u64,
    now_ms: u64,
) -> Option<u64> {
    let checked = worker
        .pinned
        .verify_freshness(header.as_deref().map(str::as_bytes), version);
    let reason = match checked {
        Ok(at) => {
            let at_ms = at.saturating_mul(1_000);
            let limit = worker.config.staleness_limit_seconds.saturating_mul(1_000);
            if at_ms.saturating_add(limit) < now_ms {
                "too_old"
            } else if at_ms > now_ms.saturating_add(MAX_CLOCK_AHEAD_MS) {
                "ahead_of_the_clock"
            } else {
                return Some(at_ms.min(now_ms));
            }
        }
        Err(e) => e.reason(),
    };
    worker.metrics.count("bundle.rejected");
    worker
        .metrics
        .count_dynamic(format!("bundle.freshness_refused.{reason}"));
    host::log(
        LogLevel::Error,
        &format!(
            "portcullis: bundle response refused ({reason} freshness), keeping the last good one"
        ),
    );
    None
}

/// Counts and logs a bundle refused for its signature (`what`: where it came from).
fn refuse_signature(worker: &mut Worker, what: &str, error: &SignatureError) {
    worker.metrics.count("bundle.rejected");
    worker
        .metrics
        .count_dynamic(format!("bundle.signature_refused.{}", error.reason()));
    host::log(
        LogLevel::Error,
        &format!("portcullis: {what} refused, keeping the last good one: {error}"),
    );
}

/// The filter's root context.
#[derive(Debug, Default)]
pub struct PortcullisRoot {
    worker: Option<Rc<RefCell<Worker>>>,
    keys: Option<SharedKeys>,
    in_flight: HashMap<u32, InFlight>,
}

impl PortcullisRoot {
    /// Loads a newer published bundle if there is one; returns the published state it read.
    fn sync_from_shared(&self, worker: &mut Worker, keys: &SharedKeys) -> shared::Published {
        let published = shared::published(keys);
        worker.confirmed_ms = worker.confirmed_ms.max(published.confirmed_ms);
        let behind = worker.version().is_none_or(|v| v < published.version);
        if published.version == 0 || !behind || worker.failed_version == Some(published.version) {
            return published;
        }
        let Some((signature, bytes)) = shared::bundle_bytes(keys) else {
            return published;
        };
        if let Err(e) = worker.pinned.verify(Some(signature.as_slice()), &bytes) {
            worker.failed_version = Some(published.version);
            refuse_signature(worker, "shared bundle", &e);
            return published;
        }
        match worker.read_bundle(&bytes) {
            Ok(snapshot) if worker.version().is_none_or(|v| v < snapshot.version) => {
                worker.install(snapshot)
            }
            Ok(_) => {}
            Err(e) => {
                worker.failed_version = Some(published.version);
                host::log(
                    LogLevel::Error,
                    &format!("portcullis: shared bundle rejected: {e}"),
                );
            }
        }
        published
    }

    fn dispatch(
        &mut self,
        config: &PluginConfig,
        kind: FetchKind,
        etag: &str,
        now_ms: u64,
        failures: u32,
    ) -> bool {
        let wait = if kind == FetchKind::Poll {
            config.long_poll_seconds
        } else {
            0
        };
        let path = if wait > 0 {
            format!("{}?wait={wait}", config.bundle_path)
        } else {
            config.bundle_path.clone()
        };
        let credential = format!("Bearer {}", config.credential);
        let mut headers = vec![
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", config.authority.as_str()),
            ("authorization", credential.as_str()),
            ("accept", "application/json"),
        ];
        if !etag.is_empty() {
            headers.push(("if-none-match", etag));
        }
        let timeout = Duration::from_millis(
            wait.saturating_mul(1_000)
                .saturating_add(config.request_timeout_ms),
        );
        match self.dispatch_http_call(&config.cluster, headers, None, vec![], timeout) {
            Ok(token) => {
                self.in_flight.insert(
                    token,
                    InFlight {
                        kind,
                        started_ms: now_ms,
                        failures,
                    },
                );
                true
            }
            Err(status) => {
                host::log(
                    LogLevel::Warn,
                    &format!("portcullis: bundle request not dispatched: {status:?}"),
                );
                false
            }
        }
    }

    /// Handles a bundle response; returns whether it succeeded.
    fn on_bundle_response(
        &self,
        worker: &mut Worker,
        keys: &SharedKeys,
        body_size: usize,
        now_ms: u64,
    ) -> bool {
        let headers = host::call_response_headers();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| String::from_utf8(v.clone()).ok())
        };
        let status = header(":status").unwrap_or_default();
        match status.as_str() {
            "304" => {
                let version = shared::published(keys).version;
                let Some(at_ms) = freshness(worker, header(FRESHNESS_HEADER), version, now_ms)
                else {
                    return false;
                };
                shared::confirm(keys, at_ms);
                worker.confirmed_ms = worker.confirmed_ms.max(at_ms);
                true
            }
            "200" => {
                let body = host::call_response_body(body_size).unwrap_or_default();
                let signature = header(SIGNATURE_HEADER);
                // Before anything reads the body: an unsigned or forged bundle never reaches
                // the parser, the shared data or the other workers.
                if let Err(e) = worker
                    .pinned
                    .verify(signature.as_deref().map(str::as_bytes), &body)
                {
                    refuse_signature(worker, "bundle", &e);
                    return false;
                }
                match worker.read_bundle(&body) {
                    Ok(snapshot) => {
                        let Some(at_ms) =
                            freshness(worker, header(FRESHNESS_HEADER), snapshot.version, now_ms)
                        else {
                            return false;
                        };
                        let etag = header("etag").unwrap_or_default();
                        let signature = signature.unwrap_or_default();
                        if !shared::publish(
                            keys,
                            snapshot.version,
                            &etag,
                            signature.as_bytes(),
                            &body,
                            at_ms,
                        ) {
                            worker.metrics.count("bundle.refused_older");
                            host::log(
                                LogLevel::Warn,
                                &format!(
                                    "portcullis: bundle version {} is older than the one in force",
                                    snapshot.version
                                ),
                            );
                            return false;
                        }
                        worker.confirmed_ms = worker.confirmed_ms.max(at_ms);
                        if worker.version().is_none_or(|v| v < snapshot.version) {
                            worker.install(snapshot);
                        }
                        worker.metrics.count("bundle.fetched");
                        true
                    }
                    Err(e) => {
                        worker.metrics.count("bundle.rejected");
                        host::log(
                            LogLevel::Error,
                            &format!("portcullis: bundle rejected, keeping the last good one: {e}"),
                        );
                        false
                    }
                }
            }
            other => {
                worker.metrics.count("bundle.fetch_failed");
                let shown = if other.is_empty() {
                    "no response"
                } else {
                    other
                };
                host::log(
                    LogLevel::Warn,
                    &format!("portcullis: bundle fetch failed: {shown}"),
                );
                false
            }
        }
    }
}

impl Context for PortcullisRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let (Some(flight), Some(worker), Some(keys)) = (
            self.in_flight.remove(&token_id),
            self.worker.clone(),
            self.keys.clone(),
        ) else {
            return;
        };
        let now = host::now_ms();
        let mut worker = worker.borrow_mut();
        let ok = self.on_bundle_response(&mut worker, &keys, body_size, now);
        if flight.kind == FetchKind::Poll {
            if ok {
                let next = schedule::next_after_success(
                    flight.started_ms,
                    now,
                    worker.config.refresh_interval_ms,
                );
                shared::release_fetch(&keys, next, 0);
            } else {
                let failures = flight.failures.saturating_add(1);
                let next = now.saturating_add(schedule::backoff_ms(failures, host::clock_nanos()));
                shared::release_fetch(&keys, next, failures);
            }
        }
    }
}

// Only the callbacks listed in `xtask/src/callbacks.rs` stay exported (see `filter.rs`).
impl RootContext for PortcullisRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        // Variables Envoy passes in (`vm_config.environment_variables`) may hold the credential
        // and the pins, so those secrets and keys need not be written into the configuration.
        let config = match PluginConfig::from_json_with_env(&bytes, |name| std::env::var(name).ok())
        {
            Ok(config) => config,
            Err(e) => {
                host::log(LogLevel::Critical, &format!("portcullis: {e}"));
                return false;
            }
        };
        let pinned = match config.pinned_keys() {
            Ok(pinned) => pinned,
            Err(e) => {
                host::log(LogLevel::Critical, &format!("portcullis: {e}"));
                return false;
            }
        };
        self.keys = Some(SharedKeys::new(&config.cluster, &config.bundle_path));
        self.worker = Some(Rc::new(RefCell::new(Worker {
            config: Rc::new(config),
            gate: None,
            confirmed_ms: 0,
            refresh_wanted: false,
            metrics: Metrics::default(),
            pinned,
            failed_version: None,
        })));
        if hostcalls::set_tick_period(TICK).is_err() {
            host::log(LogLevel::Critical, "portcullis: cannot set the tick period");
            return false;
        }
        true
    }

    fn on_tick(&mut self) {
        let (Some(worker_rc), Some(keys)) = (self.worker.clone(), self.keys.clone()) else {
            return;
        };
        let now = host::now_ms();
        let (config, etag, kid_refresh) = {
            let mut worker = worker_rc.borrow_mut();
            let published = self.sync_from_shared(&mut worker, &keys);
            let age = now.saturating_sub(worker.confirmed_ms) / 1_000;
            let age = if worker.gate.is_some() { age } else { 0 };
            worker.metrics.gauge("bundle.age_seconds", age);
            worker.metrics.flush();
            let kid_refresh = std::mem::take(&mut worker.refresh_wanted);
            (Rc::clone(&worker.config), published.etag, kid_refresh)
        };
        let polling = self.in_flight.values().any(|f| f.kind == FetchKind::Poll);
        if !polling {
            let hold = config
                .long_poll_seconds
                .saturating_mul(1_000)
                .saturating_add(config.request_timeout_ms + 1_000);
            if let Some(previous) = shared::acquire_fetch(&keys, now, hold) {
                if !self.dispatch(&config, FetchKind::Poll, &etag, now, previous.failures) {
                    let failures = previous.failures.saturating_add(1);
                    shared::release_fetch(
                        &keys,
                        now + schedule::backoff_ms(failures, host::clock_nanos()),
                        failures,
                    );
                }
            }
        }
        if kid_refresh
            && shared::acquire_kid_refresh(
                &keys,
                now,
                config.unknown_kid_refresh_seconds.saturating_mul(1_000),
            )
        {
            worker_rc.borrow_mut().metrics.count("bundle.kid_refresh");
            self.dispatch(&config, FetchKind::KidRefresh, &etag, now, 0);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = self.worker.clone()?;
        Some(Box::new(crate::filter::PortcullisFilter::new(worker)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
