//! What a person sees of the work afterwards: `plancd events` (the audit trail from the task
//! refs' chains) and `plancd describe` (one task in one screen), on a repository whose tasks
//! went through a branch todo that fixed the work and one that could not.

use serde_json::Value;

use crate::util::Repo;

/// Tasks a -> b. The coder writes the wrong answer; the debugger fixes a's work, never b's, so
/// a succeeds through its branch todo and b is escalated (`max_branch_depth: 1`).
pub(crate) fn debugged() -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        "branch: main\nmax_branch_depth: 1\nroles:\n  coder: { command: [\"sh\", \"agents/code.sh\"] }\n  debugger: { command: [\"sh\", \"agents/debug.sh\"] }\n",
    );
    repo.write(
        "agents/code.sh",
        "#!/bin/sh\nset -e\nmkdir -p out\nid=$(python3 -c \"import json,os; print(json.load(open(os.environ['PLANCD_TASK']))['task_id'])\")\necho \"wrong $id\" > out/$id.txt\n",
    );
    repo.write("agents/debug.sh", "#!/bin/sh\nset -e\nif [ -f out/a.txt ] && [ ! -f out/b.txt ]; then echo 'done by a' > out/a.txt; fi\n");
    repo.write("plans/wf.yaml", &plan("Write out/a.txt."));
    repo.commit("Add the plan");
    repo
}

fn plan(a_description: &str) -> String {
    let task = |id: &str, description: &str, deps: &str| {
        format!(
            "  - id: {id}\n    title: Task {id}\n    description: {description}\n    agent_role: coder\n    dependencies: [{deps}]\n    failure_routing: {{ test_failure: debugger, unknown: debugger, implementation_bug: debugger }}\n    acceptance_criteria:\n      tests:\n        - cmd: grep -q 'done by {id}' out/{id}.txt\n          timeout_seconds: 30\n"
        )
    };
    format!("todo_list_id: wf\ntitle: Two steps\ntasks:\n{}{}", task("a", a_description, ""), task("b", "Write out/b.txt.", "a"))
}

#[test]
fn events_list_every_state_change_with_branch_todos_under_their_parent() {
    let repo = debugged();
    repo.plancd(&["reconcile"]).no_panic();
    let run = repo.plancd(&["events"]);
    run.expect_code(0);
    let text = &run.stdout;
    assert!(text.starts_with("AGE"), "{text}");
    for want in ["wf/a ↳ branch_01", "Pending → Running", "Running → Debugging", "BranchTodoOpened", "wf/b", "Escalated"] {
        assert!(text.contains(want), "`{want}` in\n{text}");
    }
    // Every status commit is one event, oldest first.
    let commits: usize = ["a", "a_branch_01", "b"]
        .iter()
        .map(|t| repo.git(&["rev-list", "--count", &format!("refs/ai/tasks/wf/{t}")]).trim().parse::<usize>().unwrap())
        .sum();
    let json: Value = serde_json::from_str(&repo.plancd(&["events", "-o", "json"]).expect_code(0).stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert!(commits > 0 && rows.len() >= commits, "{} events for {commits} status commits", rows.len());
    let times: Vec<&str> = rows.iter().map(|r| r["time"].as_str().unwrap()).collect();
    let parsed: Vec<jiff::Timestamp> = times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");
    let opened = rows.iter().find(|r| r["task"] == "a" && r["reason"] == "BranchTodoOpened").expect("a's branch todo opened");
    assert_eq!((opened["from"].as_str(), opened["phase"].as_str()), (Some("Running"), Some("Debugging")));
    assert!(opened["failure_type"].is_string() && opened["reason_text"].as_str().unwrap().contains("branch todo"), "{opened:#}");
    assert!(rows.iter().any(|r| r["task"] == "a_branch_01" && r["parent"] == "a"));

    // One task: its own changes and its branch todos', nothing of b's.
    let one: Value = serde_json::from_str(&repo.plancd(&["events", "wf/a", "-o", "json"]).expect_code(0).stdout).unwrap();
    let tasks: std::collections::BTreeSet<&str> = one.as_array().unwrap().iter().map(|r| r["task"].as_str().unwrap()).collect();
    assert_eq!(tasks.into_iter().collect::<Vec<_>>(), ["a", "a_branch_01"]);

    // --since: nothing from the future, everything since a day ago, bad input named.
    assert_eq!(repo.plancd(&["events", "--since", "2999-01-01T00:00:00Z"]).expect_code(0).stdout, "no events since 2999-01-01T00:00:00Z\n");
    let day: Value = serde_json::from_str(&repo.plancd(&["events", "--since", "1d", "-o", "json"]).expect_code(0).stdout).unwrap();
    assert_eq!(day.as_array().unwrap().len(), rows.len());
    let bad = repo.plancd(&["events", "--since", "yesterday"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("--since") && bad.stderr.contains("yesterday"), "{}", bad.stderr);
    let unknown = repo.plancd(&["events", "wf/nope"]);
    unknown.expect_code(2);
    assert!(unknown.stderr.contains("wf/nope"), "{}", unknown.stderr);
}

#[test]
fn describe_shows_one_task_and_why_its_spec_differs_from_the_plan() {
    let repo = debugged();
    repo.plancd(&["reconcile"]).no_panic();
    let run = repo.plancd(&["describe", "wf/a"]);
    run.expect_code(0);
    let text = &run.stdout;
    for want in [
        "Task:         wf/a",
        "Phase:        Succeeded",
        "(the plan's current spec)",
        "Branch todos:",
        "a_branch_01",
        "Tests that decided (a_branch_01 attempt 1):",
        "passed    grep -q 'done by a' out/a.txt",
        "Branch:       ai/generated/wf/a",
        "Tag:          ai/wf/a/1",
        "Accepted in:  a_branch_01 attempt 1",
        "Events:",
    ] {
        assert!(text.contains(want), "`{want}` in\n{text}");
    }
    // The branch todo's evidence: the failing command.
    assert!(text.contains("| 1 of 1 acceptance test(s) failed"), "{text}");

    // The escalated task: its failure and its branch todo, which could not fix it.
    let b = repo.plancd(&["describe", "wf/b", "-o", "json"]);
    let b: Value = serde_json::from_str(&b.expect_code(0).stdout).unwrap();
    assert_eq!(b["phase"], "Escalated", "{b:#}");
    assert_eq!(b["spec"]["matches"], true);
    let branch = &b["branch_todos"][0];
    assert_eq!(branch["id"], "b_branch_01", "{b:#}");
    assert!(branch["failure_type"].is_string() && !branch["evidence"].as_str().unwrap().is_empty(), "{branch:#}");
    // The tests that decided are the branch todo's last run of b's tests.
    assert_eq!(
        (b["decided_by"]["task"].as_str(), b["decided_by"]["tests"][0]["passed"].as_bool()),
        (Some("b_branch_01"), Some(false)),
        "{b:#}"
    );
    let text = repo.plancd(&["describe", "wf/b"]).expect_code(0).stdout.clone();
    assert!(text.contains("Next:         escalated to a person — fix the plan or its inputs and `plancd retry wf/b`"), "{text}");

    // A plan change: a's own spec changed, b's through a.
    repo.write("plans/wf.yaml", &plan("Write out/a.txt, carefully."));
    repo.commit("Reword task a");
    let a = repo.plancd(&["describe", "wf/a"]).expect_code(0).stdout.clone();
    assert!(a.contains("the plan's is now") && a.contains("its own spec changed"), "{a}");
    assert!(a.contains("Next:         run attempt 2: its spec changed"), "{a}");
    let b = repo.plancd(&["describe", "wf/b"]).expect_code(0).stdout.clone();
    assert!(b.contains("an upstream spec changed: a"), "{b}");

    // A task that never ran: its spec, and what it waits for.
    repo.write("plans/wf.yaml", &format!("{}  - id: c\n    title: Task c\n    agent_role: coder\n    dependencies: [b]\n    acceptance_criteria:\n      tests: [{{cmd: \"true\"}}]\n", plan("Write out/a.txt, carefully.")));
    repo.commit("Add task c");
    let c = repo.plancd(&["describe", "wf/c"]);
    let c = &c.expect_code(0).stdout;
    assert!(
        c.contains("Phase:        Pending")
            && c.contains("it has not run yet; the plan's spec is")
            && c.contains("Next:         waiting on b"),
        "{c}"
    );

    let unknown = repo.plancd(&["describe", "wf/nope"]);
    unknown.expect_code(2);
    assert!(unknown.stderr.contains("no task wf/nope"), "{}", unknown.stderr);
}

/// `plancd status --watch` prints the table again when a task's state changes.
#[test]
fn status_watch_redraws_when_a_phase_changes() {
    use std::io::{BufRead, BufReader};
    let repo = debugged();
    let mut child = crate::util::plancd_command(repo.path(), &["status", "--watch", "--interval", "0.1"], &[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |text: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !seen.iter().any(|l: &String| l.contains(text)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            seen.push(rx.recv_timeout(left).unwrap_or_else(|_| panic!("`{text}` never shown:\n{}", seen.join("\n"))));
        }
    };
    wait_for("wf/a");
    repo.plancd(&["reconcile"]).no_panic();
    wait_for("Escalated");
    wait_for("--- ");
    let _ = child.kill();
    let _ = child.wait();
}

/// `plancd status -o mermaid` and `plancd graph` draw one graph with one node-id scheme: the
/// status adds each task's phase, and branch todos on dashed edges from the task they debug.
#[test]
fn the_status_diagram_is_the_plan_graph_with_phases_and_branch_todos() {
    let repo = debugged();
    repo.plancd(&["reconcile"]).no_panic();
    let graph = repo.plancd(&["graph"]).expect_code(0).stdout.clone();
    let status = repo.plancd(&["status", "-o", "mermaid"]).expect_code(0).stdout.clone();
    assert!(graph.contains("  n_wf__a --> n_wf__b\n"), "{graph}");
    for line in [
        "  n_wf__a[\"a<br/><i>coder</i>: Task a<br/>Succeeded\"]:::succeeded\n",
        "  n_wf__b[\"b<br/><i>coder</i>: Task b<br/>Escalated\"]:::escalated\n",
        "  n_wf__a --> n_wf__b\n",
        "  n_wf__a -.-> n_wf__a_branch_01\n",
        "  n_wf__b -.-> n_wf__b_branch_01\n",
        "  classDef escalated ",
    ] {
        assert!(status.contains(line), "`{line}` in\n{status}");
    }
}
