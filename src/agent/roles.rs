//! The roles of model agents: their system prompts — files embedded in the binary
//! (`src/agent/prompts/<role>.md`), overridable by `.plancd/prompts/<role>.md` in the
//! repository or by `roles.<role>.prompt` — and the brief a model gets for one task.

use std::fmt::Write;

use super::TaskFile;
use crate::config::CheckCommand;
use crate::spec::{FileSource, Role, sha256_hex};

/// The prompt built into plancd for `role`.
pub fn embedded_prompt(role: Role) -> &'static str {
    match role {
        Role::Planner => include_str!("prompts/planner.md"),
        Role::Architect => include_str!("prompts/architect.md"),
        Role::Coder => include_str!("prompts/coder.md"),
        Role::Tester => include_str!("prompts/tester.md"),
        Role::Debugger => include_str!("prompts/debugger.md"),
    }
}

/// Where the repository may override the prompt of `role`.
pub fn override_path(role: Role) -> String {
    format!(".plancd/prompts/{role}.md")
}

/// The system prompt of `role`: the file `configured` names (which must exist), else the
/// repository's override, else the embedded one.
pub fn system_prompt(role: Role, configured: Option<&str>, source: &dyn FileSource) -> Result<String, String> {
    let read = |path: &str| -> Result<Option<String>, String> {
        let bytes = source.read(path).map_err(|e| format!("cannot read the prompt {path}: {e}"))?;
        bytes.map(|b| String::from_utf8(b).map_err(|_| format!("the prompt {path} is not UTF-8"))).transpose()
    };
    if let Some(path) = configured {
        return read(path)?.ok_or_else(|| format!("roles.{role}.prompt names {path}, which is not in the repository"));
    }
    Ok(read(&override_path(role))?.unwrap_or_else(|| embedded_prompt(role).to_owned()))
}

/// The hash of a prompt, for provenance (`Plancd-Prompt-Hash`).
pub fn prompt_hash(system: &str) -> String {
    sha256_hex(system.as_bytes())
}

fn list(out: &mut String, title: &str, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(out, "\n## {title}");
        for item in items {
            let _ = writeln!(out, "- {item}");
        }
    }
}

/// The first message of a task's conversation: everything the task file says, for people and
/// models to read — nothing that differs between two runs of the same spec (such as result
/// commits), so that a re-run is served from the response cache.
pub fn brief(task: &TaskFile, checks: &[&CheckCommand]) -> String {
    let mut out = brief_body(task, checks);
    out.push_str("\nThe workspace is your working directory. Use the tools, and call `finish` when the task is done.\n");
    out
}

/// The brief a command agent gets as its prompt (the file `PLANCD_PROMPT` names), for a coding
/// CLI to take as its instructions: [`brief`], without the model agent's tools.
pub fn command_brief(task: &TaskFile, checks: &[&CheckCommand]) -> String {
    let mut out = brief_body(task, checks);
    out.push_str("\nThe workspace is your working directory: make the change there, with your own tools.\n");
    out
}

/// What both briefs say.
fn brief_body(task: &TaskFile, checks: &[&CheckCommand]) -> String {
    let mut out =
        format!("# Task {}/{} (attempt {}): {}\n\n{}\n", task.workflow_id, task.task_id, task.attempt, task.title, task.description.trim());
    list(&mut out, "Files to produce (outputs)", &task.outputs);
    list(&mut out, "Files to read (inputs)", &task.inputs);
    list(&mut out, "Pinned acceptance test files (read-only)", &task.pinned_files);
    let tests: Vec<String> = task.acceptance_tests.iter().map(|t| format!("`{}` (within {}s)", t.cmd, t.timeout_seconds)).collect();
    list(&mut out, "Acceptance tests: these commands must exit 0", &tests);
    let checks: Vec<String> = checks.iter().map(|c| format!("{}: `{}`", c.name, c.cmd)).collect();
    list(&mut out, "Checks: run these and fix what they report", &checks);
    if let Some(contract) = &task.contract {
        let json = serde_json::to_string_pretty(&contract.content).expect("a JSON value always serialises");
        let _ = write!(out, "\n## Contract ({})\n```json\n{json}\n```\n", contract.path);
    }
    let deps: Vec<String> = task.dependencies.iter().map(|d| format!("{}: {}", d.task_id, d.files.join(", "))).collect();
    list(&mut out, "Results of the tasks this one depends on (in the workspace)", &deps);
    if let Some(parent) = &task.parent_id {
        let _ = write!(out, "\n## This task debugs `{parent}`\nWhy: {}\n", task.branch_reason.as_deref().unwrap_or("its tests failed"));
        if let Some(instructions) = &task.debug_instructions {
            let _ = write!(out, "\n### Diagnostics and instructions\n{}\n", instructions.trim());
        }
    }
    if let Some(instructions) = &task.instructions {
        let _ = write!(out, "\n## A reviewer asked for another attempt\n{}\n", instructions.trim());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{ContractFile, DependencyResult};
    use crate::spec::{AcceptanceTest, DirSource};

    pub fn task_file() -> TaskFile {
        TaskFile {
            workflow_id: "wf".into(),
            task_id: "t2".into(),
            role: Role::Debugger,
            attempt: 2,
            title: "Fix the SMA".into(),
            description: "Make the tests pass.".into(),
            acceptance_tests: vec![serde_json::from_value::<AcceptanceTest>(serde_json::json!({"cmd": "python3 -m unittest"})).unwrap()],
            pinned_files: vec!["tests/test_sma.py".into()],
            inputs: vec![],
            outputs: vec!["sma.py".into()],
            contract: Some(ContractFile { path: "contracts/c.json".into(), content: serde_json::json!({"contract_id": "c"}) }),
            dependencies: vec![DependencyResult {
                task_id: "t1".into(),
                result_commit: "a".repeat(40),
                files: vec!["contracts/c.json".into()],
            }],
            parent_id: Some("t2".into()),
            branch_reason: Some("test_failure".into()),
            debug_instructions: Some("AssertionError in test_window".into()),
            instructions: Some("Handle an empty price series too.".into()),
            plan_commit: "0".repeat(40),
            workspace: "/workspace".into(),
        }
    }

    #[test]
    fn the_brief_holds_everything_the_task_file_says() {
        let check = CheckCommand { name: "lint".into(), cmd: "pyflakes .".into(), timeout_seconds: None, roles: vec![] };
        let text = brief(&task_file(), &[&check]);
        for part in [
            "# Task wf/t2 (attempt 2): Fix the SMA",
            "- sma.py",
            "## Pinned acceptance test files (read-only)\n- tests/test_sma.py",
            "`python3 -m unittest` (within 300s)",
            "- lint: `pyflakes .`",
            "## Contract (contracts/c.json)\n```json\n{\n  \"contract_id\": \"c\"\n}",
            "- t1: contracts/c.json",
            "## This task debugs `t2`\nWhy: test_failure",
            "AssertionError in test_window",
            "## A reviewer asked for another attempt\nHandle an empty price series too.",
        ] {
            assert!(text.contains(part), "{part:?} missing from\n{text}");
        }
    }

    #[test]
    fn a_command_agents_brief_says_the_same_without_the_model_agents_tools() {
        let check = CheckCommand { name: "lint".into(), cmd: "pyflakes .".into(), timeout_seconds: None, roles: vec![] };
        let (model, command) = (brief(&task_file(), &[&check]), command_brief(&task_file(), &[&check]));
        let body = model.rsplit_once("\nThe workspace").unwrap().0;
        assert!(command.starts_with(body) && command.contains("your own tools"), "{command}");
        assert!(model.contains("call `finish`") && !command.contains("finish"), "{command}");
    }

    #[test]
    fn prompts_are_embedded_and_overridable() {
        let dir = tempfile::tempdir().unwrap();
        let source = DirSource::new(dir.path());
        assert_eq!(system_prompt(Role::Coder, None, &source).unwrap(), embedded_prompt(Role::Coder));
        std::fs::create_dir_all(dir.path().join(".plancd/prompts")).unwrap();
        std::fs::write(dir.path().join(".plancd/prompts/coder.md"), "Be a coder.").unwrap();
        assert_eq!(system_prompt(Role::Coder, None, &source).unwrap(), "Be a coder.");
        assert!(system_prompt(Role::Coder, Some("prompts/x.md"), &source).unwrap_err().contains("not in the repository"));
        for role in Role::ALL {
            assert!(embedded_prompt(role).len() > 200, "{role}");
        }
        assert_ne!(prompt_hash("a"), prompt_hash("b"));
    }
}
