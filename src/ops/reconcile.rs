//! `plancd reconcile` and `plancd diff`: one pass from the watched commit's plans to published
//! results, or what such a pass would do.

use std::path::PathBuf;
use std::sync::Arc;

use plancd_sandbox::{Sandbox, SandboxError};
use tokio::sync::watch;

use crate::config::{Config, Env};
use crate::reconcile::{Action, EventSink, Executor, LoadError, PassContext, PassReport, Snapshot, Upstream, decide, read_actual};
use crate::spec::Diagnostic;
use crate::state::{Holder, StateError, Store};
use crate::triage::Triage;

/// Opens the sandbox backend a configuration names.
pub type SandboxOpener = Arc<dyn Fn(&Config) -> OpenFuture + Send + Sync>;

/// What a [`SandboxOpener`] returns.
pub type OpenFuture = std::pin::Pin<Box<dyn Future<Output = Result<Arc<dyn Sandbox>, SandboxError>> + Send>>;

/// What to reconcile.
pub struct ReconcileOptions {
    /// The repository.
    pub repo: PathBuf,
    /// The watched branch, overriding the configuration.
    pub branch: Option<String>,
    /// The environment (`PLANCD_*`).
    pub env: Env,
    /// Opens the sandbox.
    pub sandbox: SandboxOpener,
    /// Progress.
    pub events: Option<EventSink>,
    /// Flips to true to stop.
    pub cancel: watch::Receiver<bool>,
    /// Share the task state with other controllers through the remote: every ref write is a
    /// compare-and-swap push to it before it lands here, and what they wrote is brought in.
    pub shared: bool,
    /// The remote to use instead of plancd.yaml's `remote:`.
    pub remote: Option<String>,
}

/// Why a pass could not run (as opposed to tasks failing).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The plans or the configuration are invalid, or the branch is missing: bad input.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The plans name roles that have no agent.
    #[error("{} role(s) have no agent in plancd.yaml", .0.len())]
    NoAgents(Vec<Diagnostic>),
    /// A `failure_patterns` regex does not compile.
    #[error(transparent)]
    Patterns(#[from] crate::triage::PatternError),
    /// The repository's refs could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The sandbox backend is not available.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// An attempt hit a git failure.
    #[error(transparent)]
    Attempt(#[from] crate::reconcile::attempt::AttemptError),
    /// The remote or the forge could not be set up.
    #[error(transparent)]
    Upstream(#[from] crate::reconcile::upstream::UpstreamError),
    /// The watched branch here is not the remote's: the others reconcile the remote's.
    #[error("`{branch}` differs from `{remote}`'s, which every controller sharing the remote reconciles: push or pull first")]
    NotShared {
        /// The watched branch.
        branch: String,
        /// The shared remote.
        remote: String,
    },
    /// The shared remote is not a remote of the repository.
    #[error("the repository has no remote `{0}` to share (`remote:` in plancd.yaml names it)")]
    NoSharedRemote(String),
}

impl ReconcileError {
    /// Whether the fault is in the input (exit 2) rather than an outside part (exit 3).
    pub fn is_bad_input(&self) -> bool {
        use crate::reconcile::upstream::UpstreamError;
        matches!(
            self,
            ReconcileError::NoAgents(_)
                | ReconcileError::Patterns(_)
                | ReconcileError::NoSharedRemote(_)
                | ReconcileError::NotShared { .. }
        ) || matches!(self, ReconcileError::Upstream(UpstreamError::Forge(crate::forge::ForgeError::Config(_))))
            || matches!(self, ReconcileError::Load(e) if !matches!(e, LoadError::Git(_) | LoadError::Io(_)))
    }
}

/// A fresh correlation id: 16 hex digits.
pub fn correlation_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Runs one pass to its fixed point: the workflows with work get a pending commit status, the
/// executor runs, then the task refs go to the remote and the statuses and escalations to the
/// forge. Failures of that last step end up in the report's `infrastructure`.
pub async fn reconcile(opts: ReconcileOptions) -> Result<PassReport, ReconcileError> {
    let mut store = Store::open(&opts.repo)?;
    let mut snapshot = Snapshot::load(store.path(), opts.branch.as_deref(), &opts.env)?;
    if let Some(name) = &opts.remote {
        snapshot.config.remote = name.clone();
    }
    let missing = missing_agents(&snapshot);
    if !missing.is_empty() {
        return Err(ReconcileError::NoAgents(missing));
    }
    let triage = Triage::new(&snapshot.config.failure_patterns).map_err(ReconcileError::Patterns)?;
    let upstream = Upstream::open(store.path(), &snapshot.config, &opts.env).await?;
    if opts.shared {
        let remote = upstream.remote().ok_or_else(|| ReconcileError::NoSharedRemote(snapshot.config.remote.clone()))?;
        store = store.with_authority(Arc::new(crate::remote::RemoteAuthority::new(remote.clone())));
        // What the others have written so far, on the plans they see.
        store.refresh()?;
        let remote_tip = store.authority_tip(&format!("refs/heads/{}", snapshot.branch))?;
        if remote_tip != Some(snapshot.plan_commit) {
            return Err(ReconcileError::NotShared { branch: snapshot.branch.clone(), remote: snapshot.config.remote.clone() });
        }
    }
    let store = Arc::new(store);
    let before =
        decide(&snapshot.desired(), &read_actual(&store)?, &crate::reconcile::Context { now: jiff::Timestamp::now(), prune: false });
    upstream.pass_started(&snapshot, &before).await?;
    let sandbox = (opts.sandbox)(&snapshot.config).await?;
    let models = Arc::new(crate::agent::Models::new(opts.env, Some(store.clone())));
    let cx = PassContext {
        upstream,
        models,
        store,
        sandbox,
        snapshot: Arc::new(snapshot),
        holder: Holder::current().to_string(),
        correlation_id: correlation_id(),
        cancel: opts.cancel,
        changes: Default::default(),
        triage,
        events: opts.events,
    };
    let cx = Arc::new(cx);
    let mut report = Executor::new(cx.clone()).run().await?;
    cx.sandbox.settle().await;
    let problems = cx.upstream.pass_ended(&cx, &report).await;
    if !problems.is_empty() && report.infrastructure.is_none() {
        report.infrastructure = Some(problems.join("; "));
    }
    Ok(report)
}

/// Every task whose role has no agent in the configuration (no command, and no model that
/// `models:` defines), as an error at the task.
pub fn missing_agents(snapshot: &Snapshot) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let config = &snapshot.config;
    for plan in &snapshot.plans {
        for task in &plan.list.tasks {
            let role = task.agent_role;
            let problem = match config.roles.get(&role) {
                Some(r) if r.command.is_some() => continue,
                Some(r) if r.model.as_ref().is_some_and(|m| config.models.contains_key(m)) => continue,
                Some(crate::config::RoleConfig { model: Some(model), .. }) => {
                    format!("roles.{role}.model names `{model}`, which `models:` in plancd.yaml does not define")
                }
                _ => format!("no agent plays role `{role}`: set roles.{role}.command or roles.{role}.model in plancd.yaml"),
            };
            out.push(Diagnostic::error(&plan.path, crate::spec::Pos::START, "no-agent", format!("task `{}`: {problem}", task.id)));
        }
    }
    out
}

/// What a pass would do, task by task.
#[derive(Debug, Clone)]
pub struct DiffReport {
    /// The watched commit.
    pub plan_commit: String,
    /// Every task's action.
    pub actions: Vec<Action>,
}

impl DiffReport {
    /// Whether a reconcile would change anything.
    pub fn has_work(&self) -> bool {
        self.actions.iter().any(Action::is_work)
    }
}

/// Decides without acting.
pub fn diff(repo: &std::path::Path, branch: Option<&str>, env: &Env) -> Result<DiffReport, ReconcileError> {
    let store = Store::open(repo)?;
    let snapshot = Snapshot::load(store.path(), branch, env)?;
    let actual = read_actual(&store)?;
    let cx = crate::reconcile::Context { now: jiff::Timestamp::now(), prune: snapshot.config.prune };
    Ok(DiffReport { plan_commit: snapshot.plan_commit.to_string(), actions: decide(&snapshot.desired(), &actual, &cx) })
}

/// Opens the backend the configuration names: `process` (bubblewrap) or `docker`.
pub fn default_sandbox_opener() -> SandboxOpener {
    Arc::new(|config: &Config| -> OpenFuture {
        let backend = match config.sandbox.backend {
            crate::config::SandboxBackend::Process => super::sandbox::Backend::Process,
            crate::config::SandboxBackend::Docker => super::sandbox::Backend::Docker,
        };
        // One warm session per attempt that may run at once.
        let warm = config.concurrency as usize;
        Box::pin(async move {
            match super::sandbox::open_warm(backend, warm).await {
                Ok(sandbox) => Ok(Arc::from(sandbox)),
                Err(super::sandbox::SandboxOpError::Unavailable { error, .. } | super::sandbox::SandboxOpError::Sandbox(error)) => {
                    Err(error)
                }
                Err(other) => Err(SandboxError::Backend { backend: backend.name(), message: other.to_string() }),
            }
        })
    })
}
