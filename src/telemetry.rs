//! What a running controller tells the outside: Prometheus metrics (text format) and logs
//! (tracing; JSON in controller mode, filtered by `RUST_LOG`).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::reconcile::{AttemptEnd, Event};

/// A repository source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// The source's name.
    pub source: String,
}

/// Tasks by phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The source's name.
    pub source: String,
    /// The phase.
    pub phase: String,
}

/// Attempts by how they ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The source's name.
    pub source: String,
    /// How the attempt ended: succeeded, failed, debugging, escalated, ...
    pub outcome: String,
}

/// Failures by type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The source's name.
    pub source: String,
    /// The triage's failure type.
    pub failure_type: String,
}

/// Model use by role and model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    /// The role.
    pub role: String,
    /// The model.
    pub model: String,
}

/// Sandbox commands by kind (agent, check, test).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecLabels {
    /// agent, check or test.
    pub kind: String,
}

/// Every metric plancd exports.
#[derive(Clone)]
pub struct Metrics {
    /// How long passes take.
    pub reconcile_duration: Family<SourceLabel, Histogram>,
    /// Passes by result.
    pub passes: Family<OutcomeLabels, Counter>,
    /// Tasks by phase, after the last pass.
    pub tasks: Family<PhaseLabels, Gauge>,
    /// Attempts by outcome.
    pub attempts: Family<OutcomeLabels, Counter>,
    /// Failures by type.
    pub failures: Family<FailureLabels, Counter>,
    /// Model tokens used.
    pub tokens: Family<UsageLabels, Counter>,
    /// Model spend, in US dollars.
    pub cost: Family<UsageLabels, Counter<f64, AtomicU64>>,
    /// Sandbox command durations.
    pub exec_duration: Family<ExecLabels, Histogram>,
    /// Pushes to a remote that failed.
    pub push_failures: Family<SourceLabel, Counter>,
    /// Tasks ready to run but not yet started.
    pub queue_depth: Family<SourceLabel, Gauge>,
}

impl Metrics {
    /// The metrics, registered in a new registry.
    pub fn new() -> (Metrics, Registry) {
        let seconds = || Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let m = Metrics {
            reconcile_duration: Family::new_with_constructor(seconds),
            passes: Family::default(),
            tasks: Family::default(),
            attempts: Family::default(),
            failures: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            exec_duration: Family::new_with_constructor(seconds),
            push_failures: Family::default(),
            queue_depth: Family::default(),
        };
        let mut r = Registry::with_prefix("plancd");
        r.register("reconcile_duration_seconds", "How long a reconcile pass takes", m.reconcile_duration.clone());
        r.register("passes", "Reconcile passes by result", m.passes.clone());
        r.register("tasks", "Tasks by phase after the last pass", m.tasks.clone());
        r.register("attempts", "Attempts by how they ended", m.attempts.clone());
        r.register("failures", "Failed attempts by failure type", m.failures.clone());
        r.register("model_tokens", "Model tokens used, by role and model", m.tokens.clone());
        r.register("model_cost_usd", "Model spend in US dollars, by role and model", m.cost.clone());
        r.register("sandbox_exec_duration_seconds", "How long sandboxed commands run, by kind", m.exec_duration.clone());
        r.register("git_push_failures", "Pushes to a remote that failed", m.push_failures.clone());
        r.register("queue_depth", "Tasks ready to run and not yet started", m.queue_depth.clone());
        (m, r)
    }

    /// Counts what a pass reports as it goes.
    pub fn observe(&self, source: &str, event: &Event) {
        match event {
            Event::Finished { end, .. } => {
                let outcome = outcome(end);
                self.attempts.get_or_create(&OutcomeLabels { source: source.into(), outcome: outcome.into() }).inc();
                let failure_type = match end {
                    AttemptEnd::Failed { failure_type, .. } | AttemptEnd::Debugging { failure_type, .. } => Some(failure_type.as_str()),
                    AttemptEnd::Infrastructure(_) => Some("infrastructure"),
                    _ => None,
                };
                if let Some(t) = failure_type {
                    self.failures.get_or_create(&FailureLabels { source: source.into(), failure_type: t.into() }).inc();
                }
            }
            Event::Exec { kind, duration } => {
                self.exec_duration.get_or_create(&ExecLabels { kind: (*kind).into() }).observe(duration.as_secs_f64())
            }
            Event::Queue { ready } => {
                self.queue_depth.get_or_create(&SourceLabel { source: source.into() }).set(i64::try_from(*ready).unwrap_or(i64::MAX));
            }
            Event::Started { .. } => {}
        }
    }
}

fn outcome(end: &AttemptEnd) -> &'static str {
    match end {
        AttemptEnd::Succeeded { .. } => "succeeded",
        AttemptEnd::Adopted { .. } => "adopted",
        AttemptEnd::Debugging { .. } => "debugging",
        AttemptEnd::Failed { .. } => "failed",
        AttemptEnd::Escalated { .. } => "escalated",
        AttemptEnd::LostClaim => "lost_claim",
        AttemptEnd::Cancelled => "cancelled",
        AttemptEnd::Infrastructure(_) => "infrastructure",
    }
}

/// The registry in Prometheus's text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// Logs for a controller: JSON lines on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// A shared handle, for the HTTP server and the passes.
pub type SharedRegistry = Arc<Registry>;
