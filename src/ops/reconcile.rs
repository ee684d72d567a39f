//! `plancd reconcile` and `plancd diff`: one pass from the watched commit's plans to published
//! results, or what such a pass would do.

use std::path::PathBuf;
use std::sync::Arc;

use plancd_sandbox::{Sandbox, SandboxError};
use tokio::sync::watch;
use tracing::Instrument;

use crate::config::{Config, Env};
use crate::reconcile::environment::Environments;
use crate::reconcile::{
    Action, EventSink, Executor, LoadError, PassContext, PassReport, Snapshot, StalledWorkflow, Upstream, decide, read_actual,
};
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
    /// The configuration is invalid, or the branch is missing: bad input. (A plan's own
    /// errors stall its workflow, in the report, and the others run.)
    #[error(transparent)]
    Load(#[from] LoadError),
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
    /// `--branch` names a branch other than the watched one, whose task records it would rewrite.
    #[error(
        "`{requested}` is not the watched branch `{configured}`: task records are kept once per repository, so reconciling \
         `{requested}` would rewrite `{configured}`'s. Preview it with `plancd diff --branch {requested}`, or watch it by \
         setting `branch: {requested}` in plancd.yaml (or PLANCD_BRANCH)"
    )]
    OtherBranch {
        /// The branch asked for.
        requested: String,
        /// The branch the configuration watches.
        configured: String,
    },
}

impl ReconcileError {
    /// Whether the fault is in the input (exit 2) rather than an outside part (exit 3).
    pub fn is_bad_input(&self) -> bool {
        use crate::reconcile::upstream::UpstreamError;
        matches!(
            self,
            ReconcileError::Patterns(_)
                | ReconcileError::NoSharedRemote(_)
                | ReconcileError::NotShared { .. }
                | ReconcileError::OtherBranch { .. }
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
    check_watched(&snapshot, opts.branch.is_some(), &opts.env)?;
    if let Some(name) = &opts.remote {
        snapshot.config.remote = name.clone();
    }
    let triage = Triage::new(&snapshot.config.failure_patterns).map_err(ReconcileError::Patterns)?;
    let upstream = Upstream::open(store.path(), &snapshot.config, &opts.env).await?;
    let mut warnings = Vec::new();
    if opts.shared {
        let remote = upstream.remote().ok_or_else(|| ReconcileError::NoSharedRemote(snapshot.config.remote.clone()))?;
        store = store.with_authority(Arc::new(crate::remote::RemoteAuthority::new(remote.clone())));
        // What the others have written so far, on the plans they see.
        store.refresh()?;
        let remote_tip = store.authority_tip(&format!("refs/heads/{}", snapshot.branch))?;
        if remote_tip != Some(snapshot.plan_commit) {
            return Err(ReconcileError::NotShared { branch: snapshot.branch.clone(), remote: snapshot.config.remote.clone() });
        }
    } else if let Some(remote) = upstream.remote() {
        // A clone knows only what was fetched into it: bring in the records, results and cache
        // the remote holds, so that work done elsewhere is neither done again nor pushed over.
        // The state refs an Action run fetches, fast-forward only: this repository may be ahead.
        let refspecs = crate::ops::action::STATE_REFSPECS.map(|r| r.trim_start_matches('+'));
        match remote.fetch_fast_forward(&refspecs).await {
            Ok(kept) => warnings.extend(kept.into_iter().map(|name| {
                format!("{name} here and on `{}` have diverged; this repository's is kept, and its push will be refused", remote.name())
            })),
            Err(e) => {
                warnings.push(format!("could not bring in the records of `{}` ({e}); work done elsewhere may be done again", remote.name()))
            }
        }
    }
    let store = Arc::new(store);
    let actual = snapshot.screen(read_actual(&store)?);
    let before = decide(&snapshot.desired(), &actual, &crate::reconcile::Context { now: jiff::Timestamp::now(), prune: false });
    upstream.pass_started(&snapshot, &before).await?;
    let sandbox = (opts.sandbox)(&snapshot.config).await?;
    let environments = {
        let dir = Environments::default_dir(store.repo().path(), opts.env.get("PLANCD_CACHE_DIR"));
        Arc::new(Environments::new(dir, opts.env.vars()))
    };
    let models = Arc::new(crate::agent::Models::new(opts.env, Some(store.clone())));
    let cx = PassContext {
        environments,
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
    let span = tracing::info_span!("pass", correlation_id = %cx.correlation_id, commit = %cx.snapshot.plan_commit);
    let mut report = Executor::new(cx.clone()).run().instrument(span).await?;
    cx.sandbox.settle().await;
    report.stalled = cx.snapshot.stalled.clone();
    report.broken = cx.store.scan()?.1;
    report.warnings = warnings;
    let problems = cx.upstream.pass_ended(&cx, &report).await;
    if let Some(limit) = cx.upstream.forge().rate_limit() {
        cx.emit(crate::reconcile::Event::ForgeRateLimit(limit));
    }
    if !problems.is_empty() && report.infrastructure.is_none() {
        report.infrastructure = Some(problems.join("; "));
    }
    Ok(report)
}

/// Sandboxes a controller keeps from one pass to the next, so that its warm sessions are not
/// torn down and made again every pass: [`Lasting::opener`] hands out the same backend while
/// the configuration names the same one with the same concurrency, and a pass's `settle` leaves
/// it warm. [`Lasting::settle`] gives everything up when the controller stops.
#[derive(Default)]
pub struct Lasting {
    opened: tokio::sync::Mutex<Vec<(LastingKey, Arc<dyn Sandbox>)>>,
}

type LastingKey = (crate::config::SandboxBackend, u32);

impl Lasting {
    /// An opener over `inner` that keeps what it opens.
    pub fn opener(self: &Arc<Self>, inner: SandboxOpener) -> SandboxOpener {
        let lasting = self.clone();
        Arc::new(move |config: &Config| -> OpenFuture {
            let key = (config.sandbox.backend, config.concurrency);
            let (lasting, inner, config) = (lasting.clone(), inner.clone(), config.clone());
            Box::pin(async move {
                let mut opened = lasting.opened.lock().await;
                if let Some((_, sandbox)) = opened.iter().find(|(k, _)| *k == key) {
                    return Ok(Arc::new(Kept(sandbox.clone())) as Arc<dyn Sandbox>);
                }
                let sandbox = inner(&config).await?;
                opened.push((key, sandbox.clone()));
                Ok(Arc::new(Kept(sandbox)) as Arc<dyn Sandbox>)
            })
        })
    }

    /// Gives up every kept sandbox's warm sessions and waits for their removal.
    pub async fn settle(&self) {
        for (_, sandbox) in self.opened.lock().await.drain(..) {
            sandbox.settle().await;
        }
    }
}

/// A kept sandbox as a pass sees it: everything but `settle`, which waits for the controller.
struct Kept(Arc<dyn Sandbox>);

#[async_trait::async_trait]
impl Sandbox for Kept {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn create(&self, spec: &plancd_sandbox::SessionSpec) -> Result<Box<dyn plancd_sandbox::Session>, SandboxError> {
        self.0.create(spec).await
    }
}

/// Refuses a branch asked for by name (`--branch`) that is not the one the configuration at its
/// commit watches (`branch:`, or PLANCD_BRANCH): the task records under `refs/ai/` are one set
/// per repository, and a pass over another branch's plans would rewrite the watched branch's.
pub fn check_watched(snapshot: &Snapshot, asked: bool, env: &Env) -> Result<(), ReconcileError> {
    if !asked {
        return Ok(());
    }
    let mut config = Config::load_env(&snapshot.source, env).map_err(|d| ReconcileError::Load(LoadError::Invalid(d)))?;
    config.apply_env(env).map_err(|e| ReconcileError::Load(LoadError::Env(e)))?;
    if config.branch == snapshot.branch {
        return Ok(());
    }
    Err(ReconcileError::OtherBranch { requested: snapshot.branch.clone(), configured: config.branch })
}

/// [`check_watched`] for the commands that write a record of the branch `branch` names.
pub fn check_branch(repo: &std::path::Path, branch: Option<&str>, env: &Env) -> Result<(), ReconcileError> {
    let Some(branch) = branch else { return Ok(()) };
    let snapshot = Snapshot::load(repo, Some(branch), env)?;
    check_watched(&snapshot, true, env)
}

/// What a pass would do, task by task.
#[derive(Debug, Clone)]
pub struct DiffReport {
    /// The watched commit.
    pub plan_commit: String,
    /// Every task's action.
    pub actions: Vec<Action>,
    /// The workflows that would not run because their plans are invalid.
    pub stalled: Vec<StalledWorkflow>,
    /// Task refs that cannot be read: their workflows are left alone until they are repaired.
    pub broken: Vec<crate::state::BrokenTask>,
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
    decide_on(&store, snapshot)
}

/// What a reconcile of `snapshot` would do with the state in `store`.
pub fn decide_on(store: &Store, snapshot: Snapshot) -> Result<DiffReport, ReconcileError> {
    let actual = snapshot.screen(read_actual(store)?);
    let cx = crate::reconcile::Context { now: jiff::Timestamp::now(), prune: snapshot.config.prune };
    let actions = decide(&snapshot.desired(), &actual, &cx);
    Ok(DiffReport { plan_commit: snapshot.plan_commit.to_string(), actions, stalled: snapshot.stalled, broken: store.scan()?.1 })
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A backend that counts how often it is opened and settled.
    struct Counted(Arc<AtomicUsize>);

    #[async_trait::async_trait]
    impl Sandbox for Counted {
        fn name(&self) -> &'static str {
            "fake"
        }

        async fn create(&self, _: &plancd_sandbox::SessionSpec) -> Result<Box<dyn plancd_sandbox::Session>, SandboxError> {
            Err(SandboxError::Gone("none".into()))
        }

        async fn settle(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_controller_keeps_its_sandbox_warm_from_pass_to_pass() {
        let opened = Arc::new(AtomicUsize::new(0));
        let settled = Arc::new(AtomicUsize::new(0));
        let inner: SandboxOpener = {
            let (opened, settled) = (opened.clone(), settled.clone());
            Arc::new(move |_: &Config| -> OpenFuture {
                opened.fetch_add(1, Ordering::SeqCst);
                let settled = settled.clone();
                Box::pin(async move { Ok(Arc::new(Counted(settled)) as Arc<dyn Sandbox>) })
            })
        };
        let lasting = Arc::new(Lasting::default());
        let opener = lasting.opener(inner);
        let config = Config::default();
        for _pass in 0..3 {
            let sandbox = opener(&config).await.unwrap();
            sandbox.settle().await;
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1, "one backend for every pass");
        assert_eq!(settled.load(Ordering::SeqCst), 0, "a pass's settle leaves it warm");
        let wider = Config { concurrency: config.concurrency + 1, ..Config::default() };
        opener(&wider).await.unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 2, "another concurrency, another backend");
        lasting.settle().await;
        assert_eq!(settled.load(Ordering::SeqCst), 2, "the controller's stop settles them all");
    }
}
