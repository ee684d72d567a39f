//! The task status record (`status.json`, `schemas/status.schema.json`) and the short form of
//! it that commit trailers carry for listings.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::spec::{Role, SpecHash};
use crate::state::{FailureType, Reason};

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Known, not yet run.
    Pending,
    /// Taken by a holder, not yet running.
    Claimed,
    /// An attempt is under way; `holder` and `lease_expires_at` say by whom and until when.
    Running,
    /// Accepted: the result is published.
    Succeeded,
    /// The last attempt failed.
    Failed,
    /// Waits for `plancd approve`.
    NeedsApproval,
    /// Approved for the spec hash in `approved_spec_hash`.
    Approved,
    /// Handed to a person.
    Escalated,
    /// Its workflow is suspended.
    Suspended,
    /// No longer in any plan.
    Orphaned,
    /// Stopped at a spending limit.
    BudgetExceeded,
    /// A holder gave its claim back unfinished.
    Released,
    /// Its acceptance tests failed and a branch todo is working on it.
    Debugging,
}

impl Phase {
    /// Every phase, for tables and metrics.
    pub const ALL: [Phase; 13] = [
        Phase::Pending,
        Phase::Claimed,
        Phase::Running,
        Phase::Succeeded,
        Phase::Failed,
        Phase::NeedsApproval,
        Phase::Approved,
        Phase::Escalated,
        Phase::Suspended,
        Phase::Orphaned,
        Phase::BudgetExceeded,
        Phase::Released,
        Phase::Debugging,
    ];

    /// The CamelCase name used in status, trailers and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Claimed => "Claimed",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::NeedsApproval => "NeedsApproval",
            Phase::Approved => "Approved",
            Phase::Escalated => "Escalated",
            Phase::Suspended => "Suspended",
            Phase::Orphaned => "Orphaned",
            Phase::BudgetExceeded => "BudgetExceeded",
            Phase::Released => "Released",
            Phase::Debugging => "Debugging",
        }
    }

    /// Parses the CamelCase name.
    pub fn parse(s: &str) -> Option<Phase> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// Whether a holder's lease is meaningful in this phase.
    pub fn is_held(self) -> bool {
        matches!(self, Phase::Claimed | Phase::Running)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition, Kubernetes style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// E.g. `Ready`, `TestsPassed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// For people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
}

/// A published result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRef {
    /// The result commit.
    pub commit: String,
    /// The result branch, e.g. `ai/generated/wf/task`.
    pub branch: String,
    /// The tag, e.g. `ai/wf/task/1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The files the task changed, added or removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The pull request's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
    /// The attempt whose acceptance tests accepted this result (the task's own, or a branch
    /// todo's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_in: Option<Acceptance>,
}

/// Where a result's acceptance tests ran and passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptance {
    /// The task or branch todo whose attempt it was.
    pub task_id: String,
    /// The attempt.
    pub attempt: u32,
}

/// A candidate result whose acceptance tests passed in this record's attempt, being published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The candidate result commit.
    pub commit: String,
    /// The attempt that ran the tests.
    pub attempt: u32,
    /// The files the work changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// A branch todo: a temporary child task that debugs a task whose acceptance tests failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchInfo {
    /// `<task>_branch_NN`.
    pub id: String,
    /// The task being debugged.
    pub parent_id: String,
    /// The parent's attempt whose failure opened the branch (or that the branch continues).
    #[serde(default)]
    pub parent_attempt: u32,
    /// Why, in the seed's words (`implementation_bug`, `spec_mismatch`, ...).
    pub branch_reason: String,
    /// The triage's failure type.
    pub failure_type: FailureType,
    /// 1 for the first branch, one more for each branch opened on a branch's work.
    pub depth: u32,
    /// The role that plays the branch.
    pub role: String,
    /// Diagnostics and hints for that role.
    #[serde(default)]
    pub debug_instructions: String,
    /// Attempts before the parent is escalated.
    pub max_debug_attempts: u32,
    /// The failing work the branch starts from: a tree kept in the task refs.
    pub base_tree: String,
    /// For missing dependencies: what is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// A reviewer's request for another attempt, with what to do differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Who asked (a forge login).
    pub by: String,
    /// What they asked for: handed to the agent as added instructions.
    pub instructions: String,
    /// Where they asked (a comment's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Acceptance test counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TestSummary {
    /// Passed tests (or commands, without a report).
    pub passed: u32,
    /// Failed tests.
    pub failed: u32,
    /// Errored tests.
    #[serde(default)]
    pub errors: u32,
    /// Skipped tests.
    #[serde(default)]
    pub skipped: u32,
    /// Time spent in tests.
    #[serde(default)]
    pub duration_seconds: f64,
    /// Pinned test files the agent changed (they were restored before the tests ran).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned_files_changed: Vec<String>,
    /// Coverage and security findings, measured by plancd on the work the tests passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Box<super::Quality>>,
}

/// Tokens and dollars spent on model calls.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Tokens sent to models.
    #[serde(default)]
    pub input_tokens: u64,
    /// Tokens models produced.
    #[serde(default)]
    pub output_tokens: u64,
    /// Dollars, by the configured prices.
    #[serde(default)]
    pub usd: f64,
}

impl Cost {
    /// Input and output tokens together.
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Whether nothing was spent.
    pub fn is_zero(&self) -> bool {
        self.tokens() == 0 && self.usd == 0.0
    }

    /// The dollars to four places; a spend too small for them says so rather than `$0.0000`.
    pub fn dollars(&self) -> String {
        if self.usd > 0.0 && self.usd < 0.00005 { "<$0.0001".to_owned() } else { format!("${:.4}", self.usd) }
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;

    fn add(self, other: Cost) -> Cost {
        Cost {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            usd: self.usd + other.usd,
        }
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        *self = *self + other;
    }
}

/// The whole record at the tip of `refs/ai/tasks/<workflow>/<task>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// Always `plancd/v1`.
    pub api_version: String,
    /// The workflow.
    pub workflow_id: String,
    /// The task.
    pub task_id: String,
    /// Where it stands.
    pub phase: Phase,
    /// The spec hash this record is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<SpecHash>,
    /// The latest attempt's number (0 before the first).
    pub attempt: u32,
    /// The attempt number at the last `plancd retry`: attempts after it count against
    /// `max_attempts`.
    #[serde(default)]
    pub attempts_base: u32,
    /// How many results were accepted so far (the last tag's number).
    #[serde(default)]
    pub accepted: u32,
    /// Who holds the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
    /// The spec hash a person approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_spec_hash: Option<SpecHash>,
    /// When this record was written.
    pub updated_at: Timestamp,
    /// When the attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// The watched commit the attempt worked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_commit: Option<String>,
    /// The role that played the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// For people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// CamelCase reason (Flux style): why the phase is what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The failure's type, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The dependency results the attempt was built on (task id -> result commit): a new result
    /// of any of them makes this record stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<BTreeMap<String, String>>,
    /// While an attempt publishes: the candidate its tests accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verification>,
    /// The published result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
    /// Test counts of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestSummary>,
    /// Branch todos opened for this task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branch_todos: Vec<String>,
    /// While Debugging: the branch todo at work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_branch: Option<BranchInfo>,
    /// On a branch todo: what it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchInfo>,
    /// A reviewer's request that the next attempts answer (until one is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// What model calls cost over all the task's attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// The environment the last attempt ran in (or failed to build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentUse>,
    /// The network the last attempt's agent had through a role's `network.allow`: the hosts it
    /// reached and the requests refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<super::NetworkUse>,
    /// The person behind this record (an approval, a retry): `--as`, git's `user.email`, or the
    /// forge login. `None` on the records plancd writes on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Anything else a later version wrote; kept so that old readers do not drop it.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl TaskStatus {
    /// A fresh record.
    pub fn new(workflow: &str, task: &str, phase: Phase, now: Timestamp) -> TaskStatus {
        TaskStatus {
            api_version: "plancd/v1".into(),
            workflow_id: workflow.into(),
            task_id: task.into(),
            phase,
            spec_hash: None,
            attempt: 0,
            attempts_base: 0,
            accepted: 0,
            holder: None,
            lease_expires_at: None,
            approved_spec_hash: None,
            updated_at: now,
            started_at: None,
            finished_at: None,
            plan_commit: None,
            role: None,
            message: String::new(),
            reason: None,
            failure_type: None,
            conditions: Vec::new(),
            inputs: None,
            verified: None,
            result: None,
            tests: None,
            branch_todos: Vec::new(),
            open_branch: None,
            branch: None,
            review: None,
            cost: None,
            environment: None,
            network: None,
            by: None,
            extra: BTreeMap::new(),
        }
    }

    /// The next record in the chain: what carries over (counters, approval, the last result, a
    /// review not yet answered) kept, what belongs to one state (holder, message, reason,
    /// failure) cleared.
    pub fn next(&self, phase: Phase, now: Timestamp) -> TaskStatus {
        TaskStatus {
            review: if phase == Phase::Succeeded { None } else { self.review.clone() },
            phase,
            holder: None,
            lease_expires_at: None,
            updated_at: now,
            message: String::new(),
            reason: None,
            failure_type: None,
            conditions: Vec::new(),
            open_branch: None,
            verified: None,
            by: None,
            ..self.clone()
        }
    }

    /// Attempts spent since the last retry (or spec change).
    pub fn attempts_used(&self) -> u32 {
        self.attempt.saturating_sub(self.attempts_base)
    }

    /// Adds what an attempt spent to the task's total (nothing changes when it spent nothing).
    pub fn add_cost(&mut self, spent: Cost) {
        if !spent.is_zero() {
            self.cost = Some(self.cost.unwrap_or_default() + spent);
        }
    }

    /// The commit subject: a one-line status for `git for-each-ref`.
    pub fn subject(&self) -> String {
        let mut s = format!("{} {}/{} attempt {}", self.phase, self.workflow_id, self.task_id, self.attempt);
        if let Some(h) = &self.spec_hash {
            s.push_str(&format!(" spec {}", h.short()));
        }
        if let Some(reason) = self.reason.as_ref().filter(|r| r.as_str() != self.phase.as_str()) {
            s.push_str(&format!(" ({reason})"));
        }
        s
    }

    /// The trailers a listing needs, in a stable order.
    pub fn trailers(&self) -> Vec<(&'static str, String)> {
        let mut t = vec![("Plancd-Phase", self.phase.to_string()), ("Plancd-Attempt", self.attempt.to_string())];
        if let Some(h) = &self.spec_hash {
            t.push(("Plancd-Spec-Hash", h.to_string()));
        }
        if self.attempts_base > 0 {
            t.push(("Plancd-Attempts-Base", self.attempts_base.to_string()));
        }
        if self.accepted > 0 {
            t.push(("Plancd-Accepted", self.accepted.to_string()));
        }
        if let Some(h) = &self.holder {
            t.push(("Plancd-Holder", h.clone()));
        }
        if let Some(e) = &self.lease_expires_at {
            t.push(("Plancd-Lease-Expires", e.to_string()));
        }
        if let Some(h) = &self.approved_spec_hash {
            t.push(("Plancd-Approved-Spec-Hash", h.to_string()));
        }
        if let Some(r) = &self.result {
            t.push(("Plancd-Result", r.commit.clone()));
        }
        if let Some(r) = &self.reason {
            t.push(("Plancd-Reason", r.to_string()));
        }

        if let Some(b) = &self.open_branch {
            t.push(("Plancd-Branch-Todo", b.id.clone()));
            t.push(("Plancd-Branch-Role", b.role.clone()));
        }
        if let Some(by) = &self.by {
            t.push(("Plancd-By", by.clone()));
        }
        if let Some(b) = &self.branch {
            t.push(("Plancd-Parent", b.parent_id.clone()));
            t.push(("Plancd-Role", b.role.clone()));
            t.push(("Plancd-Branch-Depth", b.depth.to_string()));
            t.push(("Plancd-Max-Attempts", b.max_debug_attempts.to_string()));
        }
        if let Some(inputs) = &self.inputs {
            t.push(("Plancd-Inputs", format_inputs(inputs)));
        }
        if let Some(e) = &self.environment {
            t.push(("Plancd-Environment", e.key.clone()));
        }
        t
    }
}

/// Which environment an attempt used, and how it got it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentUse {
    /// The environment's key (see `reconcile::environment::key`).
    pub key: String,
    /// Built by this attempt, reused, or failed to build.
    pub how: EnvironmentHow,
    /// How long getting it took.
    pub seconds: f64,
}

/// How an attempt got its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentHow {
    /// Its setup ran for this attempt.
    Built,
    /// An environment with the same key was there (or another attempt built it meanwhile).
    Reused,
    /// Its setup failed, or what the tests need was missing from it.
    Failed,
}

impl EnvironmentHow {
    /// The word in status and pull requests.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentHow::Built => "built",
            EnvironmentHow::Reused => "reused",
            EnvironmentHow::Failed => "failed",
        }
    }
}

/// What a listing knows of a task: parsed from the tip commit's trailers, without reading
/// `status.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// The tip commit of the task's ref.
    pub tip: git2::Oid,
    /// Its phase.
    pub phase: Phase,
    /// The spec hash it concerns.
    pub spec_hash: Option<SpecHash>,
    /// The latest attempt.
    pub attempt: u32,
    /// See [`TaskStatus::attempts_base`].
    pub attempts_base: u32,
    /// Results accepted so far.
    pub accepted: u32,
    /// The claim's holder.
    pub holder: Option<String>,
    /// The claim's expiry.
    pub lease_expires_at: Option<Timestamp>,
    /// An approval.
    pub approved_spec_hash: Option<SpecHash>,
    /// The published result commit.
    pub result: Option<git2::Oid>,
    /// The reason, when there is one.
    pub reason: Option<Reason>,
    /// The dependency results the record was built on (`None` for records older than this field).
    pub inputs: Option<BTreeMap<String, String>>,
    /// While Debugging: the branch todo at work.
    pub branch_todo: Option<String>,
    /// While Debugging: the role that works on that branch todo.
    pub branch_todo_role: Option<Role>,
    /// On a branch todo: the role that works on it.
    pub role: Option<Role>,
    /// On a branch todo: its parent.
    pub parent: Option<String>,
    /// On a branch todo: attempts before the parent is escalated.
    pub max_attempts: Option<u32>,
    /// The key of the environment the last attempt used.
    pub environment: Option<String>,
    /// The commit subject.
    pub subject: String,
}

impl TaskState {
    /// Reads a state from a commit message; `None` when it is not a plancd status commit.
    pub fn from_message(tip: git2::Oid, message: &str) -> Option<TaskState> {
        let trailers = parse_trailers(message);
        let get = |k: &str| trailers.get(k).map(String::as_str);
        Some(TaskState {
            tip,
            phase: Phase::parse(get("Plancd-Phase")?)?,
            spec_hash: get("Plancd-Spec-Hash").and_then(SpecHash::parse),
            attempt: get("Plancd-Attempt")?.parse().ok()?,
            attempts_base: get("Plancd-Attempts-Base").and_then(|v| v.parse().ok()).unwrap_or(0),
            accepted: get("Plancd-Accepted").and_then(|v| v.parse().ok()).unwrap_or(0),
            holder: get("Plancd-Holder").map(str::to_owned),
            lease_expires_at: get("Plancd-Lease-Expires").and_then(|v| v.parse().ok()),
            approved_spec_hash: get("Plancd-Approved-Spec-Hash").and_then(SpecHash::parse),
            result: get("Plancd-Result").and_then(|v| git2::Oid::from_str(v).ok()),
            reason: get("Plancd-Reason").map(Reason::parse),
            inputs: get("Plancd-Inputs").map(parse_inputs),
            branch_todo: get("Plancd-Branch-Todo").map(str::to_owned),
            branch_todo_role: get("Plancd-Branch-Role").and_then(Role::parse),
            role: get("Plancd-Role").and_then(Role::parse),
            parent: get("Plancd-Parent").map(str::to_owned),
            max_attempts: get("Plancd-Max-Attempts").and_then(|v| v.parse().ok()),
            environment: get("Plancd-Environment").map(str::to_owned),
            subject: message.lines().next().unwrap_or_default().to_owned(),
        })
    }

    /// Whether the task is done for `hash`, built on the dependency results `inputs`.
    pub fn satisfied(&self, hash: &SpecHash, inputs: &BTreeMap<String, String>) -> bool {
        self.phase == Phase::Succeeded && self.spec_hash.as_ref() == Some(hash) && self.inputs.as_ref().is_none_or(|r| r == inputs)
    }

    /// The first dependency whose result differs from the one this record was built on.
    pub fn changed_input<'a>(&self, inputs: &'a BTreeMap<String, String>) -> Option<&'a str> {
        let recorded = self.inputs.as_ref()?;
        inputs.iter().find(|(id, commit)| recorded.get(*id) != Some(*commit)).map(|(id, _)| id.as_str())
    }

    /// Attempts spent since the last retry.
    pub fn attempts_used(&self) -> u32 {
        self.attempt.saturating_sub(self.attempts_base)
    }

    /// The key of the environment whose failure this record reports, if it reports one.
    pub fn environment_failure(&self) -> Option<&str> {
        let reported = matches!(self.phase, Phase::Failed | Phase::Released) && self.reason.as_ref().is_some_and(Reason::is_environment);
        self.environment.as_deref().filter(|_| reported)
    }
}

/// `a=<commit> b=<commit>`: the inputs as one trailer value, in id order (`-` for none).
fn format_inputs(inputs: &BTreeMap<String, String>) -> String {
    if inputs.is_empty() {
        return "-".into();
    }
    inputs.iter().map(|(id, c)| format!("{id}={c}")).collect::<Vec<_>>().join(" ")
}

fn parse_inputs(value: &str) -> BTreeMap<String, String> {
    value.split_whitespace().filter_map(|p| p.split_once('=')).map(|(id, c)| (id.to_owned(), c.to_owned())).collect()
}

/// `Key: value` lines of the last paragraph of a commit message.
pub fn parse_trailers(message: &str) -> BTreeMap<String, String> {
    let last = message.trim_end().rsplit("\n\n").next().unwrap_or_default();
    last.lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// A commit message: subject, optional body, trailers.
pub fn commit_message(subject: &str, body: &str, trailers: &[(&str, String)]) -> String {
    let mut m = format!("{subject}\n\n");
    if !body.trim().is_empty() {
        m.push_str(body.trim_end());
        m.push_str("\n\n");
    }
    for (k, v) in trailers {
        // A value with a newline would end the trailer block early.
        m.push_str(&format!("{k}: {}\n", v.replace('\n', " ")));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Schema;

    fn now() -> Timestamp {
        "2026-01-02T03:04:05Z".parse().unwrap()
    }

    #[test]
    fn records_match_the_published_schema() {
        let mut s = TaskStatus::new("wf", "t1", Phase::Succeeded, now());
        s.spec_hash = SpecHash::parse(&"a".repeat(64));
        s.attempt = 2;
        s.result = Some(ResultRef {
            commit: "b".repeat(40),
            branch: "ai/generated/wf/t1".into(),
            tag: Some("ai/wf/t1/1".into()),
            files: vec!["x.py".into()],
            pull_request: None,
            accepted_in: None,
        });
        use crate::state::quality::*;
        let quality = Quality {
            coverage: Some(Coverage {
                tool: CoverageTool::CoveragePy,
                percent: 55.5,
                covered_lines: 5,
                statements: 9,
                files: 1,
                commands_measured: 1,
                commands: 1,
            }),
            security: Some(SecurityScan {
                tool: SecurityTool::Bandit,
                counts: SeverityCounts { high: 1, medium: 0, low: 0 },
                lines_scanned: 9,
                findings: vec![Finding {
                    rule: "B602".into(),
                    rule_name: "subprocess_popen_with_shell_equals_true".into(),
                    severity: Severity::High,
                    confidence: Severity::High,
                    path: "x.py".into(),
                    line: 9,
                    text: "shell=True".into(),
                }],
            }),
            unmeasured: vec![Unmeasured { figure: Figure::Coverage, reason: UnmeasuredReason::ToolMissing, detail: "x".into() }],
        };
        s.tests = Some(TestSummary { passed: 3, quality: Some(Box::new(quality)), ..Default::default() });
        s.add_cost(Cost { input_tokens: 1200, output_tokens: 300, usd: 0.0042 });
        s.conditions.push(Condition {
            kind: "Ready".into(),
            status: "True".into(),
            reason: "Succeeded".into(),
            message: String::new(),
            last_transition_time: Some(now()),
        });
        let value = serde_json::to_value(&s).unwrap();
        assert!(Schema::Status.is_valid(&value), "{value:#}");
        let back: TaskStatus = serde_json::from_value(value).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn trailers_round_trip_through_a_commit_message() {
        let mut s = TaskStatus::new("wf", "t1", Phase::Running, now());
        s.spec_hash = SpecHash::parse(&"c".repeat(64));
        s.attempt = 3;
        s.attempts_base = 1;
        s.holder = Some("host:42:7:abc".into());
        s.lease_expires_at = Some(now());
        s.reason = Some(Reason::Claimed);
        s.inputs = Some(BTreeMap::from([("t0".to_owned(), "a".repeat(40))]));
        let msg = commit_message(&s.subject(), "details\n", &s.trailers());
        assert!(msg.starts_with("Running wf/t1 attempt 3 spec cccccccccccc (Claimed)\n\ndetails\n\nPlancd-Phase: Running\n"), "{msg}");
        let state = TaskState::from_message(git2::Oid::ZERO_SHA1, &msg).unwrap();
        assert_eq!(state.phase, Phase::Running);
        assert_eq!(state.attempt, 3);
        assert_eq!(state.attempts_used(), 2);
        assert_eq!(state.holder.as_deref(), Some("host:42:7:abc"));
        assert_eq!(state.lease_expires_at, Some(now()));
        assert_eq!(state.spec_hash, s.spec_hash);
        assert_eq!(state.inputs, s.inputs);
        assert_eq!(state.reason, Some(Reason::Claimed));
        assert!(TaskState::from_message(git2::Oid::ZERO_SHA1, "just a commit\n").is_none());
    }

    #[test]
    fn next_carries_counters_and_drops_the_claim() {
        let mut s = TaskStatus::new("wf", "t", Phase::Running, now());
        s.holder = Some("h".into());
        s.accepted = 2;
        s.approved_spec_hash = SpecHash::parse(&"d".repeat(64));
        let n = s.next(Phase::Failed, now());
        assert_eq!((n.holder, n.accepted, n.approved_spec_hash), (None, 2, s.approved_spec_hash.clone()));
    }
}
