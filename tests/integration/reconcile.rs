//! `plancd reconcile` end to end with the process sandbox and command agents: published
//! branches, tags and task refs that plain git reads; idempotence; crash safety; two processes
//! at once; nothing of the host environment reaching an agent.

use std::collections::BTreeMap;

use crate::util::{Repo, plancd_command, plancd_env};

/// A diamond: a -> (b, c) -> d. Each agent writes out/<task>.txt; each test checks it and the
/// files of the task's dependencies.
fn diamond() -> Repo {
    diamond_with("")
}

/// The diamond, with `extra` appended to the agent's script.
fn diamond_with(extra: &str) -> Repo {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nconcurrency: 2\nroles:\n  coder: { command: [\"sh\", \"agents/write.sh\"] }\n");
    repo.write(
        "agents/write.sh",
        &format!("#!/bin/sh\nset -e\ntask=$(python3 -c 'import json,os; print(json.load(open(os.environ[\"PLANCD_TASK\"]))[\"task_id\"])')\nmkdir -p out\necho \"done by $task\" > out/$task.txt\n{extra}\n"),
    );
    let task = |id: &str, deps: &str, checks: &str| {
        format!(
            "  - id: {id}\n    title: Task {id}\n    agent_role: coder\n    dependencies: [{deps}]\n    outputs: [out/{id}.txt]\n    acceptance_criteria:\n      tests:\n        - cmd: {checks}\n          timeout_seconds: 30\n"
        )
    };
    let plan = format!(
        "todo_list_id: wf\ntitle: Diamond\ntasks:\n{}{}{}{}",
        task("a", "", "grep -q 'done by a' out/a.txt"),
        task("b", "a", "test -f out/a.txt && grep -q 'done by b' out/b.txt"),
        task("c", "a", "test -f out/a.txt && grep -q 'done by c' out/c.txt"),
        task("d", "b, c", "test -f out/b.txt && test -f out/c.txt && grep -q 'done by d' out/d.txt"),
    );
    repo.write("plans/wf.yaml", &plan);
    repo.commit("Add the diamond plan");
    repo
}

/// The end state that matters: per task, its phase line, its result tree and its tags.
fn end_state(repo: &Repo) -> BTreeMap<String, (String, String, Vec<String>)> {
    let mut out = BTreeMap::new();
    for task in ["a", "b", "c", "d"] {
        let subject = repo.git(&["log", "-1", "--format=%s", &format!("refs/ai/tasks/wf/{task}")]);
        let phase = subject.split_whitespace().next().unwrap_or_default().to_owned();
        let tree = repo.git(&["rev-parse", &format!("refs/heads/ai/generated/wf/{task}^{{tree}}")]).trim().to_owned();
        let tags: Vec<String> = repo.git(&["tag", "--list", &format!("ai/wf/{task}/*")]).lines().map(str::to_owned).collect();
        out.insert(task.to_owned(), (phase, tree, tags));
    }
    out
}

#[test]
fn a_plan_with_command_agents_is_published_as_branches_tags_and_task_refs() {
    let repo = diamond();
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stdout.contains("4/4 tasks satisfied, 4 attempt(s) run"), "{}", run.stdout);

    // Plain git reads everything.
    let listing = repo.git(&["for-each-ref", "--format=%(refname) %(contents:subject)", "refs/ai/tasks/"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 4, "{listing}");
    assert!(lines.iter().all(|l| l.contains(" Succeeded wf/") && l.contains(" attempt 1 spec ")), "{listing}");
    let tags = repo.git(&["tag", "--list", "ai/*"]);
    assert_eq!(tags.lines().collect::<Vec<_>>(), ["ai/wf/a/1", "ai/wf/b/1", "ai/wf/c/1", "ai/wf/d/1"]);
    // d's result merges b's and c's results and holds every file.
    let d = "refs/heads/ai/generated/wf/d";
    let files = repo.git(&["ls-tree", "-r", "--name-only", d]);
    for f in ["out/a.txt", "out/b.txt", "out/c.txt", "out/d.txt", "plans/wf.yaml"] {
        assert!(files.lines().any(|l| l == f), "{f} missing from {files}");
    }
    let parents = repo.git(&["log", "-1", "--format=%P", &format!("{d}^")]);
    assert_eq!(parents.split_whitespace().count(), 2, "the base of d merges b and c");
    let trailers = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-Task,valueonly)%(trailers:key=Plancd-Spec-Hash,valueonly)", d]);
    assert!(trailers.starts_with("d\n") && trailers.lines().nth(1).is_some_and(|h| h.len() == 64), "{trailers}");
    // status.json and the logs are in the task ref's tree.
    let status = repo.git(&["show", "refs/ai/tasks/wf/a:status.json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!((status["phase"].as_str(), status["result"]["tag"].as_str()), (Some("Succeeded"), Some("ai/wf/a/1")));
    assert!(repo.git(&["show", "refs/ai/tasks/wf/a:attempts/1/tests.log"]).contains("-> exit 0"));
    // The watched branch and the work tree are untouched.
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(repo.git(&["rev-list", "--count", "main"]).trim(), "1");

    let status = repo.plancd(&["status", "-o", "json"]);
    status.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(report["tasks"].as_array().unwrap().len(), 4);
    let logs = repo.plancd(&["logs", "wf/d"]);
    assert!(logs.expect_code(0).stdout.contains("==> wf/d attempt 1 tests.log <=="), "{}", logs.stdout);
}

#[test]
fn a_second_reconcile_writes_nothing() {
    let repo = diamond();
    repo.plancd(&["reconcile"]).expect_code(0);
    let refs = repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]);
    let objects = repo.git(&["count-objects", "-v"]);
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stdout.contains("4/4 tasks satisfied, 0 attempt(s) run"), "{}", run.stdout);
    assert_eq!(repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]), refs);
    assert_eq!(repo.git(&["count-objects", "-v"]), objects, "not even an unreachable object");
    repo.plancd(&["diff"]).expect_code(0);
}

#[test]
fn a_fresh_clone_takes_the_remotes_records_and_runs_nothing_again() {
    let origin = crate::util::bare();
    let repo = diamond();
    repo.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    repo.plancd(&["reconcile"]).expect_code(0);
    let pushed = crate::util::git_in(origin.path(), &["for-each-ref", "--format=%(refname) %(objectname)", "refs/ai/tasks/"]);
    assert_eq!(pushed.lines().count(), 4, "{pushed}");

    // `git clone` brings the watched branch and the tags, not the records.
    let clone = tempfile::tempdir().unwrap();
    let dir = clone.path().join("clone");
    crate::util::git_in(clone.path(), &["clone", "-q", "-b", "main", origin.path().to_str().unwrap(), "clone"]);
    let run = crate::util::plancd_in(&dir, &["reconcile"]);
    run.expect_code(0);
    assert!(run.stdout.contains("4/4 tasks satisfied, 0 attempt(s) run"), "{}", run.all());
    assert!(!run.stderr.contains("warning"), "{}", run.all());
    assert_eq!(crate::util::git_in(origin.path(), &["for-each-ref", "--format=%(refname) %(objectname)", "refs/ai/tasks/"]), pushed);
    let local = crate::util::git_in(&dir, &["for-each-ref", "--format=%(refname) %(objectname)", "refs/ai/tasks/"]);
    assert_eq!(local, pushed, "the clone holds the remote's records");
    crate::util::git_in(&dir, &["rev-parse", "--verify", "refs/heads/ai/generated/wf/d"]);

    // A record the remote has grown since this repository last saw it is brought in.
    let a = repo.git(&["rev-parse", "refs/ai/tasks/wf/a"]);
    repo.git(&["update-ref", "refs/ai/tasks/wf/a", "refs/ai/tasks/wf/a~1"]);
    crate::util::git_in(origin.path(), &["update-ref", "refs/ai/tasks/wf/a", a.trim()]);
    let older = repo.git(&["rev-parse", "refs/ai/tasks/wf/a"]);
    assert_ne!(older, a);
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stdout.contains("0 attempt(s) run"), "{}", run.all());
    assert_eq!(repo.git(&["rev-parse", "refs/ai/tasks/wf/a"]), a);
}

/// Kills plancd after each of its ref writes in turn (and once more at the same point while it
/// recovers), restarts it, and compares the end state with an uninterrupted run. Returns how
/// many kill points were tried.
fn kill_at_every_write(template: &Repo) -> usize {
    let reference = template.clone_dir();
    reference.plancd(&["reconcile"]).expect_code(0);
    let expected = end_state(&reference);
    let mut tried = 0;
    for n in 1.. {
        let repo = template.clone_dir();
        let limit = n.to_string();
        let killed = plancd_env(repo.path(), &["reconcile"], &[("PLANCD_FAULT_KILL_AFTER_WRITES", &limit)]);
        if killed.code.is_some() {
            // The run finished before its n-th write: every kill point has been tried.
            assert_eq!(killed.code, Some(0), "{killed:?}");
            break;
        }
        tried += 1;
        let _ = plancd_env(repo.path(), &["reconcile"], &[("PLANCD_FAULT_KILL_AFTER_WRITES", &limit)]);
        let finished = repo.plancd(&["reconcile"]);
        finished.expect_code(0);
        let state = end_state(&repo);
        for (task, (phase, tree, tags)) in &state {
            let (_, want_tree, _) = &expected[task];
            assert_eq!(phase, "Succeeded", "kill point {n}: {task}");
            assert_eq!(tree, want_tree, "kill point {n}: {task}'s result differs");
            assert_eq!(tags.len(), 1, "kill point {n}: {task} tagged {tags:?}");
            // The logs of the attempt that produced the result are in the task's ref.
            let attempt = repo.git(&[
                "log",
                "-1",
                "--format=%(trailers:key=Plancd-Attempt,valueonly)",
                &format!("refs/heads/ai/generated/wf/{task}"),
            ]);
            let logs = repo.git(&["ls-tree", "--name-only", &format!("refs/ai/tasks/wf/{task}:attempts/{}/", attempt.trim())]);
            assert!(logs.contains("tests.log") && logs.contains("agent.log"), "kill point {n}: {task} lost its logs");
        }
        // And it is at rest: nothing left to do.
        repo.plancd(&["diff"]).expect_code(0);
    }
    tried
}

#[test]
fn killed_at_every_write_and_restarted_it_ends_as_an_uninterrupted_run() {
    let tried = kill_at_every_write(&diamond());
    eprintln!("crash safety: {tried} kill points tried");
    assert!(tried >= 16, "only {tried} kill points");
}

#[test]
fn a_crash_in_the_middle_of_a_branch_todo_resumes_it() {
    // a's first try is wrong; its branch todo writes what the test wants.
    let template = diamond_with(
        "case \"$task\" in\n  a) echo buggy > out/a.txt ;;\n  a_branch_*) rm -f out/$task.txt; echo 'done by a' > out/a.txt ;;\nesac",
    );
    let reference = template.clone_dir();
    reference.plancd(&["reconcile"]).expect_code(0);
    assert!(reference.git(&["log", "-1", "--format=%s", "refs/ai/tasks/wf/a_branch_01"]).starts_with("Succeeded wf/a_branch_01"));
    let tried = kill_at_every_write(&template);
    eprintln!("crash safety with a branch todo: {tried} kill points tried");
    assert!(tried >= 20, "only {tried} kill points");
}

#[test]
fn two_reconciles_at_once_run_each_task_exactly_once() {
    let repo = diamond_with("sleep 0.3");
    let env = [];
    let mut first = plancd_command(repo.path(), &["reconcile"], &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut second = plancd_command(repo.path(), &["reconcile"], &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());
    for task in ["a", "b", "c", "d"] {
        let claims = repo.git(&["log", "--format=%s", &format!("refs/ai/tasks/wf/{task}")]);
        let runs = claims.lines().filter(|l| l.starts_with("Running ") && (l.ends_with("(Claimed)") || l.ends_with("(TakenOver)"))).count();
        assert_eq!(runs, 1, "{task} ran {runs} times:\n{claims}");
        assert_eq!(repo.git(&["tag", "--list", &format!("ai/wf/{task}/*")]).lines().count(), 1);
    }
}

#[test]
fn nothing_of_the_host_environment_reaches_an_agent() {
    let repo = diamond_with("env > out/$task.env");
    let canary = "plancd-canary-3f9a1c77e2";
    // AGENT_SLEEP is an ordinary variable too: it must not get in either.
    let run = plancd_env(repo.path(), &["reconcile"], &[("PLANCD_TEST_CANARY", canary), ("OPENAI_API_KEY", canary), ("AGENT_SLEEP", "7")]);
    run.expect_code(0);
    let env = repo.git(&["show", "refs/heads/ai/generated/wf/a:out/a.env"]);
    assert!(!env.contains(canary) && !env.contains("AGENT_SLEEP"), "{env}");
    assert!(env.contains("PLANCD_TASK=/run/plancd/task.json"), "{env}");
    // No object in the repository holds it.
    let all = crate::util::git_command(repo.path()).args(["cat-file", "--batch-all-objects", "--batch"]).output().unwrap().stdout;
    assert!(all.windows(canary.len()).all(|w| w != canary.as_bytes()));
    assert!(all.windows(b"AGENT_SLEEP".len()).all(|w| w != b"AGENT_SLEEP"));
}

/// Seen 8: task records are one set per repository, so a pass over a branch other than the
/// watched one (`--branch other`) is refused, with a hint, and leaves the records alone; so is
/// any other command that would write a record for it.
#[test]
fn another_branch_than_the_watched_one_is_refused_and_its_records_left_alone() {
    let repo = diamond();
    repo.plancd(&["reconcile"]).expect_code(0);
    repo.git(&["checkout", "-q", "-b", "other"]);
    let plan = std::fs::read_to_string(repo.path().join("plans/wf.yaml")).unwrap();
    repo.write("plans/wf.yaml", &plan.replace("title: Task a", "title: Task a, elsewhere"));
    repo.commit("A change on another branch");
    repo.git(&["checkout", "-q", "main"]);
    let before = repo.git(&["for-each-ref", "refs/ai/", "refs/heads/ai/", "refs/tags/"]);

    let run = repo.plancd(&["reconcile", "--branch", "other"]);
    run.expect_code(2);
    assert!(run.stderr.contains("`other` is not the watched branch `main`"), "{}", run.stderr);
    assert!(run.stderr.contains("plancd diff --branch other"), "the hint: {}", run.stderr);
    repo.plancd(&["approve", "wf/a", "--branch", "other"]).expect_code(2);
    assert_eq!(repo.git(&["for-each-ref", "refs/ai/", "refs/heads/ai/", "refs/tags/"]), before, "no record was written");

    // Previewing it is fine, and so is naming the watched branch.
    repo.plancd(&["diff", "--branch", "other"]).no_panic();
    repo.plancd(&["reconcile", "--branch", "main"]).expect_code(0);
}
