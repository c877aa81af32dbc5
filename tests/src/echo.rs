//! An upstream that answers every request with what it received, as JSON, except under `/app/`:
//! there it is the demo browser app, a page that shows who is signed in (the identity headers
//! the Portcullis filter sent) with a sign-out link.

use axum::extract::Request;
use axum::Json;
use serde_json::{json, Map, Value};

/// A running echo upstream.
#[derive(Debug)]
pub struct EchoUpstream {
    /// Its port on 127.0.0.1.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl EchoUpstream {
    /// Starts the upstream on a free port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts the upstream on `port`.
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let app = axum::Router::new()
            .route("/app/signed-out", axum::routing::get(signed_out))
            .route("/app/", axum::routing::get(app_page))
            .route("/app/{*rest}", axum::routing::get(app_page))
            .fallback(echo);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EchoUpstream { port, task }
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(request: Request) -> Json<Value> {
    let mut headers = Map::new();
    for (name, value) in request.headers() {
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.clone(), value]),
            None => {
                headers.insert(name.as_str().to_owned(), value);
            }
        }
    }
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    Json(json!({"method": request.method().as_str(), "path": target, "headers": headers}))
}

/// The demo app's page: the signed-in person, as the identity headers name them.
async fn app_page(request: Request) -> axum::response::Html<String> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(escape)
            .unwrap_or_default()
    };
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo app</title></head>\
         <body><h1>Demo app</h1><p>Signed in as <strong id=\"sub\">{sub}</strong></p>\
         <dl><dt>client</dt><dd id=\"client\">{client}</dd><dt>scopes</dt><dd id=\"scopes\">{scopes}</dd>\
         <dt>roles</dt><dd id=\"roles\">{roles}</dd></dl><p><a id=\"signout\" href=\"/app/signout\">Sign out</a></p></body></html>",
        sub = header("x-portcullis-sub"),
        client = header("x-portcullis-client-id"),
        scopes = header("x-portcullis-scopes"),
        roles = header("x-portcullis-roles"),
    ))
}

async fn signed_out() -> axum::response::Html<&'static str> {
    axum::response::Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out</title></head>\
         <body><h1 id=\"signed-out\">You are signed out</h1><p><a href=\"/app/\">Sign in again</a></p></body></html>",
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
