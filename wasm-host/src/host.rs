//! Driving the guest like Envoy: one root context, one HTTP context per request.

use crate::abi::{action, HeaderMap};
use crate::state::{Call, HostState, LocalResponse, LogLine};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use wasmtime::{
    format_err, Cache, CacheConfig, Config, Engine, Instance, Linker, Module, Result, Store,
    Strategy, WasmParams, WasmResults,
};

/// Context id of the root context, as Envoy numbers its first one.
pub const ROOT_CONTEXT: u32 = 1;

/// The host clock a new [`Host`] starts at: 2027-01-15T08:00:00Z, in ms since the epoch.
pub const START_MS: u64 = 1_800_000_000_000;

/// What the filter did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request goes upstream with these (possibly rewritten) headers.
    Continue(HeaderMap),
    /// The filter answered it.
    Respond(LocalResponse),
}

/// A loaded filter and the host around it.
pub struct Host {
    store: Store<HostState>,
    instance: Instance,
    next_context: u32,
    trapped: Option<String>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("next_context", &self.next_context)
            .field("trapped", &self.trapped)
            .finish_non_exhaustive()
    }
}

/// Compiling the filter takes seconds, so each process compiles a given file once.
fn compiled(path: &Path) -> Result<Module> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| format_err!("module cache poisoned"))?;
    if let Some(module) = cache.get(path) {
        return Ok(module.clone());
    }
    let bytes = std::fs::read(path).map_err(|e| format_err!("{}: {e}", path.display()))?;
    // Winch, the baseline compiler, compiles this ~5 MB module about 8x faster than Cranelift
    // when wasmtime itself is built unoptimised (as in `cargo test`): ~10 s instead of ~80 s.
    // Nextest runs each test in its own process, so compiled code is also cached on disk, next
    // to the module (keyed by its hash and the compiler settings).
    let mut config = Config::new();
    config.strategy(Strategy::Winch);
    let mut disk = CacheConfig::new();
    disk.with_directory(path.with_extension("wasm-host-cache"));
    config.cache(Some(Cache::new(disk)?));
    let module = Module::from_binary(&Engine::new(&config)?, &bytes)?;
    cache.insert(path.to_owned(), module.clone());
    Ok(module)
}

impl Host {
    /// Compiles (once per process) and instantiates the module at `path`, then runs its WASI
    /// initialiser. Every import the host does not implement traps when called.
    pub fn load(path: &Path) -> Result<Host> {
        let module = compiled(path)?;
        let mut linker = Linker::new(module.engine());
        crate::hostcalls::define(&mut linker)?;
        crate::wasi::define(&mut linker)?;
        linker.define_unknown_imports_as_traps(&module)?;
        let state = HostState {
            now_ms: START_MS,
            random: 0x5eed,
            ..HostState::default()
        };
        let mut store = Store::new(module.engine(), state);
        let instance = linker.instantiate(&mut store, &module)?;
        let mut host = Host {
            store,
            instance,
            next_context: ROOT_CONTEXT + 1,
            trapped: None,
        };
        for init in ["_initialize", "_start"] {
            if host.instance.get_func(&mut host.store, init).is_some() {
                host.call::<(), ()>(init, ())?;
            }
        }
        Ok(host)
    }

    /// Whether the module exports `name`.
    fn exports(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    /// Calls an export; a trap poisons the host, since the guest's state is then undefined.
    fn call<P: WasmParams, R: WasmResults>(&mut self, name: &str, params: P) -> Result<R> {
        if let Some(trap) = &self.trapped {
            return Err(format_err!("the filter trapped earlier: {trap}"));
        }
        let func = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)?;
        func.call(&mut self.store, params).map_err(|e| {
            let last_logs: Vec<&str> = self
                .logs()
                .iter()
                .rev()
                .take(3)
                .map(|l| l.message.as_str())
                .collect();
            let trap = format!("the filter trapped in {name}: {e:?}; last logs: {last_logs:?}");
            self.trapped = Some(trap.clone());
            format_err!(trap)
        })
    }

    /// Creates the root context, starts the VM and configures the plugin with
    /// `plugin_config`; returns what `proxy_on_configure` returned (Envoy refuses the filter on
    /// `false`).
    pub fn start(&mut self, plugin_config: &str) -> Result<bool> {
        self.store.data_mut().plugin_config = plugin_config.as_bytes().to_vec();
        self.call::<(u32, u32), ()>("proxy_on_context_create", (ROOT_CONTEXT, 0))?;
        let vm_config_len = u32::try_from(self.store.data().vm_config.len())?;
        if self.call::<(u32, u32), u32>("proxy_on_vm_start", (ROOT_CONTEXT, vm_config_len))? == 0 {
            return Ok(false);
        }
        let len = u32::try_from(plugin_config.len())?;
        Ok(self.call::<(u32, u32), u32>("proxy_on_configure", (ROOT_CONTEXT, len))? != 0)
    }

    /// Fires the root context's timer once.
    pub fn tick(&mut self) -> Result<()> {
        self.call::<u32, ()>("proxy_on_tick", ROOT_CONTEXT)
    }

    /// Moves the host clock forward by `ms`.
    pub fn advance(&mut self, ms: u64) {
        let state = self.store.data_mut();
        state.now_ms = state.now_ms.saturating_add(ms);
    }

    /// The host clock, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.store.data().now_ms
    }

    /// The tick period the guest asked for, in ms (0 if none).
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    /// Dispatched calls not answered yet, oldest first.
    pub fn pending_calls(&self) -> &[Call] {
        &self.store.data().pending
    }

    /// Sets an environment variable the guest sees (as Envoy's
    /// `vm_config.environment_variables` would); call before [`Host::start`].
    pub fn set_env(&mut self, name: &str, value: &str) {
        let env = &mut self.store.data_mut().env;
        env.retain(|(n, _)| n != name);
        env.push((name.to_owned(), value.to_owned()));
    }

    /// Answers the pending call `token` with `status`, `headers` and `body`.
    pub fn respond(
        &mut self,
        token: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        let mut map: HeaderMap = vec![(":status".to_owned(), status.to_string().into_bytes())];
        map.extend(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())),
        );
        self.deliver(token, map, body.to_vec())
    }

    /// Fails the pending call `token` the way Envoy reports a reset or timeout: no headers, no
    /// body.
    pub fn fail(&mut self, token: u32) -> Result<()> {
        self.deliver(token, Vec::new(), Vec::new())
    }

    /// Delivers a response with raw headers (no `:status` added) to the pending call `token`.
    pub fn deliver(&mut self, token: u32, headers: HeaderMap, body: Vec<u8>) -> Result<()> {
        let state = self.store.data_mut();
        let at = state
            .pending
            .iter()
            .position(|c| c.token == token)
            .ok_or_else(|| format_err!("no pending call with token {token}"))?;
        state.pending.remove(at);
        let (count, size) = (u32::try_from(headers.len())?, u32::try_from(body.len())?);
        state.call_response = Some((headers, body));
        let result = self.call::<(u32, u32, u32, u32, u32), ()>(
            "proxy_on_http_call_response",
            (ROOT_CONTEXT, token, count, size, 0),
        );
        self.store.data_mut().call_response = None;
        result
    }

    /// Runs one request's headers through a new HTTP context (end of stream: a bodiless
    /// request), then ends the stream as Envoy would.
    pub fn request(&mut self, headers: &[(&str, &str)]) -> Result<Outcome> {
        let map = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()));
        self.request_raw(map.collect())
    }

    /// Like [`Host::request`], with header values as raw bytes.
    pub fn request_raw(&mut self, headers: HeaderMap) -> Result<Outcome> {
        let context = self.next_context;
        self.next_context += 1;
        let count = u32::try_from(headers.len())?;
        let state = self.store.data_mut();
        state.request_headers = headers;
        state.local_response = None;
        state.filter_state.clear();
        self.call::<(u32, u32), ()>("proxy_on_context_create", (context, ROOT_CONTEXT))?;
        let verdict =
            self.call::<(u32, u32, u32), u32>("proxy_on_request_headers", (context, count, 1))?;
        // Like Envoy, skip the stream callbacks the module does not export.
        if self.exports("proxy_on_done") {
            self.call::<u32, u32>("proxy_on_done", context)?;
        }
        if self.exports("proxy_on_log") {
            self.call::<u32, ()>("proxy_on_log", context)?;
        }
        self.call::<u32, ()>("proxy_on_delete", context)?;
        let state = self.store.data_mut();
        match (verdict, state.local_response.take()) {
            (action::CONTINUE, None) => Ok(Outcome::Continue(std::mem::take(
                &mut state.request_headers,
            ))),
            (action::PAUSE, Some(response)) => Ok(Outcome::Respond(response)),
            (action::CONTINUE, Some(response)) => Err(format_err!(
                "the filter sent a {} local response but let the request continue",
                response.status
            )),
            (action::PAUSE, None) => Err(format_err!(
                "the filter paused the request without answering it"
            )),
            (other, _) => Err(format_err!(
                "proxy_on_request_headers returned action {other}"
            )),
        }
    }

    /// Sets a property the host serves to the guest (e.g. `source.address`).
    pub fn set_property(&mut self, name: &str, value: &[u8]) {
        self.store
            .data_mut()
            .properties
            .insert(name.to_owned(), value.to_vec());
    }

    /// A property the guest set during the last request (Envoy's filter state).
    pub fn property(&self, name: &str) -> Option<String> {
        let value = self.store.data().filter_state.get(name)?;
        Some(String::from_utf8_lossy(value).into_owned())
    }

    /// The value of the metric called `name` (as the guest defined it), if defined.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let metrics = &self.store.data().metrics;
        metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// A shared-data value (bytes only).
    pub fn shared_data(&self, key: &str) -> Option<&[u8]> {
        self.store
            .data()
            .shared
            .get(key)
            .map(|(value, _)| value.as_slice())
    }

    /// Writes a shared-data value as another worker (or another module in the VM id) would.
    pub fn set_shared_data(&mut self, key: &str, value: &[u8]) {
        self.store
            .data_mut()
            .set_shared(key.to_owned(), value.to_vec(), 0);
    }

    /// Everything the guest logged, oldest first.
    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().logs
    }
}
