//! What a running controller tells the outside: Prometheus metrics (text format), logs
//! (tracing; JSON in controller mode, filtered by `RUST_LOG`) and, when a collector is named,
//! traces over OTLP ([`otlp`]).

pub mod otlp;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::reconcile::{AttemptEnd, Event, Snapshot, UpstreamPart};
use crate::spec::Role;
use crate::state::quality::{Severity, SeverityCounts};
use crate::state::{FailureType, Phase, Quality, Store};

/// A repository source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// The source's name.
    pub source: String,
}

/// Passes by result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The source's name.
    pub source: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// A workflow of a source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkflowLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
}

/// Tasks (or branch todos) of a workflow by phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// The phase.
    pub phase: String,
}

/// Attempts of a workflow's role by how they ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// The role that played the attempt.
    pub role: String,
    /// How it ended: succeeded, failed, debugging, escalated, ...
    pub outcome: String,
}

/// Attempts of a workflow's role.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// The role.
    pub role: String,
}

/// Failures by type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// The triage's failure type.
    pub failure_type: String,
}

/// Model use by workflow, role and model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// The role.
    pub role: String,
    /// The configured model's name (`models:` in plancd.yaml).
    pub model: String,
}

/// Security findings of a workflow's results by severity.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
}

/// Tokens by direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// The source's name.
    pub source: String,
    /// The workflow.
    pub workflow: String,
    /// The role.
    pub role: String,
    /// The configured model's name.
    pub model: String,
    /// `input` or `output`.
    pub direction: String,
}

/// Sandbox commands by kind (agent, check, test).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecLabels {
    /// agent, check or test.
    pub kind: String,
}

/// The version of the running binary.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// plancd's version.
    pub version: String,
}

/// Every outcome an attempt can have, as the `outcome` label says it.
pub const OUTCOMES: [&str; 8] = ["succeeded", "adopted", "debugging", "failed", "escalated", "lost_claim", "cancelled", "infrastructure"];

/// The roles that play tasks and branch todos.
const ROLES: [Role; 4] = [Role::Architect, Role::Coder, Role::Tester, Role::Debugger];

/// Every metric plancd exports.
#[derive(Clone)]
pub struct Metrics {
    /// The running version (always 1).
    pub build_info: Family<BuildLabels, Gauge>,
    /// How long passes take.
    pub reconcile_duration: Family<SourceLabel, Histogram>,
    /// Passes by result.
    pub passes: Family<OutcomeLabels, Counter>,
    /// When the last pass that ended well ended (Unix seconds; 0 before the first).
    pub last_success: Family<SourceLabel, Gauge<f64, AtomicU64>>,
    /// Tasks by workflow and phase, after the last pass (branch todos apart).
    pub tasks: Family<PhaseLabels, Gauge>,
    /// Branch todos by workflow and phase, after the last pass.
    pub branch_todos: Family<PhaseLabels, Gauge>,
    /// Attempts by workflow, role and outcome.
    pub attempts: Family<AttemptLabels, Counter>,
    /// Attempts that were not a task's first: a later attempt, or a branch todo's.
    pub retries: Family<RoleLabels, Counter>,
    /// Failures by type.
    pub failures: Family<FailureLabels, Counter>,
    /// Model tokens used.
    pub tokens: Family<TokenLabels, Counter>,
    /// Model spend, in US dollars.
    pub cost: Family<UsageLabels, Counter<f64, AtomicU64>>,
    /// Model replies from the response cache.
    pub cache_hits: Family<UsageLabels, Counter>,
    /// What each workflow's tasks spent, from the refs.
    pub spend: Family<WorkflowLabels, Gauge<f64, AtomicU64>>,
    /// Each workflow's budget (`budget.usd_per_workflow`; 0 when none).
    pub budget: Family<WorkflowLabels, Gauge<f64, AtomicU64>>,
    /// Sandbox command durations.
    pub exec_duration: Family<ExecLabels, Histogram>,
    /// Pushes to a remote that failed.
    pub push_failures: Family<SourceLabel, Counter>,
    /// Forge requests (pull requests, issues, commit statuses) that failed.
    pub forge_failures: Family<SourceLabel, Counter>,
    /// Tasks ready to run but not yet started.
    pub queue_depth: Family<SourceLabel, Gauge>,
    /// Attempts a task's success took (its own and its branch todos'), by workflow and role.
    pub attempts_per_success: Family<RoleLabels, Histogram>,
    /// How deep the branch todos of a task's success went (0: it passed on its own).
    pub branch_depth_per_success: Family<RoleLabels, Histogram>,
    /// Seconds from the plan commit to every task of the workflow satisfied (0 until they are).
    pub time_to_satisfied: Family<WorkflowLabels, Gauge<f64, AtomicU64>>,
    /// Forge requests left in the rate limit's window, from the forge's last answer.
    pub forge_rate_limit_remaining: Family<SourceLabel, Gauge>,
    /// The forge's requests per rate limit window (0 until it answered with one).
    pub forge_rate_limit: Family<SourceLabel, Gauge>,
    /// The mean coverage of each workflow's current results that have one (0 when none has).
    pub coverage: Family<WorkflowLabels, Gauge<f64, AtomicU64>>,
    /// How many of each workflow's current results have a measured coverage.
    pub coverage_measured: Family<WorkflowLabels, Gauge>,
    /// Security findings in each workflow's current results, by severity.
    pub security_findings: Family<SeverityLabels, Gauge>,
}

impl Metrics {
    /// The metrics, registered in a new registry.
    pub fn new() -> (Metrics, Registry) {
        let seconds = || Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let m = Metrics {
            build_info: Family::default(),
            reconcile_duration: Family::new_with_constructor(seconds),
            passes: Family::default(),
            last_success: Family::default(),
            tasks: Family::default(),
            branch_todos: Family::default(),
            attempts: Family::default(),
            retries: Family::default(),
            failures: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            cache_hits: Family::default(),
            spend: Family::default(),
            budget: Family::default(),
            exec_duration: Family::new_with_constructor(seconds),
            push_failures: Family::default(),
            forge_failures: Family::default(),
            queue_depth: Family::default(),
            attempts_per_success: Family::new_with_constructor(|| Histogram::new([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0])),
            branch_depth_per_success: Family::new_with_constructor(|| Histogram::new([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])),
            time_to_satisfied: Family::default(),
            forge_rate_limit_remaining: Family::default(),
            forge_rate_limit: Family::default(),
            coverage: Family::default(),
            coverage_measured: Family::default(),
            security_findings: Family::default(),
        };
        m.build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        for kind in ["agent", "check", "test", "measure"] {
            let _ = m.exec_duration.get_or_create(&ExecLabels { kind: kind.into() });
        }
        let mut r = Registry::with_prefix("plancd");
        r.register("build_info", "The running plancd's version (always 1)", m.build_info.clone());
        r.register("reconcile_duration_seconds", "How long a reconcile pass takes", m.reconcile_duration.clone());
        r.register("passes", "Reconcile passes by result", m.passes.clone());
        r.register(
            "last_successful_pass_timestamp_seconds",
            "When the last pass that ended well ended (Unix time; 0 before the first)",
            m.last_success.clone(),
        );
        r.register("tasks", "Tasks by workflow and phase after the last pass (branch todos apart)", m.tasks.clone());
        r.register("branch_todos", "Branch todos by workflow and phase after the last pass", m.branch_todos.clone());
        r.register("attempts", "Attempts by workflow, role and how they ended", m.attempts.clone());
        r.register("attempt_retries", "Attempts that were not a task's first (a later attempt or a branch todo's)", m.retries.clone());
        r.register("failures", "Failed attempts by workflow and failure type", m.failures.clone());
        r.register("model_tokens", "Model tokens used, by workflow, role, model and direction", m.tokens.clone());
        r.register("model_cost_usd", "Model spend in US dollars, by workflow, role and model", m.cost.clone());
        r.register("model_cache_hits", "Model replies from the response cache, by workflow, role and model", m.cache_hits.clone());
        r.register("workflow_spend_usd", "What each workflow's tasks spent on models, from the refs", m.spend.clone());
        r.register("workflow_budget_usd", "Each workflow's budget (budget.usd_per_workflow; 0 when none)", m.budget.clone());
        r.register("sandbox_exec_duration_seconds", "How long sandboxed commands run, by kind", m.exec_duration.clone());
        r.register("git_push_failures", "Pushes to a remote that failed", m.push_failures.clone());
        r.register("forge_failures", "Forge requests (pull requests, issues, commit statuses) that failed", m.forge_failures.clone());
        r.register("queue_depth", "Tasks ready to run and not yet started", m.queue_depth.clone());
        r.register(
            "attempts_per_success",
            "Attempts a task's success took, its own and its branch todos', by workflow and the task's role",
            m.attempts_per_success.clone(),
        );
        r.register(
            "branch_depth_per_success",
            "How deep the branch todos behind a task's success went (0: it passed on its own), by workflow and role",
            m.branch_depth_per_success.clone(),
        );
        r.register(
            "workflow_time_to_satisfied_seconds",
            "Seconds from the plan commit the workflow's results were made from to its last task's success; 0 while a task is not satisfied",
            m.time_to_satisfied.clone(),
        );
        r.register(
            "forge_rate_limit_remaining",
            "Forge API requests left in the rate limit window, from the last answer's x-ratelimit-remaining (0 before any)",
            m.forge_rate_limit_remaining.clone(),
        );
        r.register(
            "forge_rate_limit",
            "Forge API requests the rate limit window allows, from the last answer's x-ratelimit-limit (0 before any)",
            m.forge_rate_limit.clone(),
        );
        r.register(
            "workflow_test_coverage_percent",
            "Mean line coverage of the acceptance tests over each workflow's current results that have one, as plancd measured it (0 when none has)",
            m.coverage.clone(),
        );
        r.register(
            "workflow_coverage_measured_results",
            "Current results of each workflow with a measured coverage",
            m.coverage_measured.clone(),
        );
        r.register(
            "workflow_security_findings",
            "Security findings (bandit) in each workflow's current results, by severity",
            m.security_findings.clone(),
        );
        (m, r)
    }

    /// Every series of a source, at 0, before its first pass.
    pub fn prepare_source(&self, source: &str) {
        let label = SourceLabel { source: source.into() };
        for outcome in ["ok", "error"] {
            let _ = self.passes.get_or_create(&OutcomeLabels { source: source.into(), outcome: outcome.into() });
        }
        let _ = self.reconcile_duration.get_or_create(&label);
        let _ = self.last_success.get_or_create(&label);
        let _ = self.push_failures.get_or_create(&label);
        let _ = self.forge_failures.get_or_create(&label);
        let _ = self.queue_depth.get_or_create(&label);
        let _ = self.forge_rate_limit_remaining.get_or_create(&label);
        let _ = self.forge_rate_limit.get_or_create(&label);
    }

    /// Every series of the workflows the plans at `snapshot` name, at 0 where not yet counted:
    /// attempts by role and outcome, tasks and branch todos by phase, model use by each role's
    /// configured model, spend and budget.
    pub fn prepare_workflows(&self, source: &str, snapshot: &Snapshot) {
        for plan in &snapshot.plans {
            let workflow = plan.list.todo_list_id.as_str();
            let wf = WorkflowLabels { source: source.into(), workflow: workflow.into() };
            let _ = self.spend.get_or_create(&wf);
            let _ = self.time_to_satisfied.get_or_create(&wf);
            let _ = self.coverage.get_or_create(&wf);
            let _ = self.coverage_measured.get_or_create(&wf);
            for severity in Severity::COUNTED {
                let labels = SeverityLabels { source: source.into(), workflow: workflow.into(), severity: severity.as_str().into() };
                let _ = self.security_findings.get_or_create(&labels);
            }
            self.budget.get_or_create(&wf).set(snapshot.config.budget.usd_per_workflow.unwrap_or(0.0));
            for phase in Phase::ALL {
                let labels = PhaseLabels { source: source.into(), workflow: workflow.into(), phase: phase.as_str().into() };
                let _ = self.tasks.get_or_create(&labels);
                let _ = self.branch_todos.get_or_create(&labels);
            }
            for failure_type in FailureType::ALL {
                let labels = FailureLabels { source: source.into(), workflow: workflow.into(), failure_type: failure_type.as_str().into() };
                let _ = self.failures.get_or_create(&labels);
            }
            for role in ROLES {
                let role_name = role.to_string();
                let labels = RoleLabels { source: source.into(), workflow: workflow.into(), role: role_name.clone() };
                let _ = self.retries.get_or_create(&labels);
                let _ = self.attempts_per_success.get_or_create(&labels);
                let _ = self.branch_depth_per_success.get_or_create(&labels);
                for outcome in OUTCOMES {
                    let labels = AttemptLabels {
                        source: source.into(),
                        workflow: workflow.into(),
                        role: role_name.clone(),
                        outcome: outcome.into(),
                    };
                    let _ = self.attempts.get_or_create(&labels);
                }
                let Some(model) = snapshot.config.roles.get(&role).and_then(|r| r.model.clone()) else { continue };
                let usage = UsageLabels { source: source.into(), workflow: workflow.into(), role: role_name.clone(), model: model.clone() };
                let _ = self.cost.get_or_create(&usage);
                let _ = self.cache_hits.get_or_create(&usage);
                for direction in ["input", "output"] {
                    let labels = TokenLabels {
                        source: source.into(),
                        workflow: workflow.into(),
                        role: role_name.clone(),
                        model: model.clone(),
                        direction: direction.into(),
                    };
                    let _ = self.tokens.get_or_create(&labels);
                }
            }
        }
    }

    /// Counts what a pass reports as it goes.
    pub fn observe(&self, source: &str, event: &Event) {
        match event {
            Event::Finished { key, role, end, .. } => {
                let labels = AttemptLabels {
                    source: source.into(),
                    workflow: key.workflow.clone(),
                    role: role.clone(),
                    outcome: end.label().into(),
                };
                self.attempts.get_or_create(&labels).inc();
                let failure_type = match end {
                    AttemptEnd::Failed { failure_type, .. } | AttemptEnd::Debugging { failure_type, .. } => Some(failure_type.as_str()),
                    AttemptEnd::Infrastructure(_) => Some("infrastructure"),
                    _ => None,
                };
                if let Some(t) = failure_type {
                    let labels = FailureLabels { source: source.into(), workflow: key.workflow.clone(), failure_type: t.into() };
                    self.failures.get_or_create(&labels).inc();
                }
            }
            Event::Started { key, role, retry, .. } => {
                let labels = RoleLabels { source: source.into(), workflow: key.workflow.clone(), role: role.clone() };
                let counter = self.retries.get_or_create(&labels);
                if *retry {
                    counter.inc();
                }
            }
            Event::Spent { key, role, model, cost, cache_hits } => {
                let usage = UsageLabels { source: source.into(), workflow: key.workflow.clone(), role: role.clone(), model: model.clone() };
                self.cost.get_or_create(&usage).inc_by(cost.usd);
                self.cache_hits.get_or_create(&usage).inc_by(u64::from(*cache_hits));
                for (direction, n) in [("input", cost.input_tokens), ("output", cost.output_tokens)] {
                    let labels = TokenLabels {
                        source: source.into(),
                        workflow: key.workflow.clone(),
                        role: role.clone(),
                        model: model.clone(),
                        direction: direction.into(),
                    };
                    self.tokens.get_or_create(&labels).inc_by(n);
                }
            }
            Event::UpstreamFailed { part } => {
                let label = SourceLabel { source: source.into() };
                match part {
                    UpstreamPart::Remote => self.push_failures.get_or_create(&label).inc(),
                    UpstreamPart::Forge => self.forge_failures.get_or_create(&label).inc(),
                };
            }
            Event::Exec { kind, duration } => {
                self.exec_duration.get_or_create(&ExecLabels { kind: (*kind).into() }).observe(duration.as_secs_f64())
            }
            Event::Satisfied { key, role, attempts, branch_depth } => {
                let labels = RoleLabels { source: source.into(), workflow: key.workflow.clone(), role: role.clone() };
                self.attempts_per_success.get_or_create(&labels).observe(f64::from(*attempts));
                self.branch_depth_per_success.get_or_create(&labels).observe(f64::from(*branch_depth));
            }
            Event::ForgeRateLimit(limit) => {
                let label = SourceLabel { source: source.into() };
                self.forge_rate_limit_remaining.get_or_create(&label).set(i64::try_from(limit.remaining).unwrap_or(i64::MAX));
                self.forge_rate_limit.get_or_create(&label).set(i64::try_from(limit.limit).unwrap_or(i64::MAX));
            }
            Event::Step { .. } => {}
            Event::Queue { ready } => {
                self.queue_depth.get_or_create(&SourceLabel { source: source.into() }).set(i64::try_from(*ready).unwrap_or(i64::MAX));
            }
        }
    }

    /// Tasks and branch todos by workflow and phase, and each workflow's spend, as `store`'s refs
    /// say after a pass. Every phase of every workflow seen is set, to 0 when none is in it.
    pub fn count_refs(&self, source: &str, store: &Store) {
        let Ok(tasks) = store.list() else { return };
        let mut counts: HashMap<(String, bool, Phase), i64> = HashMap::new();
        let mut spend: HashMap<String, f64> = HashMap::new();
        let mut quality: HashMap<String, QualityTally> = HashMap::new();
        for (key, state) in &tasks {
            *counts.entry((key.workflow.clone(), state.parent.is_some(), state.phase)).or_default() += 1;
            let status = store.status(key).ok().flatten().map(|(_, s)| s);
            let usd = status.as_ref().and_then(|s| s.cost).map_or(0.0, |c| c.usd);
            *spend.entry(key.workflow.clone()).or_default() += usd;
            let tally = quality.entry(key.workflow.clone()).or_default();
            if let Some(s) = status.filter(|s| s.phase == Phase::Succeeded && s.branch.is_none()) {
                tally.add(s.tests.and_then(|t| t.quality).as_deref());
            }
        }
        let mut workflows: Vec<String> = tasks.keys().map(|k| k.workflow.clone()).collect();
        workflows.dedup();
        for workflow in &workflows {
            for phase in Phase::ALL {
                let labels = PhaseLabels { source: source.into(), workflow: workflow.clone(), phase: phase.as_str().into() };
                let count = |branch: bool| counts.get(&(workflow.clone(), branch, phase)).copied().unwrap_or(0);
                self.tasks.get_or_create(&labels).set(count(false));
                self.branch_todos.get_or_create(&labels).set(count(true));
            }
            let labels = WorkflowLabels { source: source.into(), workflow: workflow.clone() };
            self.spend.get_or_create(&labels).set(spend.get(workflow).copied().unwrap_or(0.0));
            let tally = quality.get(workflow).cloned().unwrap_or_default();
            self.coverage.get_or_create(&labels).set(tally.mean_coverage());
            self.coverage_measured.get_or_create(&labels).set(tally.measured);
            for severity in Severity::COUNTED {
                let labels = SeverityLabels { source: source.into(), workflow: workflow.clone(), severity: severity.as_str().into() };
                self.security_findings.get_or_create(&labels).set(i64::from(tally.findings.of(severity)));
            }
        }
    }

    /// Each workflow's time from plan commit to satisfied, as `store`'s records of the tasks the
    /// plans at `snapshot` name say: 0 for a workflow with a task not satisfied.
    pub fn count_satisfied(&self, source: &str, snapshot: &Snapshot, store: &Store) {
        // A repository handle only for the moment: the store's are shared with running passes.
        let commit_time = |id: &str| Some(store.repo().find_commit(git2::Oid::from_str(id).ok()?).ok()?.time().seconds());
        for plan in &snapshot.plans {
            let workflow = &plan.list.todo_list_id;
            let tasks = plan.list.tasks.iter().map(|t| {
                let key = crate::state::TaskKey::new(workflow, &t.id);
                let (_, s) = store.status(&key).ok().flatten()?;
                let current = s.phase == Phase::Succeeded && s.spec_hash.is_some() && s.spec_hash.as_ref() == snapshot.hashes.get(&key);
                current.then_some(())?;
                Some((commit_time(s.plan_commit.as_deref()?)?, s.finished_at.unwrap_or(s.updated_at).as_second()))
            });
            let seconds = time_to_satisfied(tasks).unwrap_or(0);
            let labels = WorkflowLabels { source: source.into(), workflow: workflow.clone() };
            self.time_to_satisfied.get_or_create(&labels).set(seconds as f64);
        }
    }

    /// Notes a pass that ended well, now.
    pub fn pass_succeeded(&self, source: &str) {
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        self.last_success.get_or_create(&SourceLabel { source: source.into() }).set(now);
    }
}

/// A workflow's results' quality, summed: the seed's `avg(coverage_by_workflow)` and
/// `sum(bandit_findings)`.
#[derive(Debug, Clone, Default, PartialEq)]
struct QualityTally {
    coverage_sum: f64,
    measured: i64,
    findings: SeverityCounts,
}

impl QualityTally {
    fn add(&mut self, quality: Option<&Quality>) {
        let Some(q) = quality else { return };
        if let Some(c) = &q.coverage {
            self.coverage_sum += c.percent;
            self.measured += 1;
        }
        if let Some(s) = &q.security {
            self.findings.high += s.counts.high;
            self.findings.medium += s.counts.medium;
            self.findings.low += s.counts.low;
        }
    }

    fn mean_coverage(&self) -> f64 {
        if self.measured == 0 { 0.0 } else { self.coverage_sum / self.measured as f64 }
    }
}

/// Seconds from the newest plan commit a workflow's results were made from to its last task's
/// success, given each task's `(plan commit time, success time)` in Unix seconds or `None` for a
/// task not satisfied: `None` unless every task is (and there is one).
pub fn time_to_satisfied(tasks: impl IntoIterator<Item = Option<(i64, i64)>>) -> Option<i64> {
    let mut newest: Option<(i64, i64)> = None;
    for (committed, succeeded) in tasks.into_iter().collect::<Option<Vec<_>>>()? {
        newest = Some(newest.map_or((committed, succeeded), |(c, s)| (c.max(committed), s.max(succeeded))));
    }
    newest.map(|(committed, succeeded)| (succeeded - committed).max(0))
}

/// The registry in Prometheus's text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// How logs are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per event for people, with its span's fields (workflow, task, attempt, step).
    Human,
    /// One JSON object per line for a controller: the event's fields at the top level, its
    /// spans' fields under `span` and `spans`.
    Json,
}

/// The filter directive when `RUST_LOG` does not say: a controller logs what it does (info),
/// a command only what went wrong (warnings: its own output says the rest); each `-v` shows
/// more. `-v` wins over `RUST_LOG`, which wins over the default.
pub fn log_directive(format: LogFormat, verbosity: u8, rust_log: Option<&str>) -> String {
    let base = match format {
        LogFormat::Json => 2,
        LogFormat::Human => 1,
    };
    match (verbosity, rust_log) {
        (0, Some(from_env)) if !from_env.trim().is_empty() => from_env.to_owned(),
        _ => ["error", "warn", "info", "debug", "trace"][(base + usize::from(verbosity)).min(4)].to_owned(),
    }
}

/// Installs the process's log subscriber on stderr (once; later calls do nothing), and the
/// trace exporter when the environment names a collector ([`otlp`]).
pub fn init_logs(format: LogFormat, verbosity: u8) -> otlp::TraceExport {
    init_logs_to(format, verbosity, std::io::stderr)
}

/// Installs the process's log subscriber writing to `writer` (a terminal's progress display
/// passes one that draws around its bars), once, and the trace exporter when the environment
/// names a collector: its spans are plancd's at info whatever the log level. The returned
/// exporter must be shut down before the process exits, or the last spans are lost. Call it
/// before any async runtime starts.
pub fn init_logs_to<W>(format: LogFormat, verbosity: u8, writer: W) -> otlp::TraceExport
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let rust_log = std::env::var("RUST_LOG").ok();
    let directive = log_directive(format, verbosity, rust_log.as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&directive).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = log_layer(format, writer);
    let (traces, spans, problem) = match otlp::TraceExport::from_env(&crate::config::Env::process()) {
        Ok((traces, spans)) => (traces, spans, None),
        Err(e) => (otlp::TraceExport::none(), None, Some(e)),
    };
    if tracing_subscriber::registry().with(logs.with_filter(filter)).with(spans).try_init().is_err() {
        // Another subscriber was installed first (a test's): its spans are not ours to export.
        traces.shutdown();
        return otlp::TraceExport::none();
    }
    if let Some(e) = problem {
        tracing::warn!(error = %e, "traces are not exported");
    }
    if let Some(endpoint) = traces.endpoint() {
        tracing::debug!(endpoint, "sending traces to the collector");
    }
    traces
}

/// The layer that writes log lines to `writer` in `format`; `RUST_LOG`'s filter is its alone,
/// not the exported spans'.
fn log_layer<W>(format: LogFormat, writer: W) -> Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use std::io::IsTerminal;
    use tracing_subscriber::Layer as _;
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Json => layer.json().flatten_event(true).with_current_span(true).with_span_list(true).boxed(),
        LogFormat::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            layer.with_ansi(color).with_target(false).compact().boxed()
        }
    }
}

/// A shared handle, for the HTTP server and the passes.
pub type SharedRegistry = Arc<Registry>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflows_quality_is_its_results_mean_coverage_and_summed_findings() {
        use crate::state::quality::*;
        let result = |percent: Option<f64>, high: u32, low: u32| measured(percent, SeverityCounts { high, medium: 0, low });
        let mut tally = QualityTally::default();
        assert_eq!(tally.mean_coverage(), 0.0, "none measured: 0, not NaN");
        tally.add(Some(&result(Some(50.0), 1, 2)));
        tally.add(Some(&result(Some(100.0), 0, 1)));
        tally.add(Some(&result(None, 1, 0)));
        tally.add(None);
        assert_eq!((tally.mean_coverage(), tally.measured), (75.0, 2), "results without coverage do not pull the mean down");
        assert_eq!(tally.findings, SeverityCounts { high: 2, medium: 0, low: 3 });
    }

    #[test]
    fn a_workflow_is_timed_from_its_newest_plan_commit_to_its_last_success_once_all_are_satisfied() {
        type Times = Vec<Option<(i64, i64)>>;
        let rows: [(&str, Times, Option<i64>); 5] = [
            ("one task", vec![Some((100, 160))], Some(60)),
            ("a re-planned task: from the newest commit to the last success", vec![Some((100, 160)), Some((200, 290))], Some(90)),
            ("a task not satisfied", vec![Some((100, 160)), None], None),
            ("no tasks", vec![], None),
            ("a clock that went back counts nothing", vec![Some((300, 290))], Some(0)),
        ];
        for (name, tasks, want) in rows {
            assert_eq!(time_to_satisfied(tasks), want, "{name}");
        }
    }

    #[test]
    fn the_log_level_follows_mode_flags_and_rust_log() {
        let rows: [(&str, LogFormat, u8, Option<&str>, &str); 8] = [
            ("a command shows warnings", LogFormat::Human, 0, None, "warn"),
            ("a controller shows what it does", LogFormat::Json, 0, None, "info"),
            ("-v shows info", LogFormat::Human, 1, None, "info"),
            ("-vv shows debug", LogFormat::Human, 2, None, "debug"),
            ("many -v stop at trace", LogFormat::Json, 9, None, "trace"),
            ("RUST_LOG without -v", LogFormat::Human, 0, Some("plancd=debug"), "plancd=debug"),
            ("an empty RUST_LOG is the default", LogFormat::Human, 0, Some(" "), "warn"),
            ("-v wins over RUST_LOG", LogFormat::Human, 1, Some("error"), "info"),
        ];
        for (name, format, v, env, want) in rows {
            assert_eq!(log_directive(format, v, env), want, "{name}");
        }
    }
}
