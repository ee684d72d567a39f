//! `plancd serve` and `plancd reconcile --watch`: plancd as a long-running controller. Each
//! source (a repository) gets a loop that runs a pass whenever its watched branch moves, a
//! webhook says so, a reconcile request comes in, or the periodic full pass is due; passes of one
//! source never overlap, and triggers that arrive during a pass fold into one more pass. An HTTP
//! server answers webhooks, health, readiness and metrics, and serves the dashboard
//! ([`crate::ui`]).
//!
//! A source is a local repository (watched with inotify) or a remote URL: a bare clone in the
//! cache folder, its refs polled every `interval_seconds`, fetched before each pass, and shared
//! with any number of other controllers: every ref write is a compare-and-swap push to the
//! remote first (see [`crate::remote::RemoteAuthority`]), so replicas coordinate through the
//! remote's refs alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use super::reconcile::{ReconcileOptions, SandboxOpener, reconcile};
use crate::config::{Config, Env};
use crate::reconcile::{Event, EventSink};
use crate::remote::Remote;
use crate::spec::{Diagnostic, DirSource, Schema, TreeSource, parse_checked};
use crate::state::{ReconcileRequest, Store};
use crate::telemetry::{Metrics, OutcomeLabels, SourceLabel};
use crate::watch::{Trigger, poll_remote, resync_every, watch_local};

/// The controller's own configuration (`plancd serve --config FILE`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    /// Where the HTTP server listens.
    pub listen: Option<SocketAddr>,
    /// Seconds between full passes of each source, signalled or not.
    pub resync_seconds: Option<u64>,
    /// The repositories to reconcile.
    pub sources: Vec<SourceConfig>,
    /// Webhook settings (else each source's plancd.yaml `webhook:`).
    pub webhook: Option<crate::config::WebhookConfig>,
    /// Where remote sources are cloned (default `$PLANCD_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/plancd`, else `~/.cache/plancd`).
    pub cache_dir: Option<PathBuf>,
    /// The dashboard's settings: operations (off by default) and their token.
    pub ui: Option<crate::ui::UiConfig>,
}

/// One repository to reconcile: a local `path` or a remote `url`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SourceConfig {
    /// A name for logs and metrics (default: the folder's name).
    #[serde(default)]
    pub name: Option<String>,
    /// The repository's folder (a local source).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The repository's URL (a remote source, shared with other controllers).
    #[serde(default)]
    pub url: Option<String>,
    /// A remote source's watched branch (default: `PLANCD_BRANCH`, else `main`).
    #[serde(default)]
    pub branch: Option<String>,
    /// Seconds between looks at a remote source's refs (±10%); default 60.
    #[serde(default)]
    pub interval_seconds: Option<u64>,
    /// The environment variable holding a token for an https `url`.
    #[serde(default)]
    pub token_env: Option<String>,
    /// `owner/name` on GitHub, for matching push webhooks (default: the source's
    /// `forge.github.repo`).
    #[serde(default)]
    pub github_repo: Option<String>,
}

/// Why the controller could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The serve configuration is invalid.
    #[error("{0} is invalid")]
    Config(String, Vec<Diagnostic>),
    /// A file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// A source is not a repository.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Watching a repository failed.
    #[error("cannot watch {0}: {1}")]
    Watch(PathBuf, notify::Error),
    /// The HTTP server could not start.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// A remote source's clone could not be set up.
    #[error("cannot set up the clone of {url} in {path}: {message}")]
    Clone {
        /// The source's URL, credentials hidden.
        url: String,
        /// The cache folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// What `serve` needs.
pub struct ServeOptions {
    /// The configuration.
    pub config: ServeConfig,
    /// The environment.
    pub env: Env,
    /// Opens sandboxes.
    pub sandbox: SandboxOpener,
    /// Flips to true on SIGTERM/SIGINT.
    pub cancel: watch::Receiver<bool>,
    /// Serve HTTP (off for `reconcile --watch`).
    pub http: bool,
    /// Progress of passes, besides metrics and logs.
    pub events: Option<EventSink>,
}

/// Reads `file`, or makes the configuration of one source: the repository around `cwd`.
pub fn load_config(file: Option<&Path>, cwd: &Path) -> Result<ServeConfig, ServeError> {
    let Some(file) = file else {
        let root = super::validate::repository_root(cwd);
        let source = SourceConfig { path: Some(root), ..SourceConfig::default() };
        return Ok(ServeConfig { sources: vec![source], ..ServeConfig::default() });
    };
    let bytes = std::fs::read(cwd.join(file)).map_err(|e| ServeError::Read(file.to_path_buf(), e))?;
    let name = file.to_string_lossy().into_owned();
    let (parsed, diags) = parse_checked::<ServeConfig>(&name, &bytes, Schema::Serve);
    match parsed {
        Some((mut config, _)) if !diags.iter().any(Diagnostic::is_error) => {
            let base = cwd.join(file).parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.to_path_buf());
            for s in &mut config.sources {
                s.path = s.path.as_ref().map(|p| base.join(p));
            }
            config.cache_dir = config.cache_dir.map(|c| base.join(c));
            Ok(config)
        }
        _ => Err(ServeError::Config(name, diags)),
    }
}

/// A source at run time.
struct Source {
    name: String,
    /// The repository: the local one, or a remote source's clone in the cache.
    path: PathBuf,
    /// A remote source's remote (`origin` of the clone).
    remote: Option<Remote>,
    branch: String,
    github_repo: Option<String>,
    ready: AtomicBool,
    trigger: mpsc::UnboundedSender<Trigger>,
    /// What the dashboard shows of it.
    ui: Arc<crate::ui::UiSource>,
}

impl Source {
    /// The source's store; a remote source's writes go to the remote first.
    fn store(&self) -> Result<Store, crate::state::StateError> {
        let store = Store::open(&self.path)?;
        Ok(match &self.remote {
            Some(remote) => store.with_authority(Arc::new(crate::remote::RemoteAuthority::new(remote.clone()))),
            None => store,
        })
    }
}

/// What the HTTP handlers and the loops share.
struct Shared {
    sources: Vec<Arc<Source>>,
    metrics: Metrics,
    registry: prometheus_client::registry::Registry,
    secret: Option<secrecy::SecretString>,
    dashboard: Arc<crate::ui::Dashboard>,
}

/// Runs the controller until `cancel` flips; then stops taking work, lets running attempts
/// release their claims, and returns.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let (metrics, registry) = Metrics::new();
    let mut sources = Vec::new();
    let mut receivers = Vec::new();
    let mut watches = Vec::new();
    for s in &opts.config.sources {
        let (tx, rx) = mpsc::unbounded_channel();
        let name = source_name(s);
        let (path, remote, branch) = match (&s.path, &s.url) {
            (Some(path), _) => {
                let store = Store::open(path)?;
                let git_dir = store.repo().path().to_path_buf();
                let branch =
                    opts.env.get("PLANCD_BRANCH").map(str::to_owned).unwrap_or_else(|| head_config(store.path(), &opts.env).branch);
                watches.push(watch_local(&git_dir, &branch, tx.clone()).map_err(|e| ServeError::Watch(path.clone(), e))?);
                (store.path().to_path_buf(), None, branch)
            }
            (None, Some(url)) => {
                let dir = cache_root(&opts).join("sources").join(&name);
                let branch = s.branch.clone().or_else(|| opts.env.get("PLANCD_BRANCH").map(str::to_owned)).unwrap_or_else(|| "main".into());
                let token = s.token_env.as_ref().and_then(|v| opts.env.get(v)).map(|t| secrecy::SecretString::from(t.to_owned()));
                let remote = prepare_clone(&dir, url, &branch, token)?;
                let every = Duration::from_secs(s.interval_seconds.unwrap_or(60).max(1));
                let _poll = poll_remote(remote.clone(), watched_patterns(&branch), every, tx.clone());
                (dir, Some(remote), branch)
            }
            (None, None) => return Err(ServeError::Config(format!("source {name}"), Vec::new())),
        };
        let every = Duration::from_secs(opts.config.resync_seconds.unwrap_or(300).max(1));
        let _resync = resync_every(every, tx.clone());
        let _ = tx.send(Trigger::Resync); // the first pass, at once
        let github_repo = s.github_repo.clone().or_else(|| head_config(&path, &opts.env).forge.github.as_ref().map(|g| g.repo.clone()));
        let ui_branch = remote.as_ref().map(|_| branch.clone());
        let ui = Arc::new(crate::ui::UiSource::new(&name, path.clone(), ui_branch, Some(tx.clone())));
        sources.push(Arc::new(Source { name, path, remote, branch, github_repo, ready: AtomicBool::new(false), trigger: tx, ui }));
        receivers.push(rx);
    }
    let secret = webhook_secret(&opts, &sources);
    let settings = crate::ui::UiSettings::new(opts.config.ui.as_ref(), &opts.env, secret.as_ref());
    let dashboard = crate::ui::Dashboard::new(sources.iter().map(|s| s.ui.clone()).collect(), opts.env.clone(), settings);
    let shared = Arc::new(Shared { sources, metrics, registry, secret, dashboard });
    // Every series is there at 0 from the start, not only once something happened.
    for source in &shared.sources {
        shared.metrics.prepare_source(&source.name);
        count_refs(source, &shared, &opts.env);
    }
    let mut loops = tokio::task::JoinSet::new();
    // Warm sandbox sessions outlive a pass; they are given up when the controller stops.
    let lasting = Arc::new(super::reconcile::Lasting::default());
    let opener = lasting.opener(opts.sandbox.clone());
    for (source, rx) in shared.sources.clone().into_iter().zip(receivers) {
        loops.spawn(run_source(source, rx, shared.clone(), opts.env.clone(), opener.clone(), opts.cancel.clone(), opts.events.clone()));
    }
    if opts.http {
        let addr = opts.config.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| ServeError::Listen(addr, e))?;
        tracing::info!(%addr, "listening");
        let limit = webhook_limit(&opts);
        let app = router(shared.clone(), limit);
        let mut cancel = opts.cancel.clone();
        let dashboard = shared.dashboard.clone();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = cancel.wait_for(|c| *c).await;
            dashboard.stop();
        });
        loops.spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        });
    }
    while loops.join_next().await.is_some() {}
    lasting.settle().await;
    drop(watches);
    Ok(())
}

/// A source's name for logs and metrics: its `name`, else its folder's or its URL's last part.
fn source_name(s: &SourceConfig) -> String {
    if let Some(name) = &s.name {
        return name.clone();
    }
    let last = match (&s.path, &s.url) {
        (Some(path), _) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
        (None, Some(url)) => url.trim_end_matches('/').rsplit(['/', ':']).next().map(|n| n.trim_end_matches(".git").to_owned()),
        (None, None) => None,
    };
    last.filter(|n| !n.is_empty() && n != "." && n != "..").unwrap_or_else(|| "repo".into())
}

/// Where remote sources are cloned.
fn cache_root(opts: &ServeOptions) -> PathBuf {
    if let Some(dir) = &opts.config.cache_dir {
        return dir.clone();
    }
    let env = |name: &str| opts.env.get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("PLANCD_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("plancd")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/plancd")))
        .unwrap_or_else(|| std::env::temp_dir().join("plancd-cache"))
}

/// The refs of a remote source whose moves start a pass.
fn watched_patterns(branch: &str) -> Vec<String> {
    vec![format!("refs/heads/{branch}"), "refs/ai/tasks/*".into(), "refs/ai/workflows/*".into(), "refs/ai/requests/*".into()]
}

/// The refs a remote source's clone fetches before each pass: the watched branch, plancd's
/// state (tasks, workflows, requests, the model response cache), and the results (branches and
/// tags), so that a result another controller published is adopted rather than made again.
fn fetch_refspecs(branch: &str) -> Vec<String> {
    vec![
        format!("+refs/heads/{branch}:refs/heads/{branch}"),
        "+refs/ai/*:refs/ai/*".into(),
        "+refs/heads/ai/generated/*:refs/heads/ai/generated/*".into(),
        "+refs/tags/ai/*:refs/tags/ai/*".into(),
    ]
}

/// A bare repository in `dir` whose `origin` is `url` (made, or brought up to date).
fn prepare_clone(dir: &Path, url: &str, branch: &str, token: Option<secrecy::SecretString>) -> Result<Remote, ServeError> {
    let fail = |message: String| ServeError::Clone { url: crate::remote::redact_url(url), path: dir.to_path_buf(), message };
    let repo = match git2::Repository::open_bare(dir) {
        Ok(repo) => repo,
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            git2::Repository::init_bare(dir).map_err(|e| fail(e.to_string()))?
        }
    };
    match repo.find_remote("origin") {
        Ok(r) if r.url().ok() == Some(url) => {}
        Ok(_) => repo.remote_set_url("origin", url).map_err(|e| fail(e.to_string()))?,
        Err(_) => {
            repo.remote_with_fetch("origin", url, &format!("+refs/heads/{branch}:refs/heads/{branch}")).map_err(|e| fail(e.to_string()))?;
        }
    }
    repo.set_head(&format!("refs/heads/{branch}")).map_err(|e| fail(e.to_string()))?;
    Remote::open(dir, "origin", token).map_err(|e| fail(e.to_string()))?.ok_or_else(|| fail("no remote origin".into()))
}

/// The configuration at HEAD, for the branch to watch and the forge to match webhooks with.
fn head_config(path: &Path, env: &Env) -> Config {
    let from_head = || -> Option<Config> {
        let repo = git2::Repository::open(path).ok()?;
        let head = repo.head().ok()?.peel_to_commit().ok()?.id();
        Config::load(&TreeSource::new(path, head).ok()?).ok().map(|(c, _)| c)
    };
    let mut config = from_head().or_else(|| Config::load(&DirSource::new(path)).ok().map(|(c, _)| c)).unwrap_or_default();
    let _ = config.apply_env(env);
    config
}

fn webhook_secret(opts: &ServeOptions, sources: &[Arc<Source>]) -> Option<secrecy::SecretString> {
    let named = opts
        .config
        .webhook
        .as_ref()
        .and_then(|w| w.secret_env.clone())
        .or_else(|| sources.first().and_then(|s| head_config(&s.path, &opts.env).webhook.secret_env));
    named
        .and_then(|var| opts.env.get(&var).map(str::to_owned))
        .or_else(|| opts.env.get("PLANCD_WEBHOOK_SECRET").map(str::to_owned))
        .filter(|s| !s.is_empty())
        .map(secrecy::SecretString::from)
}

fn webhook_limit(opts: &ServeOptions) -> usize {
    opts.config.webhook.as_ref().and_then(|w| w.max_body_bytes).map_or(1 << 20, |b| usize::try_from(b).unwrap_or(usize::MAX))
}

/// One source's loop: a pass per trigger (triggers during a pass fold into one more pass).
async fn run_source(
    source: Arc<Source>,
    mut rx: mpsc::UnboundedReceiver<Trigger>,
    shared: Arc<Shared>,
    env: Env,
    sandbox: SandboxOpener,
    mut cancel: watch::Receiver<bool>,
    events: Option<EventSink>,
) {
    loop {
        let trigger = tokio::select! {
            t = rx.recv() => match t { Some(t) => t, None => return },
            _ = cancel.wait_for(|c| *c) => return,
        };
        while rx.try_recv().is_ok() {}
        if *cancel.borrow() {
            return;
        }
        pass(&source, &shared, &env, &sandbox, cancel.clone(), events.clone(), trigger).await;
    }
}

async fn pass(
    source: &Source,
    shared: &Shared,
    env: &Env,
    sandbox: &SandboxOpener,
    cancel: watch::Receiver<bool>,
    events: Option<EventSink>,
    trigger: Trigger,
) {
    let label = SourceLabel { source: source.name.clone() };
    let started = Instant::now();
    tracing::info!(source = %source.name, trigger = trigger.name(), "pass started");
    if let Some(remote) = &source.remote {
        let refspecs = fetch_refspecs(&source.branch);
        if let Err(e) = remote.fetch(&refspecs.iter().map(String::as_str).collect::<Vec<_>>()).await {
            tracing::warn!(source = %source.name, error = %e, "fetching the source failed; no pass");
            shared.metrics.passes.get_or_create(&OutcomeLabels { source: source.name.clone(), outcome: "error".into() }).inc();
            return;
        }
    }
    let request = source.store().ok().and_then(|s| s.reconcile_request().ok().flatten()).filter(|(_, r)| r.handled_at.is_none());
    let metrics = shared.metrics.clone();
    let name = source.name.clone();
    let sink: EventSink = Arc::new(move |event: &Event| {
        metrics.observe(&name, event);
        if let (Some(events), true) = (&events, event.is_progress()) {
            events(event);
        }
        match event {
            Event::Started { key, attempt, role, retry } => {
                tracing::info!(workflow = %key.workflow, task = %key.task, attempt, role = role.as_str(), retry, "attempt started")
            }
            Event::Step { key, attempt, step } => {
                tracing::info!(workflow = %key.workflow, task = %key.task, attempt, step = %step, "attempt step")
            }
            Event::Finished { key, attempt, end, .. } => log_attempt_end(key, *attempt, end),
            _ => {}
        }
    });
    let opts = ReconcileOptions {
        repo: source.path.clone(),
        branch: source.remote.as_ref().map(|_| source.branch.clone()),
        shared: source.remote.is_some(),
        remote: source.remote.as_ref().map(|r| r.name().to_owned()),
        env: env.clone(),
        sandbox: sandbox.clone(),
        events: Some(sink),
        cancel,
    };
    let result = reconcile(opts).await;
    for warning in result.iter().flat_map(|r| &r.warnings) {
        tracing::warn!(source = %source.name, "{warning}");
    }
    for stalled in result.iter().flat_map(|r| &r.stalled) {
        let diagnostics: Vec<String> = stalled.plan.diagnostics.iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
        tracing::warn!(
            source = %source.name,
            workflow = stalled.plan.name(),
            reason = stalled.reason.reason(),
            errors = diagnostics.len(),
            diagnostics = diagnostics.join("\n"),
            "workflow stalled: {}",
            stalled.summary()
        );
    }
    shared.metrics.reconcile_duration.get_or_create(&label).observe(started.elapsed().as_secs_f64());
    let outcome = match &result {
        Ok(report) if report.infrastructure.is_none() && !report.cancelled => {
            source.ready.store(true, Ordering::SeqCst);
            "ok".to_owned()
        }
        Ok(report) => report.infrastructure.clone().unwrap_or_else(|| "cancelled".into()),
        Err(e) => e.to_string(),
    };
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(report) if report.infrastructure.is_some() => {
            tracing::error!(source = %source.name, seconds, error = outcome.as_str(), "pass ended: an outside part failed")
        }
        Ok(_) => tracing::info!(source = %source.name, seconds, %outcome, "pass ended"),
        Err(e) if e.is_bad_input() => tracing::warn!(source = %source.name, seconds, error = %e, "pass not run: bad input"),
        Err(e) => tracing::error!(source = %source.name, seconds, error = %e, "pass failed"),
    }
    source.ui.pass_ended(crate::ui::PassInfo { ended_at: jiff::Timestamp::now(), seconds, outcome: outcome.clone() });
    let result_label = if outcome == "ok" { "ok" } else { "error" };
    shared.metrics.passes.get_or_create(&OutcomeLabels { source: source.name.clone(), outcome: result_label.into() }).inc();
    if outcome == "ok" {
        shared.metrics.pass_succeeded(&source.name);
    }
    count_refs(source, shared, env);
    if let Some((tip, mut request)) = request {
        acknowledge(source, tip, &mut request, &outcome);
    }
}

/// Logs how an attempt ended, once, at the level it deserves: a success as info, a failure
/// or an escalation as a warning with its reason and message, an outside part's failure as an
/// error.
fn log_attempt_end(key: &crate::state::TaskKey, attempt: u32, end: &crate::reconcile::AttemptEnd) {
    use crate::reconcile::AttemptEnd as E;
    let (workflow, task, outcome) = (key.workflow.as_str(), key.task.as_str(), end.label());
    match end {
        E::Succeeded { tag, .. } | E::Adopted { tag, .. } => tracing::info!(workflow, task, attempt, outcome, %tag, "attempt ended"),
        E::Failed { failure_type, message } => tracing::warn!(workflow, task, attempt, outcome, %failure_type, message, "attempt ended"),
        E::Debugging { branch, failure_type, message } => {
            tracing::warn!(workflow, task, attempt, outcome, %failure_type, message, %branch, "attempt ended")
        }
        E::Escalated { message } => tracing::warn!(workflow, task, attempt, outcome, message, "attempt ended: escalated to a person"),
        E::Infrastructure(why) => tracing::error!(workflow, task, attempt, outcome, error = why.as_str(), "attempt ended"),
        E::LostClaim | E::Cancelled => tracing::info!(workflow, task, attempt, outcome, "attempt ended"),
    }
}

/// The series of the source's workflows (at 0 where nothing was counted yet), and the
/// tasks-by-phase, spend and time-to-satisfied gauges, from the plans and the refs.
fn count_refs(source: &Source, shared: &Shared, env: &Env) {
    let branch = source.remote.as_ref().map(|_| source.branch.as_str());
    let snapshot = crate::reconcile::Snapshot::load(&source.path, branch, env).ok();
    if let Some(snapshot) = &snapshot {
        shared.metrics.prepare_workflows(&source.name, snapshot);
    }
    // Through the dashboard's record cache: after the first count, only the refs that moved
    // are read again.
    if let Ok(store) = source.ui.store() {
        shared.metrics.count_refs(&source.name, &store);
        if let Some(snapshot) = &snapshot {
            shared.metrics.count_satisfied(&source.name, snapshot, &store);
        }
    }
}

fn acknowledge(source: &Source, tip: git2::Oid, request: &mut ReconcileRequest, outcome: &str) {
    request.handled_at = Some(jiff::Timestamp::now());
    request.handled_by = Some(crate::state::Holder::current().to_string());
    request.outcome = outcome.to_owned();
    if let Ok(store) = source.store()
        && let Err(e) = store.write_request(request, Some(tip))
    {
        tracing::warn!(source = %source.name, error = %e, "could not acknowledge the reconcile request");
    }
}

fn router(shared: Arc<Shared>, limit: usize) -> Router {
    let dashboard = crate::ui::router(shared.dashboard.clone());
    Router::new()
        .route("/hooks/github", post(github_hook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/live", get(live_list))
        .route("/api/v1/live/{workflow}/{task}", get(live_task))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
        .merge(dashboard)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let waiting: Vec<&str> = shared.sources.iter().filter(|s| !s.ready.load(Ordering::SeqCst)).map(|s| s.name.as_str()).collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("no successful pass yet: {}\n", waiting.join(", ")))
    }
}

/// The attempts that run now, in every source: source, workflow, task, attempt, step, start.
async fn live_list(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut running = Vec::new();
    for source in &shared.sources {
        let Some(git_dir) = git_dir(&source.path) else { continue };
        for (key, view) in crate::live::running(&git_dir) {
            running.push(serde_json::json!({
                "source": source.name, "workflow": key.workflow, "task": key.task,
                "attempt": view.attempt, "step": view.marker.step, "started_at": view.marker.started_at,
            }));
        }
    }
    json_response(StatusCode::OK, &serde_json::json!({ "running": running }))
}

/// A task's live attempt and its output past `?offsets=A,B,C,D` (agent, checks, tests and
/// probe logs): poll with the offsets of the last answer until `running` is false.
async fn live_task(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((workflow, task)): axum::extract::Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> impl IntoResponse {
    let offsets: Vec<u64> = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("offsets=")))
        .map(|list| list.split(',').map(|n| n.parse().unwrap_or(0)).collect())
        .unwrap_or_default();
    let key = crate::state::TaskKey::new(&workflow, &task);
    let found = shared.sources.iter().filter_map(|s| git_dir(&s.path)).find_map(|dir| super::logs::live_chunk(&dir, &key, &offsets));
    match found {
        Some(chunk) => json_response(StatusCode::OK, &chunk),
        None => json_response(StatusCode::NOT_FOUND, &serde_json::json!({ "error": format!("no live attempt of {key}") })),
    }
}

fn git_dir(repo: &Path) -> Option<PathBuf> {
    Some(Store::open(repo).ok()?.repo().path().to_path_buf())
}

fn json_response(code: StatusCode, body: &impl serde::Serialize) -> axum::response::Response {
    let text = serde_json::to_string(body).expect("API answers always serialise");
    (code, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let body = crate::telemetry::encode(&shared.registry);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}

/// GitHub's push webhook: signed with the shared secret; a push to a watched branch of a
/// configured repository starts a pass at once; anything else is accepted and ignored.
async fn github_hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let Some(secret) = &shared.secret else { return (StatusCode::UNAUTHORIZED, "no webhook secret is configured\n".to_owned()) };
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !signature_ok(secrecy::ExposeSecret::expose_secret(secret).as_bytes(), &body, signature) {
        return (StatusCode::UNAUTHORIZED, "bad signature\n".to_owned());
    }
    let event = headers.get("x-github-event").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if event == "ping" {
        return (StatusCode::OK, "pong\n".to_owned());
    }
    if event != "push" {
        return (StatusCode::ACCEPTED, format!("ignored: {event} events start nothing\n"));
    }
    let Ok(push) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not JSON\n".to_owned());
    };
    let git_ref = push["ref"].as_str().unwrap_or_default();
    let repo = push["repository"]["full_name"].as_str().unwrap_or_default();
    let hit: Vec<&str> = shared
        .sources
        .iter()
        .filter(|s| git_ref == format!("refs/heads/{}", s.branch) && s.github_repo.as_deref().is_none_or(|r| r.eq_ignore_ascii_case(repo)))
        .filter(|s| s.trigger.send(Trigger::Webhook).is_ok())
        .map(|s| s.name.as_str())
        .collect();
    if hit.is_empty() {
        return (StatusCode::ACCEPTED, format!("ignored: {repo} {git_ref} is not watched here\n"));
    }
    (StatusCode::OK, format!("pass started for {}\n", hit.join(", ")))
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body), compared in constant time.
pub fn signature_ok(secret: &[u8], body: &[u8], header: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let Some(hex) = header.strip_prefix("sha256=") else { return false };
    let Some(expected) = decode_hex(hex) else { return false };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The `sha256=<hex>` signature GitHub sends for `body` (for tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", crate::spec::hex(&mac.finalize().into_bytes()))
}

/// Writes a reconcile request and waits (up to `timeout`) until a controller acknowledges it.
/// With `shared`, the request goes to that remote (where controllers serving it by URL look)
/// and the acknowledgement is looked for there.
pub async fn request_and_wait(repo: &Path, who: &str, timeout: Duration, shared: Option<Remote>) -> Result<ReconcileRequest, RequestError> {
    let mut store = Store::open(repo)?;
    let every = match shared {
        Some(remote) => {
            store = store.with_authority(Arc::new(crate::remote::RemoteAuthority::new(remote)));
            Duration::from_secs(1)
        }
        None => Duration::from_millis(100),
    };
    store.refresh()?;
    let current = store.reconcile_request()?.map(|(tip, _)| tip);
    let request = ReconcileRequest {
        requested_at: jiff::Timestamp::now(),
        requested_by: who.to_owned(),
        handled_at: None,
        handled_by: None,
        outcome: String::new(),
    };
    store.write_request(&request, current)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((_, seen)) = store.reconcile_request()?
            && seen.requested_at == request.requested_at
            && seen.handled_at.is_some()
        {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            return Err(RequestError::Timeout(timeout));
        }
        tokio::time::sleep(every).await;
        // A look that fails (the remote out of reach for a moment) is tried again next time.
        if let Err(e) = store.refresh() {
            tracing::warn!(error = %e, "could not look for the acknowledgement on the remote");
        }
    }
}

/// Why a reconcile request went unanswered.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No controller acknowledged it in time.
    #[error("no controller acknowledged the request within {}s (is `plancd serve` running for this repository?)", .0.as_secs())]
    Timeout(Duration),
    /// The refs could not be read or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig = sign(b"s3cret", body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(signature_ok(b"s3cret", body, &sig));
        assert!(!signature_ok(b"other", body, &sig));
        assert!(!signature_ok(b"s3cret", b"{}", &sig));
        assert!(!signature_ok(b"s3cret", body, "sha256=zz"));
        assert!(!signature_ok(b"s3cret", body, ""));
    }
}
