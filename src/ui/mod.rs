//! The dashboard `plancd serve` serves: server-rendered pages under `/ui`, a read-only JSON API
//! under `/api/v1`, live updates over server-sent events, and (when enabled and authenticated)
//! the operations of the command line; `plancd status -o html` writes the same pages as files.
//!
//! One data model ([`model`]) is built from what `plancd status` and `plancd describe` read,
//! kept per source until a ref it was read from moves (and each task record by the commit it
//! was read from); [`api`] serves it as JSON, [`pages`] as HTML (with [`crate::render::svg`]
//! drawing the graph), [`sse`] tells open pages when refs move, and
//! [`actions`] turns a button into the record `plancd approve` (or retry, suspend, resume)
//! writes.

pub mod actions;
pub mod api;
pub mod html;
pub mod model;
pub mod pages;
pub mod sse;
pub mod static_site;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::Env;
use crate::watch::Trigger;

/// The `ui:` section of the controller's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    /// Offer the operations (approve, retry, suspend, resume, reconcile now); off by default.
    /// They also need a token.
    pub actions: bool,
    /// The environment variable holding the token the operations need (default
    /// `PLANCD_UI_TOKEN`, else the webhook secret).
    pub token_env: Option<String>,
}

/// How the dashboard treats operations.
#[derive(Clone, Default)]
pub struct UiSettings {
    /// Whether operations are offered at all.
    pub actions: bool,
    /// The token they need; operations are refused without one.
    pub token: Option<SecretString>,
}

impl UiSettings {
    /// The settings from `config` and the environment: `PLANCD_UI_ACTIONS=1` turns operations
    /// on; the token is `config.token_env`'s variable, else `PLANCD_UI_TOKEN`, else `secret`
    /// (the webhook's).
    pub fn new(config: Option<&UiConfig>, env: &Env, secret: Option<&SecretString>) -> UiSettings {
        let actions = config.is_some_and(|c| c.actions) || env.get("PLANCD_UI_ACTIONS").is_some_and(|v| v == "1" || v == "true");
        let named = config.and_then(|c| c.token_env.as_deref()).unwrap_or("PLANCD_UI_TOKEN");
        let token = env.get(named).filter(|t| !t.is_empty()).map(|t| SecretString::from(t.to_owned())).or_else(|| secret.cloned());
        UiSettings { actions, token }
    }
}

/// When a source's last pass ended, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassInfo {
    /// When it ended.
    pub ended_at: jiff::Timestamp,
    /// How long it took.
    pub seconds: f64,
    /// `ok`, or what went wrong.
    pub outcome: String,
}

/// A repository the dashboard shows.
pub struct UiSource {
    /// Its name (as in logs and metrics).
    pub name: String,
    /// The repository.
    pub path: PathBuf,
    /// The watched branch, when it is not read from the repository's configuration (a remote
    /// source's clone).
    pub branch: Option<String>,
    /// Starts a pass of the source ("reconcile now").
    pub trigger: Option<mpsc::UnboundedSender<Trigger>>,
    /// The last pass, as the controller reports it.
    pub last_pass: Mutex<Option<PassInfo>>,
    /// The data last read, and the refs it was read at.
    cache: Mutex<Option<model::Cached>>,
    /// The task records read so far, by commit: a read after a ref moved reads only what moved.
    records: Arc<crate::state::RecordCache>,
}

impl UiSource {
    /// A source with nothing read yet.
    pub fn new(name: &str, path: PathBuf, branch: Option<String>, trigger: Option<mpsc::UnboundedSender<Trigger>>) -> UiSource {
        UiSource {
            name: name.to_owned(),
            path,
            branch,
            trigger,
            last_pass: Mutex::new(None),
            cache: Mutex::new(None),
            records: Arc::default(),
        }
    }

    /// The source's store, reading each status commit once over the dashboard's life.
    pub fn store(&self) -> Result<crate::state::Store, crate::state::StateError> {
        Ok(crate::state::Store::open(&self.path)?.with_records(self.records.clone()))
    }

    /// Notes the end of a pass.
    pub fn pass_ended(&self, info: PassInfo) {
        *self.last_pass.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(info);
    }
}

/// What the dashboard's handlers share.
pub struct Dashboard {
    /// The sources, in configuration order.
    pub sources: Vec<Arc<UiSource>>,
    /// The environment (for the plans' configuration and the operations).
    pub env: Env,
    /// Operations.
    pub settings: UiSettings,
    /// Ref changes, for the event stream.
    pub changes: sse::Changes,
    /// Flips to true when the server stops: event streams end then (a graceful shutdown waits
    /// for every open connection).
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Dashboard {
    /// A dashboard over `sources`.
    pub fn new(sources: Vec<Arc<UiSource>>, env: Env, settings: UiSettings) -> Arc<Dashboard> {
        Arc::new(Dashboard { sources, env, settings, changes: sse::Changes::default(), stopping: tokio::sync::watch::channel(false).0 })
    }

    /// Ends the event streams: the server is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }
}

/// The dashboard's routes: `/ui/...` pages, `/api/v1/...` JSON and events, and the operations.
/// Every answer carries a strict Content-Security-Policy: scripts and styles from this server
/// only, nothing inline, no frames.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    sse::start_polling(dashboard.clone());
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/ui") }))
        .route("/ui", get(pages::overview))
        .route("/ui/", get(pages::overview))
        .route("/ui/workflows/{wf}", get(pages::workflow))
        .route("/ui/workflows/{wf}/tasks/{task}", get(pages::task))
        .route("/ui/assets/{file}", get(pages::asset))
        .route("/api/v1/workflows", get(api::workflows))
        .route("/api/v1/workflows/{wf}", get(api::workflow))
        .route("/api/v1/workflows/{wf}/tasks/{task}", get(api::task))
        .route("/api/v1/workflows/{wf}/tasks/{task}/logs", get(api::logs))
        .route("/api/v1/events", get(sse::events))
        .route("/api/v1/workflows/{wf}/tasks/{task}/approve", post(actions::approve))
        .route("/api/v1/workflows/{wf}/tasks/{task}/retry", post(actions::retry))
        .route("/api/v1/workflows/{wf}/suspend", post(actions::suspend))
        .route("/api/v1/workflows/{wf}/resume", post(actions::resume))
        .route("/api/v1/reconcile", post(actions::reconcile))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(dashboard)
}

/// The Content-Security-Policy of every page: this server's scripts and styles only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn secure_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Runs blocking work (git, plans) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, model::UiError> + Send + 'static,
) -> Result<T, model::UiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(model::UiError::Git(git2::Error::from_str("the server is stopping"))),
    }
}
