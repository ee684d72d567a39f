//! The commands around a reconcile: diff, status, approve, retry, suspend, resume, prune,
//! bad input, signals, and the demo.

use crate::util::{Repo, plancd_command, plancd_in};

/// One coder task whose agent writes `out.txt` from the repository's `answer` file; the test
/// wants "42".
fn single(extra_task: &str, config_extra: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!("branch: main\nroles:\n  coder: {{ command: [\"sh\", \"-c\", \"cat answer > out.txt\"] }}\n{config_extra}"),
    );
    repo.write("answer", "41\n");
    repo.write(
        "plans/p.yaml",
        &format!("todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    max_attempts: 1\n{extra_task}    acceptance_criteria:\n      tests: [{{cmd: \"grep -qx 42 out.txt\"}}]\n"),
    );
    repo.commit("plan");
    repo
}

#[test]
fn diff_says_what_would_run_and_exits_one_for_work() {
    let repo = single("", "");
    let diff = repo.plancd(&["diff"]);
    diff.expect_code(1);
    assert!(diff.stdout.contains("~ p/t  Run            run attempt 1"), "{}", diff.stdout);
}

#[test]
fn without_branch_todos_a_failing_task_exits_one_and_retry_reopens_it() {
    let repo = single("", "max_branch_depth: 0\n");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    assert!(run.stdout.contains("1 failed, escalated or held for a person"), "{}", run.stdout);
    let status = repo.plancd(&["status"]);
    assert!(
        status.stdout.contains("p/t   coder  Failed") && status.stdout.contains("failed after 1 attempt(s): plancd retry p/t"),
        "{}",
        status.stdout
    );
    let logs = repo.plancd(&["logs", "p/t"]);
    assert!(logs.stdout.contains("$ grep -qx 42 out.txt\n-> exit 1"), "{}", logs.stdout);

    // Nothing runs again until a person asks.
    repo.plancd(&["reconcile"]).expect_code(1);
    assert_eq!(repo.git(&["log", "--format=%s", "refs/ai/tasks/p/t"]).lines().filter(|l| l.ends_with("(Claimed)")).count(), 1);

    // Fix the input, retry: attempt 2 runs and succeeds.
    repo.write("answer", "42\n");
    repo.commit("fix the answer");
    let retry = repo.plancd(&["retry", "p/t"]);
    retry.expect_code(0);
    assert!(retry.stdout.contains("re-opened p/t; the next reconcile runs attempt 2"), "{}", retry.stdout);
    repo.plancd(&["reconcile"]).expect_code(0);
    assert!(repo.plancd(&["status", "p/t", "-o", "json"]).stdout.contains("\"phase\": \"Succeeded\""));
    // Retrying a succeeded task is refused.
    let refused = repo.plancd(&["retry", "p/t"]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("p/t succeeded (attempt 2) for its current spec; to ask for changes"), "{}", refused.stderr);
}

#[test]
fn a_task_its_branch_todos_cannot_fix_is_escalated_and_retry_reopens_it() {
    let repo = single("", "");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("-> branch todo t_branch_01 opened") && run.stderr.contains("-> branch todo t_branch_02 opened"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("escalated p/t_branch_02 attempt 1: still failing after 2 branch todo(s)"), "{}", run.stderr);
    let status = repo.plancd(&["status"]);
    assert!(status.stdout.contains("p/t            coder  Escalated"), "{}", status.stdout);
    let listing = repo.git(&["for-each-ref", "--format=%(refname:short) %(contents:subject)", "refs/ai/tasks/"]);
    assert!(listing.contains("Escalated p/t attempt 1") && listing.contains("(MaxBranchDepth)"), "{listing}");
    // A person fixes the input and re-opens the task.
    repo.write("answer", "42\n");
    repo.commit("fix the answer");
    repo.plancd(&["retry", "p/t"]).expect_code(0);
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert_eq!(repo.git(&["tag", "--list"]).trim(), "ai/p/t/1");
}

#[test]
fn approval_and_suspension_gate_runs() {
    let repo = single("    requires_approval: true\n", "");
    repo.write("answer", "42\n");
    repo.commit("right answer");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stdout.contains("1 waiting for approval"), "{}", run.stdout);
    assert_eq!(repo.git(&["log", "-1", "--format=%s", "refs/ai/tasks/p/t"]).split_whitespace().next(), Some("NeedsApproval"));

    repo.plancd(&["suspend", "p"]).expect_code(0);
    let approve = repo.plancd(&["approve", "p/t"]);
    approve.expect_code(0);
    assert!(approve.stdout.starts_with("approved p/t for spec "), "{}", approve.stdout);
    let suspended = repo.plancd(&["reconcile"]);
    suspended.expect_code(0);
    assert!(suspended.stdout.contains("workflow suspended: plancd resume p"), "{}", suspended.stdout);
    assert_eq!(repo.git(&["tag", "--list"]), "");

    let resume = repo.plancd(&["resume", "p"]);
    assert!(resume.stdout.starts_with("p is now active\n"), "{}", resume.stdout);
    repo.plancd(&["reconcile"]).expect_code(0);
    assert_eq!(repo.git(&["tag", "--list"]).trim(), "ai/p/t/1");
    let again = repo.plancd(&["resume", "p"]);
    again.expect_code(2);
    assert!(again.stderr.contains("p is not suspended"), "{}", again.stderr);
    // Approving a task that needs none is refused.
    let other = single("", "");
    other.plancd(&["approve", "p/t"]).expect_code(2);
}

#[test]
fn removed_tasks_are_orphaned_then_pruned_when_asked() {
    let repo = single("", "");
    repo.write("answer", "42\n");
    repo.commit("right answer");
    repo.plancd(&["reconcile"]).expect_code(0);
    repo.write("plans/p.yaml", "todo_list_id: p\ntitle: P\ntasks:\n  - id: u\n    title: U\n    agent_role: coder\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt\"}]\n");
    repo.commit("replace t by u");
    repo.plancd(&["reconcile"]).expect_code(0);
    assert!(repo.git(&["log", "-1", "--format=%s", "refs/ai/tasks/p/t"]).starts_with("Orphaned p/t"));
    assert!(repo.plancd(&["status"]).stdout.contains("no longer in any plan"));
    repo.write("plancd.yaml", "branch: main\nprune: true\nroles:\n  coder: { command: [\"sh\", \"-c\", \"cat answer > out.txt\"] }\n");
    repo.commit("prune");
    repo.plancd(&["reconcile"]).expect_code(0);
    let refs = repo.git(&["for-each-ref", "--format=%(refname)"]);
    assert!(!refs.contains("refs/ai/tasks/p/t\n") && !refs.contains("refs/heads/ai/generated/p/t\n"), "{refs}");
    assert!(refs.contains("refs/tags/ai/p/t/1"), "tags are history and stay: {refs}");
}

#[test]
fn bad_input_writes_nothing_and_a_broken_plan_stalls_its_workflow() {
    let repo = single("", "");
    repo.write(
        "plans/p.yaml",
        "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    dependencies: [nope]\n",
    );
    repo.commit("broken plan");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    assert!(run.stderr.contains("workflow p is Stalled (PlanInvalid)"), "{}", run.stderr);
    assert!(run.stderr.contains("plans/p.yaml:7:20: error[unknown-dependency]"), "{}", run.stderr);
    assert_eq!(repo.git(&["for-each-ref", "refs/ai/"]), "");

    let no_agent = Repo::new();
    no_agent.write("plans/p.yaml", "todo_list_id: p\ntitle: P\ntasks:\n  - {id: t, title: T, agent_role: tester}\n");
    no_agent.commit("no agents");
    let run = no_agent.plancd(&["reconcile"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("error[no-agent]: tasks[0].agent_role: task `t`: no agent plays role `tester`: plancd.yaml has no roles.tester"),
        "{}",
        run.stderr
    );
    assert_eq!(no_agent.git(&["for-each-ref", "refs/ai/"]), "");

    let run = repo.plancd(&["reconcile", "--branch", "nope"]);
    run.expect_code(2);
    assert!(run.stderr.contains("branch `nope` does not exist"), "{}", run.stderr);
    let outside = plancd_in(std::path::Path::new("/"), &["status"]);
    outside.expect_code(3);
}

#[test]
fn sigterm_releases_claims_and_a_rerun_finishes() {
    let repo = single("", "");
    repo.write("answer", "42\n");
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"-c\", \"sleep 30; cat answer > out.txt\"] }\n");
    repo.commit("slow agent");
    let mut child = plancd_command(repo.path(), &["reconcile"], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the claim.
    for _ in 0..100 {
        if repo.git(&["for-each-ref", "refs/ai/tasks/"]).contains("p/t") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    send_sigterm(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let subject = repo.git(&["log", "-1", "--format=%s", "refs/ai/tasks/p/t"]);
    assert!(subject.starts_with("Released p/t attempt 1"), "{subject}");
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"-c\", \"cat answer > out.txt\"] }\n");
    repo.commit("fast agent");
    repo.plancd(&["reconcile"]).expect_code(0);
}

fn send_sigterm(pid: u32) {
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn the_demo_runs_offline_and_publishes_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo");
    let run = plancd_in(dir.path(), &["demo", "--dir", target.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stdout.contains("4/4 tasks satisfied, 5 attempt(s) run"), "{}", run.stdout);
    // The indicator coder's first attempt fails; a branch todo fixes it.
    assert!(
        run.stderr.contains("failed    sma-crossover/t2_indicators attempt 1") && run.stderr.contains("[implementation_bug]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("-> branch todo t2_indicators_branch_01 opened"), "{}", run.stderr);
    assert!(run.stderr.contains("succeeded sma-crossover/t2_indicators_branch_01 attempt 1"), "{}", run.stderr);
    for task in ["t1_contract", "t2_indicators", "t3_strategy", "t4_edge_tests"] {
        assert!(run.stdout.contains(&format!("ai/sma-crossover/{task}/1")), "{task}: {}", run.stdout);
    }
    let model = std::process::Command::new("git")
        .args([
            "-C",
            target.to_str().unwrap(),
            "log",
            "-1",
            "--format=%(trailers:key=Plancd-Model,valueonly)",
            "ai/generated/sma-crossover/t3_strategy",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&model.stdout).trim(), "scripted");
}

/// `single`'s task with a scripted debugger that finds the specification at fault.
fn with_a_debugger_that_finds_a_spec_mismatch(architect: &str) -> Repo {
    let repo = single("", &format!("models:\n  offline: {{ provider: scripted, file: .plancd/scripted.yaml }}\n{architect}"));
    let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
    repo.write("plancd.yaml", &config.replace("roles:\n", "roles:\n  debugger: { model: offline }\n"));
    repo.write(
        ".plancd/scripted.yaml",
        "workflows:\n  p:\n    t_branch_01:\n      default:\n        - calls: [{ read_file: { path: answer } }]\n        - calls: [{ finish: { summary: \"the test wants 42; the answer file, which the code must not change, says 41\", result: spec_mismatch } }]\n",
    );
    repo.commit("a debugger");
    repo
}

#[test]
fn a_spec_mismatch_the_debugger_reports_goes_to_the_architect() {
    // The architect revises the specification (here, the answer) and redoes the work.
    let repo = with_a_debugger_that_finds_a_spec_mismatch("");
    let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
    repo.write(
        "plancd.yaml",
        &config.replace("roles:\n", "roles:\n  architect: { command: [\"sh\", \"-c\", \"echo 42 > answer && cat answer > out.txt\"] }\n"),
    );
    repo.commit("an architect");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stderr.contains("[spec_mismatch]: the debugger reports a spec mismatch: the test wants 42"), "{}", run.stderr);
    let chain = repo.git(&["log", "--format=%B", "refs/ai/tasks/p/t"]);
    assert!(chain.contains("t_branch_01 did not fix it; t_branch_02 (spec_mismatch) opened for the architect"), "{chain}");
    let status: serde_json::Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/p/t:status.json"])).unwrap();
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(status["branch_todos"], serde_json::json!(["t_branch_01", "t_branch_02"]));
    let branch: serde_json::Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/p/t_branch_02:status.json"])).unwrap();
    assert_eq!((branch["role"].as_str(), branch["branch"]["branch_reason"].as_str()), (Some("architect"), Some("spec_mismatch")));
    assert!(branch["branch"]["debug_instructions"].as_str().unwrap().contains("the test wants 42"), "{branch}");
    assert_eq!(repo.git(&["show", "ai/p/t/1:answer"]).trim(), "42");
}

#[test]
fn a_spec_mismatch_with_no_architect_to_revise_it_goes_to_a_person() {
    let repo = with_a_debugger_that_finds_a_spec_mismatch("");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    let status: serde_json::Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/p/t:status.json"])).unwrap();
    assert_eq!((status["phase"].as_str(), status["reason"].as_str()), (Some("Escalated"), Some("SpecMismatch")));
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("the test wants 42") && message.contains("configure an architect"), "{message}");
    assert_eq!(status["branch_todos"], serde_json::json!(["t_branch_01"]));
}
