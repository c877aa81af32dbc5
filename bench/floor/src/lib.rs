//! The bare wasm floor: a proxy-wasm filter that reads the `authorization` header and lets the
//! request through. `cargo xtask bench edge` runs it next to the Portcullis filter, so what the
//! filter adds can be compared with what any wasm filter costs on the same Envoy in the same
//! run.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

// The entry point Envoy calls when the module loads.
mod entry {
    use super::Floor;
    use proxy_wasm::traits::HttpContext;
    use proxy_wasm::types::LogLevel;

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Warn);
        proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Floor) });
    }}
}

/// Reads one header per request, like the smallest useful filter would.
struct Floor;

impl Context for Floor {}

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _authorization = self.get_http_request_header("authorization");
        Action::Continue
    }
}
