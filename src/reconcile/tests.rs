//! The executor over a real repository and the fake sandbox: claims, commit points,
//! publishing, retries, approval, idempotence.

use std::path::Path;
use std::sync::Arc;

use git2::{Repository, Signature};
use plancd_sandbox::fake::FakeSandbox;
use plancd_sandbox::{ExecOutcome, FileEntry};
use tokio::sync::watch;

use super::*;
use crate::config::Env;
use crate::state::{Holder, Phase, Store, TaskKey};

const CONFIG: &str =
    "branch: main\nconcurrency: 2\nroles:\n  coder: { command: [agent], label: scripted }\n  tester: { command: [agent] }\n";

const PLAN: &str = "todo_list_id: wf\ntitle: W\ntasks:\n  - id: a\n    title: Task A\n    agent_role: coder\n    outputs: [a.txt]\n    acceptance_criteria:\n      tests: [{cmd: check a.txt}]\n      files: [tests/pinned.txt]\n  - id: b\n    title: Task B\n    agent_role: tester\n    dependencies: [a]\n    outputs: [b.txt]\n    acceptance_criteria:\n      tests: [{cmd: check b.txt}]\n";

/// A repository with `files` committed on main.
fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    commit(&repo, files);
    dir
}

fn commit(repo: &Repository, files: &[(&str, &str)]) {
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, text) in files {
        update.upsert(*path, repo.blob(text.as_bytes()).unwrap(), git2::FileMode::Blob);
    }
    let parent = repo.find_reference("refs/heads/main").ok().and_then(|r| r.target()).map(|o| repo.find_commit(o).unwrap());
    let base = match &parent {
        Some(p) => p.tree().unwrap(),
        None => repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap(),
    };
    let tree = repo.find_tree(update.create_updated(repo, &base).unwrap()).unwrap();
    let sig = Signature::now("dev", "dev@example.com").unwrap();
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "plan", &tree, &parents).unwrap();
}

/// The agent writes `<task>.txt` with "ok" unless the task's "bad" file says otherwise; a test
/// `check F` passes when F holds "ok" and the pinned file is intact; the coder tampers with the
/// pinned file, which must be restored before the tests.
fn fake() -> FakeSandbox {
    FakeSandbox::new(|req, files| {
        let ok = ExecOutcome { exit_code: Some(0), ..Default::default() };
        if req.argv == ["agent"] {
            let env = |k: &str| req.env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let (task, id) = (env("PLANCD_ROLE"), env("PLANCD_TASK_ID"));
            let in_branch = id.contains("_branch_");
            if in_branch && files.contains_key("branch-agent-crashes") {
                return ExecOutcome { exit_code: Some(1), stderr: b"agent crashed\n".to_vec(), ..Default::default() };
            }
            let name = if id.starts_with('b') { "b.txt" } else { "a.txt" };
            let fixed_here = in_branch && files.contains_key("fix-in-branch");
            let broken = files.contains_key("bad") || (files.contains_key("fix-in-branch") && id == "a");
            let content = if broken && !fixed_here { "wrong" } else { "ok" };
            files.insert(name.into(), FileEntry::new(name, content));
            if task == "coder" && !in_branch {
                // a pins this file; its agent changes it anyway.
                files.insert("tests/pinned.txt".into(), FileEntry::new("tests/pinned.txt", "tampered"));
            }
            return ok;
        }
        let script = req.argv.last().cloned().unwrap_or_default();
        let target = script.strip_prefix("check ").unwrap_or_default();
        let passed =
            files.get(target).is_some_and(|f| f.data == b"ok") && files.get("tests/pinned.txt").is_some_and(|f| f.data == b"pinned");
        ExecOutcome {
            exit_code: Some(if passed { 0 } else { 1 }),
            stdout: format!("checked {target}\n").into_bytes(),
            ..Default::default()
        }
    })
}

async fn pass(dir: &Path, sandbox: &FakeSandbox) -> PassReport {
    let store = Arc::new(Store::open(dir).unwrap());
    let snapshot = Snapshot::load(dir, None, &Env::default()).unwrap();
    let (_tx, cancel) = watch::channel(false);
    let cx = PassContext {
        environments: Arc::new(environment::Environments::new(dir.join(".git/plancd/environments"), [])),
        upstream: Default::default(),
        models: Arc::new(crate::agent::Models::new(Env::default(), Some(store.clone()))),
        store,
        sandbox: Arc::new(sandbox.clone()),
        snapshot: Arc::new(snapshot),
        holder: Holder::current().to_string(),
        correlation_id: "test".into(),
        cancel,
        changes: Default::default(),
        triage: Default::default(),
        events: None,
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), Executor::new(Arc::new(cx)).run()).await.unwrap().unwrap()
}

fn refs(dir: &Path) -> Vec<(String, git2::Oid)> {
    let repo = Repository::open(dir).unwrap();
    let mut all: Vec<(String, git2::Oid)> =
        repo.references().unwrap().map(|r| r.unwrap()).map(|r| (r.name().unwrap().to_owned(), r.target().unwrap())).collect();
    all.sort();
    all
}

fn files() -> Vec<(&'static str, &'static str)> {
    vec![("plancd.yaml", CONFIG), ("plans/wf.yaml", PLAN), ("tests/pinned.txt", "pinned")]
}

#[tokio::test]
async fn a_plan_is_reconciled_to_published_results_and_a_second_pass_writes_nothing() {
    let dir = repo(&files());
    let sandbox = fake();
    let report = pass(dir.path(), &sandbox).await;
    let ends: Vec<String> =
        report.attempts.iter().map(|(k, n, e)| format!("{k}#{n} {}", matches!(e, AttemptEnd::Succeeded { .. }))).collect();
    assert_eq!(ends, ["wf/a#1 true", "wf/b#1 true"]);
    assert!(report.actions.iter().all(|a| matches!(a, Action::UpToDate { .. })), "{:?}", report.actions);

    let store = Store::open(dir.path()).unwrap();
    let (_, a) = store.status(&TaskKey::new("wf", "a")).unwrap().unwrap();
    assert_eq!(a.phase, Phase::Succeeded);
    assert_eq!(a.tests.as_ref().unwrap().pinned_files_changed, ["tests/pinned.txt"], "the tampering is reported");
    let result = a.result.unwrap();
    assert_eq!(
        (result.branch.as_str(), result.tag.as_deref(), result.files.as_slice()),
        ("ai/generated/wf/a", Some("ai/wf/a/1"), &["a.txt".to_owned()][..])
    );

    // b's result sits on a's, and holds both files; the pinned file is as committed.
    let repo = Repository::open(dir.path()).unwrap();
    let b_tip = repo.find_reference("refs/heads/ai/generated/wf/b").unwrap().peel_to_commit().unwrap();
    let a_tip = repo.find_reference("refs/heads/ai/generated/wf/a").unwrap().target().unwrap();
    assert_eq!(b_tip.parent_id(0).unwrap(), a_tip);
    let tree = b_tip.tree().unwrap();
    let read = |p: &str| String::from_utf8(repo.find_blob(tree.get_path(Path::new(p)).unwrap().id()).unwrap().content().to_vec()).unwrap();
    assert_eq!((read("a.txt"), read("b.txt"), read("tests/pinned.txt")), ("ok".into(), "ok".into(), "pinned".into()));
    let message = String::from_utf8_lossy(b_tip.message_bytes()).into_owned();
    assert!(message.contains("Plancd-Task: b\n") && message.contains("Plancd-Model: none\n"), "{message}");
    let a_message = String::from_utf8_lossy(repo.find_commit(a_tip).unwrap().message_bytes()).into_owned();
    assert!(a_message.contains("Plancd-Model: scripted\n"), "{a_message}");

    // Logs are in the task's ref.
    let log = String::from_utf8(store.read_file(&TaskKey::new("wf", "a"), "attempts/1/tests.log").unwrap().unwrap()).unwrap();
    assert!(log.contains("$ check a.txt\nchecked a.txt\n-> exit 0"), "{log}");

    let before = refs(dir.path());
    let commands = sandbox.commands().len();
    let again = pass(dir.path(), &sandbox).await;
    assert!(again.attempts.is_empty());
    assert_eq!(refs(dir.path()), before, "a second pass writes no ref");
    assert_eq!(sandbox.commands().len(), commands, "and runs nothing");
}

#[tokio::test]
async fn without_branch_todos_failures_retry_up_to_max_attempts_and_block_dependents() {
    let mut f = files();
    f.push(("bad", "1"));
    f[0] = ("plancd.yaml", Box::leak(format!("{CONFIG}max_branch_depth: 0\n").into_boxed_str()));
    let plan = PLAN.replace("    title: Task A\n", "    title: Task A\n    max_attempts: 2\n");
    f[1] = ("plans/wf.yaml", Box::leak(plan.into_boxed_str()));
    let dir = repo(&f);
    let report = pass(dir.path(), &fake()).await;
    let ends: Vec<String> = report.attempts.iter().map(|(k, n, _)| format!("{k}#{n}")).collect();
    assert_eq!(ends, ["wf/a#1", "wf/a#2"]);
    let shown: Vec<String> = report.actions.iter().map(|a| format!("{}: {a}", a.key())).collect();
    assert_eq!(shown, ["wf/a: failed after 2 attempt(s): plancd retry wf/a", "wf/b: waiting on a: Failed, attempt 2"]);
    let store = Store::open(dir.path()).unwrap();
    let (_, a) = store.status(&TaskKey::new("wf", "a")).unwrap().unwrap();
    assert_eq!(a.failure_type.as_ref().map(|f| f.as_str()), Some("test_failure"));
    assert!(a.message.starts_with("1 of 1 acceptance test(s) failed; first: `check a.txt` (exit 1)"), "{}", a.message);
    assert!(store.tip(&TaskKey::new("wf", "b")).unwrap().is_none(), "the dependent never ran");
}

#[tokio::test]
async fn a_changed_spec_reruns_the_task_and_everything_downstream_only() {
    let plan = format!(
        "{PLAN}  - id: c\n    title: Task C\n    agent_role: coder\n    outputs: [a.txt]\n    acceptance_criteria:\n      tests: [{{cmd: check a.txt}}]\n      files: [tests/pinned.txt]\n"
    );
    let mut f = files();
    f[1] = ("plans/wf.yaml", Box::leak(plan.clone().into_boxed_str()));
    let dir = repo(&f);
    let sandbox = fake();
    assert_eq!(pass(dir.path(), &sandbox).await.attempts.len(), 3);
    let repo = Repository::open(dir.path()).unwrap();
    commit(&repo, &[("plans/wf.yaml", &plan.replacen("title: Task A", "title: Task A, renamed", 1))]);
    let report = pass(dir.path(), &sandbox).await;
    let ran: Vec<String> = report.attempts.iter().map(|(k, n, _)| format!("{k}#{n}")).collect();
    assert_eq!(ran, ["wf/a#2", "wf/b#2"], "c is unrelated and stays up to date");
    assert_eq!(repo.find_reference("refs/tags/ai/wf/a/2").unwrap().peel_to_commit().unwrap().summary().unwrap(), Some("Task A, renamed"));
}

#[tokio::test]
async fn approval_gates_a_task_until_approved() {
    let plan = PLAN.replace("    title: Task A\n", "    title: Task A\n    requires_approval: true\n");
    let mut f = files();
    f[1] = ("plans/wf.yaml", Box::leak(plan.into_boxed_str()));
    let dir = repo(&f);
    let report = pass(dir.path(), &fake()).await;
    assert!(report.attempts.is_empty());
    assert_eq!(report.actions[0].name(), "NeedsApproval");
    let store = Store::open(dir.path()).unwrap();
    let state = store.state(&TaskKey::new("wf", "a")).unwrap().unwrap();
    assert_eq!(state.phase, Phase::NeedsApproval);
    // A second pass does not write the mark again.
    let tip = state.tip;
    pass(dir.path(), &fake()).await;
    assert_eq!(store.tip(&TaskKey::new("wf", "a")).unwrap(), Some(tip));
}

fn ran(report: &PassReport) -> Vec<String> {
    report.attempts.iter().map(|(k, n, _)| format!("{k}#{n}")).collect()
}

#[tokio::test]
async fn a_failure_opens_a_branch_todo_whose_fix_completes_the_task() {
    let mut f = files();
    f.push(("fix-in-branch", "1"));
    let dir = repo(&f);
    let report = pass(dir.path(), &fake()).await;
    assert_eq!(ran(&report), ["wf/a#1", "wf/a_branch_01#1", "wf/b#1"]);
    let store = Store::open(dir.path()).unwrap();
    let (_, a) = store.status(&TaskKey::new("wf", "a")).unwrap().unwrap();
    assert_eq!((a.phase, a.branch_todos.as_slice(), a.attempt), (Phase::Succeeded, &["a_branch_01".to_owned()][..], 1));
    assert_eq!(a.result.as_ref().and_then(|r| r.tag.as_deref()), Some("ai/wf/a/1"));
    let (_, branch) = store.status(&TaskKey::new("wf", "a_branch_01")).unwrap().unwrap();
    let info = branch.branch.clone().unwrap();
    assert_eq!((branch.phase, info.parent_id.as_str(), info.depth, info.max_debug_attempts), (Phase::Succeeded, "a", 1, 3));
    assert_eq!(
        (info.branch_reason.as_str(), info.role.as_str()),
        ("test_failure", "coder"),
        "unknown failures go to the debugger, or the task's own role without one"
    );
    assert!(info.debug_instructions.contains("check a.txt"), "{}", info.debug_instructions);

    // The failing work is kept, the result holds the fix, and provenance names the branch.
    let repo = Repository::open(dir.path()).unwrap();
    let read = |rev: &str| {
        let obj = repo.revparse_single(rev).unwrap();
        String::from_utf8(obj.peel_to_blob().unwrap().content().to_vec()).unwrap()
    };
    assert_eq!(read("refs/ai/tasks/wf/a:attempts/1/work/a.txt"), "wrong");
    assert_eq!(read("refs/heads/ai/generated/wf/a:a.txt"), "ok");
    assert_eq!(read("refs/heads/ai/generated/wf/a:tests/pinned.txt"), "pinned");
    let message =
        String::from_utf8_lossy(repo.find_reference("refs/heads/ai/generated/wf/a").unwrap().peel_to_commit().unwrap().message_bytes())
            .into_owned();
    assert!(message.contains("Plancd-Agent: coder (fixed by a_branch_01: coder: command agent)"), "{message}");
    assert!(report.actions.iter().any(|a| a.key().task == "a_branch_01" && a.name() == "BranchClosed"));

    let again = pass(dir.path(), &fake()).await;
    assert!(again.attempts.is_empty(), "{:?}", ran(&again));
}

#[tokio::test]
async fn past_the_depth_limit_the_task_is_escalated_and_dependents_never_run() {
    let mut f = files();
    f.push(("bad", "1"));
    let dir = repo(&f);
    let report = pass(dir.path(), &fake()).await;
    assert_eq!(ran(&report), ["wf/a#1", "wf/a_branch_01#1", "wf/a_branch_02#1"]);
    let shown: Vec<String> =
        report.actions.iter().filter(|a| !a.key().task.contains("_branch_")).map(|a| format!("{}: {a}", a.key())).collect();
    assert_eq!(shown, ["wf/a: escalated to a person", "wf/b: waiting on a: Escalated"]);
    let store = Store::open(dir.path()).unwrap();
    let (_, a) = store.status(&TaskKey::new("wf", "a")).unwrap().unwrap();
    assert_eq!((a.phase, a.reason.as_ref().map(|r| r.as_str())), (Phase::Escalated, Some("MaxBranchDepth")));
    assert!(a.message.starts_with("still failing after 2 branch todo(s), the most allowed (max_branch_depth 2)"), "{}", a.message);
    assert_eq!(a.branch_todos, ["a_branch_01", "a_branch_02"]);
    let (_, deeper) = store.status(&TaskKey::new("wf", "a_branch_02")).unwrap().unwrap();
    assert_eq!(deeper.branch.unwrap().depth, 2);
    assert!(store.tip(&TaskKey::new("wf", "b")).unwrap().is_none());
    // At rest: a second pass runs nothing.
    assert!(pass(dir.path(), &fake()).await.attempts.is_empty());
}

#[tokio::test]
async fn a_branch_whose_agent_keeps_failing_escalates_after_max_debug_attempts() {
    let mut f = files();
    f.push(("bad", "1"));
    f.push(("branch-agent-crashes", "1"));
    f[1] = (
        "plans/wf.yaml",
        Box::leak(PLAN.replace("    title: Task A\n", "    title: Task A\n    max_debug_attempts: 2\n").into_boxed_str()),
    );
    let dir = repo(&f);
    let report = pass(dir.path(), &fake()).await;
    assert_eq!(ran(&report), ["wf/a#1", "wf/a_branch_01#1", "wf/a_branch_01#2"]);
    let (_, a) = Store::open(dir.path()).unwrap().status(&TaskKey::new("wf", "a")).unwrap().unwrap();
    assert_eq!((a.phase, a.reason.as_ref().map(|r| r.as_str())), (Phase::Escalated, Some("BranchAttemptsExhausted")));
    assert!(a.message.contains("a_branch_01 failed 2 attempt(s); last: the coder agent did not finish"), "{}", a.message);
}
