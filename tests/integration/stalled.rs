//! One workflow's problem stays in that workflow: validation knows the configuration (a role
//! with no agent is an error at the task's `agent_role`), and `validate`, `diff` and `reconcile`
//! say so alike; a reconcile runs every valid workflow and reports an invalid one as Stalled
//! (PlanInvalid), exit 1; only a broken plancd.yaml stops everything (exit 2).

use serde_json::Value;

use crate::util::Repo;

/// plancd.yaml with a command agent for the coder only.
const CODER_ONLY: &str = "branch: main\nroles:\n  coder: { command: [\"sh\", \"agents/write.sh\"] }\n";

const AGENT: &str = "#!/bin/sh\nset -e\nmkdir -p out\nid=$(python3 -c 'import json,os; print(json.load(open(os.environ[\"PLANCD_TASK\"]))[\"task_id\"])')\necho \"done by $id\" > out/$id.txt\n";

/// A plan `wf` with one coder task `id`, tested.
fn plan(wf: &str, id: &str) -> String {
    format!(
        "todo_list_id: {wf}\ntitle: {wf}\ntasks:\n  - id: {id}\n    title: Task {id}\n    agent_role: coder\n    acceptance_criteria:\n      tests:\n        - cmd: grep -q 'done by {id}' out/{id}.txt\n          timeout_seconds: 30\n"
    )
}

/// `plan(wf, id)` plus a tester task `review`, whose `agent_role` value is at 13:17.
fn plan_with_review(wf: &str, id: &str) -> String {
    format!(
        "{}  - id: review\n    title: Review\n    agent_role: tester\n    dependencies: [{id}]\n    acceptance_criteria:\n      tests:\n        - cmd: test -f out/{id}.txt\n",
        plan(wf, id)
    )
}

/// A repository with a valid workflow `good` and a workflow `bad` whose tester has no agent.
fn two_workflows() -> Repo {
    let repo = Repo::new();
    repo.write("plancd.yaml", CODER_ONLY).write("agents/write.sh", AGENT);
    repo.write("plans/good.yaml", &plan("good", "a"));
    repo.write("plans/bad.yaml", &plan_with_review("bad", "b"));
    repo.commit("Two workflows, one with a role that has no agent");
    repo
}

const NO_AGENT_AT: &str = "plans/bad.yaml:13:17: error[no-agent]: tasks[1].agent_role: task `review`: no agent plays role `tester`: plancd.yaml has no roles.tester";
const NO_AGENT_HELP: &str = "help: add roles.tester to plancd.yaml";

#[test]
fn a_role_with_no_agent_is_an_error_at_the_tasks_agent_role_in_validate_and_diff() {
    let repo = two_workflows();
    let validate = repo.plancd(&["validate"]);
    validate.expect_code(2);
    assert!(validate.stdout.contains(NO_AGENT_AT), "{}", validate.stdout);
    assert!(validate.stdout.contains(NO_AGENT_HELP), "{}", validate.stdout);
    // Tasks are not counted as roles, and nothing points at 1:1.
    assert!(!validate.all().contains(":1:1:"), "{}", validate.all());

    let diff = repo.plancd(&["diff"]);
    diff.expect_code(2);
    assert!(diff.all().contains(NO_AGENT_AT), "{}", diff.all());
    // The valid workflow is still diffed.
    assert!(diff.stdout.contains("good/a") && diff.stdout.contains("Run"), "{}", diff.stdout);
    assert!(diff.stdout.contains("! bad") && diff.stdout.contains("Stalled"), "{}", diff.stdout);
    assert!(!diff.stdout.contains("bad/b"), "nothing of the invalid workflow would run:\n{}", diff.stdout);
}

#[test]
fn a_model_role_whose_model_is_not_defined_is_an_error_too() {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { model: fast }\nmodels:\n  slow: { provider: scripted, file: r.yaml }\n");
    repo.write("plans/wf.yaml", &plan("wf", "a"));
    repo.commit("A role played by an undefined model");
    let run = repo.plancd(&["validate"]);
    run.expect_code(2);
    assert!(
        run.stdout.contains("plans/wf.yaml:6:17: error[no-agent]: tasks[0].agent_role: task `a`: roles.coder.model names `fast`"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_reconcile_runs_the_valid_workflows_and_reports_the_invalid_one_as_stalled() {
    let repo = two_workflows();
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    // The valid workflow ran and published its result.
    assert_eq!(repo.git(&["show", "ai/generated/good/a:out/a.txt"]), "done by a\n");
    assert!(run.stdout.contains("1/1 tasks satisfied, 1 attempt(s) run, 1 workflow(s) stalled"), "{}", run.stdout);
    // The invalid one ran nothing, and says why and where.
    assert_eq!(repo.git(&["for-each-ref", "refs/ai/tasks/bad/", "refs/heads/ai/generated/bad/"]), "");
    assert!(run.stderr.contains("workflow bad is Stalled (PlanInvalid)"), "{}", run.stderr);
    assert!(run.stderr.contains(NO_AGENT_AT), "{}", run.stderr);

    // `plancd status` shows the stalled workflow with its diagnostics, in text and JSON.
    let status = repo.plancd(&["status"]);
    status.expect_code(0);
    assert!(status.stdout.contains("workflow bad: Stalled (PlanInvalid)"), "{}", status.stdout);
    assert!(status.stdout.contains(NO_AGENT_AT), "{}", status.stdout);
    let json: Value = serde_json::from_str(&repo.plancd(&["status", "-o", "json"]).stdout).unwrap();
    let stalled = &json["stalled"][0];
    assert_eq!((stalled["workflow"].as_str(), stalled["reason"].as_str()), (Some("bad"), Some("PlanInvalid")));
    assert_eq!(stalled["diagnostics"][0]["code"], "no-agent");
    assert_eq!(stalled["diagnostics"][0]["field"], "tasks[1].agent_role");

    // A second pass does nothing more for the valid workflow and still reports the invalid one.
    let again = repo.plancd(&["reconcile"]);
    again.expect_code(1);
    assert!(again.stdout.contains("1/1 tasks satisfied, 0 attempt(s) run, 1 workflow(s) stalled"), "{}", again.stdout);
}

#[test]
fn the_tasks_of_a_workflow_whose_plan_breaks_are_neither_marked_orphaned_nor_pruned() {
    let repo = Repo::new();
    repo.write("plancd.yaml", &format!("{CODER_ONLY}prune: true\n")).write("agents/write.sh", AGENT);
    repo.write("plans/good.yaml", &plan("good", "a"));
    repo.write("plans/bad.yaml", &plan("bad", "b"));
    repo.commit("Two valid workflows");
    repo.plancd(&["reconcile"]).expect_code(0);
    let before = repo.git(&["for-each-ref", "refs/ai/tasks/bad/", "refs/heads/ai/generated/bad/"]);
    assert_eq!(before.lines().count(), 2, "{before}");

    // The plan breaks so badly that its workflow id cannot be read from it.
    repo.write("plans/bad.yaml", "todo_list_id: [bad\ntasks: {\n");
    repo.write("plans/good.yaml", &plan("good", "a2"));
    repo.commit("Break one plan, change the other");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    assert!(run.stderr.contains("plans/bad.yaml is Stalled (PlanInvalid)"), "{}", run.stderr);
    assert_eq!(repo.git(&["show", "ai/generated/good/a2:out/a2.txt"]), "done by a2\n", "the other workflow ran");
    // The broken workflow's task refs and results are untouched: same tips, nothing pruned.
    assert_eq!(repo.git(&["for-each-ref", "refs/ai/tasks/bad/", "refs/heads/ai/generated/bad/"]), before);
    // The task removed from the valid plan is pruned, as `prune: true` asks.
    assert_eq!(repo.git(&["for-each-ref", "refs/ai/tasks/good/a"]), "");
}

#[test]
fn a_broken_plancd_yaml_still_stops_every_workflow_with_exit_2() {
    let repo = two_workflows();
    repo.write("plancd.yaml", &format!("{CODER_ONLY}concurency: 3\n"));
    repo.commit("Break the configuration");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(2);
    assert!(run.stderr.contains("plancd.yaml:4:1: error[unknown-field]: concurency"), "{}", run.stderr);
    assert_eq!(repo.git(&["for-each-ref", "refs/ai/", "refs/heads/ai/"]), "", "nothing ran");
}
