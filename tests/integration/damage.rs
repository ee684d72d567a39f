//! Damage to the state: a corrupted task ref is that task's workflow's problem, reported with a
//! repair hint, while every other workflow goes on; a disk that fills up in the middle of an
//! attempt leaves nothing held for ever.

use crate::util::{Repo, plancd_env};

/// Workflows `w1`..`w4`, one task `t` each, whose agent writes `out/<wf>.txt`.
fn four_workflows(note: &str) -> Repo {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"agent.sh\"] }\n");
    repo.write("agent.sh", "#!/bin/sh\nmkdir -p out && echo \"$PLANCD_WORKFLOW\" > \"out/$PLANCD_WORKFLOW.txt\"\n");
    write_plans(&repo, note);
    repo.commit("Four workflows");
    repo
}

fn write_plans(repo: &Repo, note: &str) {
    for wf in ["w1", "w2", "w3", "w4"] {
        let extra = if wf == "w4" { note } else { "" };
        repo.write(
            &format!("plans/{wf}.yaml"),
            &format!(
                "todo_list_id: {wf}\ntitle: W\ntasks:\n  - id: t\n    title: T{extra}\n    agent_role: coder\n    outputs: [out/{wf}.txt]\n    acceptance_criteria:\n      tests: [{{cmd: \"test -s out/{wf}.txt\"}}]\n"
            ),
        );
    }
}

fn subject(repo: &Repo, wf: &str) -> String {
    repo.git(&["log", "-1", "--format=%s", &format!("refs/heads/ai/generated/{wf}/t")]).trim().to_owned()
}

/// Seen 14: garbage in a ref file, a ref at a blob and a ref at a commit that is no status
/// record each stop only their own workflow; `status`, `diff` and `reconcile` name them with a
/// repair hint, and the hint repairs them.
#[test]
fn a_corrupted_task_ref_stops_only_its_workflow_and_says_how_to_repair_it() {
    let repo = four_workflows("");
    repo.plancd(&["reconcile"]).expect_code(0);
    // Damage three of the four workflows' records.
    std::fs::write(repo.path().join(".git/refs/ai/tasks/w1/t"), "this is not a commit id\n").unwrap();
    let blob = repo.git(&["hash-object", "-w", "agent.sh"]);
    repo.git(&["update-ref", "refs/ai/tasks/w2/t", blob.trim()]);
    let plain = repo.git(&["rev-parse", "main"]);
    repo.git(&["update-ref", "refs/ai/tasks/w3/t", plain.trim()]);
    // And give the fourth work to do.
    write_plans(&repo, " again");
    repo.commit("w4 changes");
    let before = subject(&repo, "w4");

    let status = repo.plancd(&["status"]);
    status.expect_code(0);
    for wf in ["w1", "w2", "w3"] {
        let line = status.stdout.lines().find(|l| l.contains(&format!("{wf}/t")) || l.starts_with(wf)).unwrap_or_default();
        assert!(line.contains("Broken"), "{wf} shows as broken:\n{}", status.stdout);
    }
    assert!(status.stdout.contains("git update-ref -d refs/ai/tasks/w2/t"), "the hint:\n{}", status.stdout);
    // Git cannot delete a ref whose file is garbage: the hint says to remove the file.
    assert!(
        status.stdout.contains("refs/ai/tasks/w1/t`, and the task then runs afresh") && status.stdout.contains("rm "),
        "{}",
        status.stdout
    );

    let diff = repo.plancd(&["diff"]);
    diff.no_panic();
    assert_eq!(diff.code, Some(1), "w4 has work:\n{}", diff.all());
    assert!(diff.stderr.contains("w1/t is broken") && diff.stderr.contains("w3/t is broken"), "{}", diff.stderr);

    let run = repo.plancd(&["reconcile"]);
    run.no_panic();
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains("w2/t is broken") && run.stderr.contains("git update-ref -d refs/ai/tasks/w2/t"), "{}", run.stderr);
    assert_ne!(subject(&repo, "w4"), before, "w4 ran again on its new spec");
    let w4 = repo.git(&["log", "-1", "--format=%s", "refs/ai/tasks/w4/t"]);
    assert!(w4.starts_with("Succeeded"), "{w4}");

    // The hint repairs it: each task runs afresh.
    std::fs::remove_file(repo.path().join(".git/refs/ai/tasks/w1/t")).unwrap();
    for wf in ["w2", "w3"] {
        repo.git(&["update-ref", "-d", &format!("refs/ai/tasks/{wf}/t")]);
    }
    repo.plancd(&["reconcile"]).expect_code(0);
}

/// Seen 14: the disk fills up after a task was claimed. The pass fails without a panic and the
/// claim, whose holder is gone, does not keep the task for ever: the next pass takes it over
/// and finishes it.
#[test]
fn a_full_disk_in_the_middle_of_an_attempt_leaves_nothing_held() {
    let repo = four_workflows("");
    let run = plancd_env(repo.path(), &["reconcile"], &[("PLANCD_FAULT_FAIL_WRITES_AFTER", "1")]);
    run.no_panic();
    assert_ne!(run.code, Some(0), "a full disk is no success:\n{}", run.all());
    let held = repo.git(&["for-each-ref", "--format=%(refname) %(contents:subject)", "refs/ai/tasks/"]);
    assert!(held.lines().count() == 1 && held.contains("Running"), "one task was claimed, nothing else written:\n{held}");
    // Once the writer is gone its claim is no one's: `status` says it will be taken over.
    let status = repo.plancd(&["status"]);
    status.expect_code(0);
    assert!(status.stdout.contains("TakeOver") || status.stdout.contains("Pending"), "{}", status.stdout);
    let again = repo.plancd(&["reconcile"]);
    again.expect_code(0);
    let listing = repo.git(&["for-each-ref", "--format=%(contents:subject)", "refs/ai/tasks/"]);
    assert_eq!(listing.lines().filter(|l| l.starts_with("Succeeded")).count(), 4, "{listing}");
}

/// Seen 13: plancd killed while it holds a ref's lock leaves the lock behind, with its record;
/// the next run sees that the writer is dead, removes the lock at once and finishes the work.
#[test]
fn a_lock_left_by_a_killed_plancd_is_recovered_by_the_next_run() {
    let repo = four_workflows("");
    let killed = plancd_env(repo.path(), &["reconcile"], &[("PLANCD_FAULT_KILL_WHILE_LOCKED", "1")]);
    assert_eq!(killed.code, None, "killed by a signal:\n{}", killed.all());
    let locks: Vec<String> = walk(&repo.path().join(".git/refs")).into_iter().filter(|p| p.ends_with(".lock")).collect();
    assert_eq!(locks.len(), 1, "the killed writer's lock is left: {locks:?}");
    let started = std::time::Instant::now();
    repo.plancd(&["reconcile"]).expect_code(0);
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "no wait for a dead writer's lock");
    assert_eq!(walk(&repo.path().join(".git/refs")).into_iter().filter(|p| p.ends_with(".lock")).count(), 0);
    assert!(walk(&repo.path().join(".git/plancd/writers")).is_empty(), "no writer record is left");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
