//! Agents play a task's role inside its sandbox session. A command agent is any executable:
//! it runs with the workspace as working directory and `PLANCD_TASK` naming a JSON file that
//! describes the task; the files it changes are its artifacts, and exit 0 means it finished.

use std::time::Duration;

use plancd_sandbox::{ExecOutcome, ExecRequest, FileEntry, META_DIR, SandboxError, Session, WORKSPACE};
use serde::Serialize;

use crate::config::RoleConfig;
use crate::spec::{AcceptanceTest, Role};

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
    /// The role names a model; model-driven agents are not available in this build.
    #[error("role `{role}` names model `{model}`, but this plancd runs command agents only: set roles.{role}.command")]
    ModelUnsupported {
        /// The role.
        role: Role,
        /// The model.
        model: String,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// The path of the task file inside the session.
pub fn task_file_path() -> String {
    format!("{META_DIR}/task.json")
}

/// Runs the agent that `config` names for `role` in `session`, within `timeout`.
pub async fn run(
    config: Option<&RoleConfig>,
    role: Role,
    task: &TaskFile,
    session: &dyn Session,
    timeout: Duration,
) -> Result<AgentRun, AgentError> {
    let config = config.ok_or(AgentError::NoAgent { role })?;
    let Some(command) = &config.command else {
        return Err(match &config.model {
            Some(model) => AgentError::ModelUnsupported { role, model: model.clone() },
            None => AgentError::NoAgent { role },
        });
    };
    let json = serde_json::to_vec_pretty(task).expect("a task file always serialises");
    session.put_meta(&[FileEntry::new("task.json", json)]).await?;
    let argv = command.argv();
    let mut req = ExecRequest::new(argv.clone(), timeout);
    req.env = vec![
        ("PLANCD_TASK".into(), task_file_path()),
        ("PLANCD_WORKSPACE".into(), WORKSPACE.into()),
        ("PLANCD_ROLE".into(), role.to_string()),
        ("PLANCD_ATTEMPT".into(), task.attempt.to_string()),
        ("PLANCD_WORKFLOW".into(), task.workflow_id.clone()),
        ("PLANCD_TASK_ID".into(), task.task_id.clone()),
    ];
    let outcome = session.exec(&req).await?;
    Ok(AgentRun {
        outcome,
        agent: format!("{role}: command {}", argv.join(" ")),
        model: config.label.clone().unwrap_or_else(|| "none".into()),
        prompt_hash: "none".into(),
        argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CommandLine;
    use plancd_sandbox::fake::FakeSandbox;
    use plancd_sandbox::{Sandbox, SessionSpec};

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
            files.insert("seen.txt".into(), FileEntry::new("seen.txt", format!("{} {}", env["PLANCD_TASK"], env["PLANCD_ATTEMPT"])));
            ExecOutcome { exit_code: Some(0), ..Default::default() }
        });
        let session = fake.create(&SessionSpec::default()).await.unwrap();
        let config =
            RoleConfig { command: Some(CommandLine::Shell("./agent.sh".into())), label: Some("scripted".into()), ..Default::default() };
        let run = run(Some(&config), Role::Coder, &task_file(), session.as_ref(), Duration::from_secs(5)).await.unwrap();
        assert!(run.outcome.success());
        assert_eq!(run.model, "scripted");
        assert_eq!(run.agent, "coder: command /bin/sh -c ./agent.sh");
        let out = session.get_files(&Default::default()).await.unwrap();
        assert_eq!(out.files[0].data, b"/run/plancd/task.json 2");
    }

    #[tokio::test]
    async fn a_role_without_an_agent_is_a_clear_error() {
        let fake = FakeSandbox::new(|_, _| ExecOutcome::default());
        let session = fake.create(&SessionSpec::default()).await.unwrap();
        let err = run(None, Role::Tester, &task_file(), session.as_ref(), Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.to_string(), "no agent for role `tester`: set roles.tester.command (or roles.tester.model) in plancd.yaml");
        assert!(fake.commands().is_empty());
    }
}
