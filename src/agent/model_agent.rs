//! A role played by a model: the model opened with its layers, the role's prompt and the
//! task's brief, the loop run against the task's session, and its end turned into an
//! [`AgentRun`] with the transcript and what it cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use plancd_sandbox::{ExecOutcome, Session};
use serde_json::json;

use super::model::budget::{Ledger, Meter};
use super::model::cache::Cache;
use super::model::transcript::{Transcript, scrub};
use super::model::{self, ChatRequest, Message, ReplyKey};
use super::tools::{self, Workspace};
use super::turns::{Conversation, End, TurnLimits};
use super::{AgentContext, AgentError, AgentFailure, AgentRun, TaskFile, roles};
use crate::config::{Config, Env, RoleConfig};
use crate::spec::Role;
use crate::state::{Cost, Store, TaskKey};

/// What a pass's model agents share: the environment API keys are read from, the repository
/// (for the response cache and what was spent before), and the spending ledger.
pub struct Models {
    env: Env,
    store: Option<Arc<Store>>,
    ledger: Ledger,
}

impl Models {
    /// Model access for one pass; without a store there is no cache and nothing spent before.
    pub fn new(env: Env, store: Option<Arc<Store>>) -> Models {
        Models { env, store, ledger: Ledger::default() }
    }

    /// The environment keys are read from.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The response cache, when there is a repository.
    pub fn cache(&self) -> Option<Cache> {
        self.store.clone().map(Cache::new)
    }

    /// The pass's ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// What the gateway of an attempt of `key` needs besides its upstream: the budgets it
    /// shares with the pass, what the task spent before, the cache.
    pub fn opening(&self, upstream: crate::gateway::Upstream, key: &TaskKey) -> crate::gateway::Opening {
        self.ledger.get_or_seed(&key.workflow, || self.workflow_spent(&key.workflow));
        crate::gateway::Opening {
            upstream,
            ledger: self.ledger.clone(),
            workflow: key.workflow.clone(),
            task_spent: self.task_spent(key),
            cache: self.cache(),
        }
    }

    /// What the task spent in earlier attempts (its status's `cost`).
    fn task_spent(&self, key: &TaskKey) -> Cost {
        let status = self.store.as_ref().and_then(|s| s.status(key).ok().flatten());
        status.and_then(|(_, s)| s.cost).unwrap_or_default()
    }

    /// What the workflow's tasks spent, by their task refs.
    fn workflow_spent(&self, workflow: &str) -> Cost {
        let Some(store) = &self.store else { return Cost::default() };
        let keys = store.list().map(|m| m.into_keys().filter(|k| k.workflow == workflow).collect::<Vec<_>>()).unwrap_or_default();
        keys.iter().map(|k| self.task_spent(k)).fold(Cost::default(), |a, b| a + b)
    }
}

/// The checks that run after `role` (coder by default), for its brief.
pub fn checks_for(config: &Config, role: Role) -> Vec<&crate::config::CheckCommand> {
    config.checks.iter().filter(|c| if c.roles.is_empty() { role == Role::Coder } else { c.roles.contains(&role) }).collect()
}

/// Plays `role` with the model `name` on `task` in `session`.
pub async fn run(
    cx: &AgentContext<'_>,
    role: Role,
    name: &str,
    rc: &RoleConfig,
    task: &TaskFile,
    session: &dyn Session,
    timeout: Duration,
) -> Result<AgentRun, AgentError> {
    let started = Instant::now();
    let deadline = started.checked_add(timeout).unwrap_or_else(|| started + Duration::from_secs(86_400 * 365));
    let opened = model::open(name, cx.config, cx.models.env(), cx.source, cx.models.cache())
        .map_err(|e| e.to_string())
        .and_then(|m| Ok((roles::system_prompt(role, rc.prompt.as_deref(), cx.source)?, m)));
    let (system, model) = match opened {
        Ok(pair) => pair,
        Err(why) => return Ok(AgentRun::outside(role, name, format!("model `{name}`: {why}"))),
    };
    let key = TaskKey::new(&task.workflow_id, &task.task_id);
    cx.models.ledger().get_or_seed(&key.workflow, || cx.models.workflow_spent(&key.workflow));
    let meter = Meter::new(model.limits, cx.models.ledger(), &key.workflow, cx.models.task_spent(&key));
    let transcript = Transcript::new(model.secrets.clone());
    let prompt_hash = roles::prompt_hash(&system);
    transcript
        .start(json!({"role": role, "model": name, "identity": model.identity, "endpoint": model.endpoint, "prompt_hash": prompt_hash}));
    let command_timeout = Duration::from_secs(cx.config.sandbox.limits.timeout_seconds);
    let workspace = Workspace { session, pinned: &task.pinned_files, command_timeout, deadline };
    let limits = TurnLimits {
        max_turns: rc.max_turns.unwrap_or(40),
        max_idle_turns: rc.max_idle_turns.unwrap_or(10),
        validation_tries: rc.validation_tries.unwrap_or(3),
        deadline,
    };
    let contracts = if role == Role::Architect { task.outputs.iter().filter(|o| is_structured(o)).cloned().collect() } else { Vec::new() };
    let cx_live = cx.live.as_deref();
    let conversation =
        Conversation { model: &model, meter: &meter, transcript: &transcript, workspace: &workspace, limits, contracts, live: cx_live };
    let req = ChatRequest {
        system,
        messages: vec![Message::User { text: roles::brief(task, &checks_for(cx.config, role)) }],
        tools: tools::specs(role),
        max_output_tokens: model.max_output_tokens,
        temperature: model.temperature,
        key: ReplyKey { workflow: task.workflow_id.clone(), task: task.task_id.clone(), attempt: task.attempt },
    };
    let report = conversation.run(req).await?;
    let (mut failure, timed_out) = ending(&report.end, report.turns, name);
    if let Some(AgentFailure::Outside(why)) = &mut failure {
        *why = scrub(why, &model.secrets);
    }
    let outcome_word = failure.as_ref().map_or("finished", AgentFailure::kind);
    transcript.end(report.turns, outcome_word, &failure.as_ref().map(AgentFailure::message).unwrap_or_default(), &meter.spent());
    let mut log = report.log.into_bytes();
    if let Some(f) = &failure {
        log.extend_from_slice(format!("{}\n", f.message()).as_bytes());
    }
    let outcome = ExecOutcome {
        exit_code: Some(if failure.is_none() { 0 } else { 1 }),
        stdout: log,
        duration: started.elapsed(),
        timed_out,
        ..Default::default()
    };
    Ok(AgentRun {
        outcome,
        agent: format!("{role}: model {name} ({})", model.identity),
        model: model.identity.clone(),
        prompt_hash,
        argv: vec!["model".into(), name.into()],
        logs: vec![("transcript.jsonl".into(), transcript.bytes())],
        cost: meter.spent(),
        cache_hits: meter.cache_hits(),
        failure,
    })
}

fn is_structured(path: &str) -> bool {
    [".json", ".yaml", ".yml"].iter().any(|ext| path.ends_with(ext))
}

/// What the loop's end means for the attempt, and whether it ran out of time.
fn ending(end: &End, turns: u32, name: &str) -> (Option<AgentFailure>, bool) {
    let verdict = |t: &str, m: String| Some(AgentFailure::Verdict { failure_type: t.into(), message: m });
    match end {
        End::Finished(_) => (None, false),
        End::SpecMismatch(why) => (verdict("spec_mismatch", format!("the debugger reports a spec mismatch: {why}")), false),
        End::Stuck(why) => (verdict("stuck", format!("the agent is stuck: {why}")), false),
        End::Budget(why) => (verdict("budget_exceeded", format!("stopped at the budget: {why}")), false),
        End::TimedOut => (verdict("timeout", format!("the agent ran out of time after {turns} turn(s)")), true),
        End::InvalidContract(why) => (verdict("invalid_contract", format!("the contract did not validate: {why}")), false),
        End::Model(e) => (Some(AgentFailure::Outside(format!("model `{name}`: {e}"))), false),
    }
}
