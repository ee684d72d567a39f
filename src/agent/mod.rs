//! Agents play a task's role inside its sandbox session.
//!
//! A command agent is any executable: it runs with the workspace as working directory,
//! `PLANCD_TASK` naming a JSON file that describes the task and `PLANCD_PROMPT` a Markdown brief
//! of it; the files it changes are its artifacts, and exit 0 means it finished.
//!
//! A model agent is a tool-calling loop ([`turns`]) over a chat model ([`model`]): the
//! controller talks to the model, and only the tools ([`tools`]) touch the sandbox. Its role's
//! prompt ([`roles`]) and the task's brief start the conversation; [`model_agent`] wires it up.

#[cfg(test)]
mod loop_tests;
pub mod model;
pub mod model_agent;
pub mod roles;
pub mod tools;
pub mod turns;

use std::time::Duration;

use plancd_sandbox::{ExecOutcome, ExecRequest, FileEntry, META_DIR, SandboxError, Session, WORKSPACE};
use serde::Serialize;

pub use model_agent::Models;

use crate::config::Config;
use crate::spec::{AcceptanceTest, FileSource, Role};
use crate::state::Cost;

/// The file handed to agents (`PLANCD_TASK`), a contract with outside tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFile {
    /// The workflow.
    pub workflow_id: String,
    /// The task.
    pub task_id: String,
    /// The role being played.
    pub role: Role,
    /// The attempt's number.
    pub attempt: u32,
    /// The task's title.
    pub title: String,
    /// The task's description: the instructions.
    pub description: String,
    /// Commands that must pass.
    pub acceptance_tests: Vec<AcceptanceTest>,
    /// Test files the agent must not change.
    pub pinned_files: Vec<String>,
    /// Files the task reads.
    pub inputs: Vec<String>,
    /// Files the task must produce.
    pub outputs: Vec<String>,
    /// The contract: its path and parsed content, or null.
    pub contract: Option<ContractFile>,
    /// Results of the direct dependencies.
    pub dependencies: Vec<DependencyResult>,
    /// Branch todos: the task being debugged.
    pub parent_id: Option<String>,
    /// Branch todos: why.
    pub branch_reason: Option<String>,
    /// Branch todos: diagnostics and hints.
    pub debug_instructions: Option<String>,
    /// Instructions a reviewer added when asking for another attempt (`/plancd retry ...`).
    pub instructions: Option<String>,
    /// The watched commit.
    pub plan_commit: String,
    /// Where the workspace is.
    pub workspace: String,
}

/// A contract as handed to an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContractFile {
    /// Its repository path.
    pub path: String,
    /// Its content, parsed (YAML or JSON).
    pub content: serde_json::Value,
}

/// A dependency's published result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyResult {
    /// The task.
    pub task_id: String,
    /// Its result commit.
    pub result_commit: String,
    /// The files it changed.
    pub files: Vec<String>,
}

/// What an agent needs beyond its task and session.
pub struct AgentContext<'a> {
    /// The configuration: roles, models, budgets, checks, sandbox limits.
    pub config: &'a Config,
    /// The watched commit's files: prompt overrides and scripted replies.
    pub source: &'a dyn FileSource,
    /// The pass's model access: keys, cache, spending.
    pub models: &'a Models,
    /// The attempt's model gateway, for a command agent whose role also names a model.
    pub gateway: Option<&'a crate::gateway::Gateway>,
    /// The attempt's live output: a model agent tells its turns there as they happen.
    pub live: Option<std::sync::Arc<crate::live::LiveAttempt>>,
}

/// Why an agent did not finish, beyond its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentFailure {
    /// The attempt failed: stuck, out of budget or time, an invalid contract, a spec mismatch.
    Verdict {
        /// The failure type (`stuck`, `budget_exceeded`, ...).
        failure_type: String,
        /// What happened.
        message: String,
    },
    /// The model's API failed, or the model is not usable: not the task's fault.
    Outside(String),
}

impl AgentFailure {
    /// The failure type, `model_error` for an outside failure.
    pub fn kind(&self) -> &str {
        match self {
            AgentFailure::Verdict { failure_type, .. } => failure_type,
            AgentFailure::Outside(_) => "model_error",
        }
    }

    /// What happened.
    pub fn message(&self) -> String {
        match self {
            AgentFailure::Verdict { message, .. } | AgentFailure::Outside(message) => message.clone(),
        }
    }
}

/// What an agent run did, for logs and provenance.
#[derive(Debug, Clone)]
pub struct AgentRun {
    /// How the command ended.
    pub outcome: ExecOutcome,
    /// Who played the role, e.g. `coder: command python3 agents/coder.py`.
    pub agent: String,
    /// The model, or the command agent's label; `none` when neither.
    pub model: String,
    /// The prompt's hash, `none` for command agents.
    pub prompt_hash: String,
    /// The command line run, for the log.
    pub argv: Vec<String>,
    /// More files for the attempt's log folder (a model agent's `transcript.jsonl`).
    pub logs: Vec<(String, Vec<u8>)>,
    /// What model calls cost.
    pub cost: Cost,
    /// Replies that came from the response cache.
    pub cache_hits: u32,
    /// Why it did not finish, when there is more to say than its exit status.
    pub failure: Option<AgentFailure>,
}

impl AgentRun {
    /// A model agent that could not start: its model is unusable.
    fn outside(role: Role, model: &str, why: String) -> AgentRun {
        AgentRun {
            outcome: ExecOutcome { exit_code: Some(1), stdout: format!("{why}\n").into_bytes(), ..Default::default() },
            agent: format!("{role}: model {model}"),
            model: model.to_owned(),
            prompt_hash: "none".into(),
            argv: vec!["model".into(), model.into()],
            logs: Vec::new(),
            cost: Cost::default(),
            cache_hits: 0,
            failure: Some(AgentFailure::Outside(why)),
        }
    }
}

/// Why an agent could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// plancd.yaml says nothing about how to play the role.
    #[error("no agent for role `{role}`: set roles.{role}.command (or roles.{role}.model) in plancd.yaml")]
    NoAgent {
        /// The role.
        role: Role,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// The path of the task file inside the session.
pub fn task_file_path() -> String {
    format!("{META_DIR}/task.json")
}

/// The path of the command agent's prompt inside the session: the task's brief in Markdown, for
/// a coding CLI that takes its instructions as text (`codex exec "$(cat "$PLANCD_PROMPT")"`).
pub fn prompt_file_path() -> String {
    format!("{META_DIR}/prompt.md")
}

/// Runs the agent that the configuration names for `role` in `session`, within `timeout`: its
/// command, or else its model.
pub async fn run(
    cx: &AgentContext<'_>,
    role: Role,
    task: &TaskFile,
    session: &dyn Session,
    timeout: Duration,
) -> Result<AgentRun, AgentError> {
    let config = cx.config.roles.get(&role).ok_or(AgentError::NoAgent { role })?;
    let Some(command) = &config.command else {
        return match &config.model {
            Some(model) => model_agent::run(cx, role, model, config, task, session, timeout).await,
            None => Err(AgentError::NoAgent { role }),
        };
    };
    let json = serde_json::to_vec_pretty(task).expect("a task file always serialises");
    let prompt = roles::command_brief(task, &model_agent::checks_for(cx.config, role));
    session.put_meta(&[FileEntry::new("task.json", json), FileEntry::new("prompt.md", prompt)]).await?;
    let argv = command.argv();
    let mut req = ExecRequest::new(argv.clone(), timeout);
    req.env = vec![
        ("PLANCD_TASK".into(), task_file_path()),
        ("PLANCD_PROMPT".into(), prompt_file_path()),
        ("PLANCD_WORKSPACE".into(), WORKSPACE.into()),
        ("PLANCD_ROLE".into(), role.to_string()),
        ("PLANCD_ATTEMPT".into(), task.attempt.to_string()),
        ("PLANCD_WORKFLOW".into(), task.workflow_id.clone()),
        ("PLANCD_TASK_ID".into(), task.task_id.clone()),
    ];
    if let Some(gateway) = cx.gateway {
        req.env.extend(gateway.env());
    }
    let outcome = session.exec(&req).await?;
    let mut run = AgentRun {
        outcome,
        agent: format!("{role}: command {}", argv.join(" ")),
        model: config.label.clone().unwrap_or_else(|| "none".into()),
        prompt_hash: "none".into(),
        argv,
        logs: Vec::new(),
        cost: Cost::default(),
        cache_hits: 0,
        failure: None,
    };
    if let Some(gateway) = cx.gateway {
        let ending = gateway.end().await;
        run.agent = format!("{} (model {} through the gateway)", run.agent, gateway.identity());
        run.model = gateway.identity().to_owned();
        run.cost = ending.cost;
        run.failure = gateway_failure(&ending, run.outcome.success());
        run.logs.push(("transcript.jsonl".into(), ending.transcript));
    }
    Ok(run)
}

/// How a command agent's exchanges through its gateway end its attempt: a request refused for
/// the budget ends it `budget_exceeded` (whatever the agent did next); an upstream that could
/// not be reached is the model's failure, not the task's, when the agent then failed.
pub fn gateway_failure(ending: &crate::gateway::Ending, agent_succeeded: bool) -> Option<AgentFailure> {
    if let Some(why) = &ending.budget {
        return Some(AgentFailure::Verdict { failure_type: "budget_exceeded".into(), message: format!("stopped at the budget: {why}") });
    }
    match &ending.unreachable {
        Some(why) if !agent_succeeded => Some(AgentFailure::Outside(format!("the model gateway: {why}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CommandLine, Env, RoleConfig};
    use crate::spec::DirSource;
    use plancd_sandbox::fake::FakeSandbox;
    use plancd_sandbox::{Sandbox, SessionSpec};

    /// Runs the agent of `roles` for `role`, with no repository around.
    async fn run_with(roles: &[(Role, RoleConfig)], role: Role, session: &dyn Session, timeout: Duration) -> Result<AgentRun, AgentError> {
        let config = Config { roles: roles.iter().cloned().collect(), ..Config::default() };
        let source = DirSource::new(std::env::temp_dir().join("plancd-no-such-repo"));
        let models = Models::new(Env::default(), None);
        let cx = AgentContext { config: &config, source: &source, models: &models, gateway: None, live: None };
        run(&cx, role, &task_file(), session, timeout).await
    }

    fn task_file() -> TaskFile {
        TaskFile {
            workflow_id: "wf".into(),
            task_id: "t1".into(),
            role: Role::Coder,
            attempt: 2,
            title: "T".into(),
            description: "do it".into(),
            acceptance_tests: vec![],
            pinned_files: vec![],
            inputs: vec![],
            outputs: vec!["out.py".into()],
            contract: None,
            dependencies: vec![],
            parent_id: None,
            branch_reason: None,
            debug_instructions: None,
            instructions: None,
            plan_commit: "0".repeat(40),
            workspace: WORKSPACE.into(),
        }
    }

    #[tokio::test]
    async fn a_command_agent_gets_the_task_file_and_its_environment() {
        let fake = FakeSandbox::new(|req, files| {
            let env: std::collections::HashMap<_, _> = req.env.iter().cloned().collect();
            files.insert(
                "seen.txt".into(),
                FileEntry::new("seen.txt", format!("{} {} {}", env["PLANCD_TASK"], env["PLANCD_ATTEMPT"], env["PLANCD_PROMPT"])),
            );
            ExecOutcome { exit_code: Some(0), ..Default::default() }
        });
        let session = fake.create(&SessionSpec::default()).await.unwrap();
        let config =
            RoleConfig { command: Some(CommandLine::Shell("./agent.sh".into())), label: Some("scripted".into()), ..Default::default() };
        let run = run_with(&[(Role::Coder, config)], Role::Coder, session.as_ref(), Duration::from_secs(5)).await.unwrap();
        assert!(run.outcome.success());
        assert_eq!(run.model, "scripted");
        assert_eq!(run.agent, "coder: command /bin/sh -c ./agent.sh");
        let out = session.get_files(&Default::default()).await.unwrap();
        assert_eq!(out.files[0].data, b"/run/plancd/task.json 2 /run/plancd/prompt.md");
    }

    #[test]
    fn a_budget_refusal_ends_the_attempt_and_an_unreachable_upstream_is_not_the_tasks_fault() {
        use crate::gateway::Ending;
        let spent = Ending { budget: Some("the attempt's budget is spent: 10 of 10 tokens".into()), ..Ending::default() };
        let down = Ending { unreachable: Some("cannot reach http://up".into()), ..Ending::default() };
        // (ending, the agent exited 0, the failure's kind)
        let cases = [
            (&spent, true, Some("budget_exceeded")),
            (&spent, false, Some("budget_exceeded")),
            (&down, false, Some("model_error")),
            (&down, true, None),
            (&Ending::default(), false, None),
        ];
        for (ending, succeeded, want) in cases {
            assert_eq!(gateway_failure(ending, succeeded).as_ref().map(AgentFailure::kind), want, "{ending:?} {succeeded}");
        }
    }

    #[tokio::test]
    async fn a_role_without_an_agent_is_a_clear_error() {
        let fake = FakeSandbox::new(|_, _| ExecOutcome::default());
        let session = fake.create(&SessionSpec::default()).await.unwrap();
        let err = run_with(&[], Role::Tester, session.as_ref(), Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.to_string(), "no agent for role `tester`: set roles.tester.command (or roles.tester.model) in plancd.yaml");
        assert!(fake.commands().is_empty());
    }
}
