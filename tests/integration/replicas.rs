//! Several `plancd serve` replicas sharing one remote: they coordinate only through its refs
//! (claims and every later write are compare-and-swap pushes), a killed replica's claims expire
//! and are taken over, and no result is published twice.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Repo, bare, git_in, plancd_command};

const LAYERS: usize = 6;
const WIDTH: usize = 10;
/// The killed replica's claims expire this long after they were taken: the tasks' timeout
/// plus `lease_grace_seconds`.
const TASK_TIMEOUT: u64 = 8;

/// A replica, killed when dropped.
struct Replica {
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn task_id(layer: usize, i: usize) -> String {
    format!("t{layer}{i}")
}

/// 60 tasks in 6 layers of 10; each task after the first layer depends on two of the layer
/// before. The agent takes a moment, then writes `out/<task>.txt`.
fn plan() -> String {
    let mut out = String::from("todo_list_id: big\ntitle: Sixty tasks\ntasks:\n");
    for layer in 0..LAYERS {
        for i in 0..WIDTH {
            let id = task_id(layer, i);
            out.push_str(&format!("  - id: {id}\n    title: Task {id}\n    agent_role: coder\n    timeout_seconds: {TASK_TIMEOUT}\n"));
            if layer > 0 {
                out.push_str(&format!("    dependencies: [{}, {}]\n", task_id(layer - 1, i), task_id(layer - 1, (i + 1) % WIDTH)));
            }
            out.push_str(&format!(
                "    outputs: [out/{id}.txt]\n    acceptance_criteria:\n      tests: [{{cmd: \"grep -qx {id} out/{id}.txt\"}}]\n"
            ));
        }
    }
    out
}

const AGENT: &str = r#"#!/bin/sh
# Writes out/<task>.txt after a moment of work.
id=$(sed -n 's/^  "task_id": "\([^"]*\)".*/\1/p' "$PLANCD_TASK")
sleep 0.3
mkdir -p out && echo "$id" > "out/$id.txt"
"#;

/// The remote's task refs: task -> (phase, holder).
fn remote_tasks(remote: &Path) -> BTreeMap<String, (String, String)> {
    let format = "%(refname:lstrip=4) %(trailers:key=Plancd-Phase,valueonly,separator=)|%(trailers:key=Plancd-Holder,valueonly,separator=)";
    git_in(remote, &["for-each-ref", &format!("--format={format}"), "refs/ai/tasks/big/"])
        .lines()
        .filter_map(|l| {
            let (task, rest) = l.split_once(' ')?;
            let (phase, holder) = rest.split_once('|')?;
            Some((task.to_owned(), (phase.trim().to_owned(), holder.trim().to_owned())))
        })
        .collect()
}

fn wait_for(limit: Duration, what: &str, replicas: &[Replica], mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > limit {
            let logs: Vec<String> = replicas.iter().map(|r| r.log().lines().rev().take(30).collect::<Vec<_>>().join("\n")).collect();
            panic!("{what}: not within {limit:?}\n{}", logs.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_replica(n: usize, url: &str, dir: &Path) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.join(format!("serve-{n}.yaml"));
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:{port}\"\nresync_seconds: 2\ncache_dir: cache-{n}\nsources:\n  - name: big\n    url: {url}\n    branch: main\n    interval_seconds: 1\n"
        ),
    )
    .unwrap();
    let log = dir.join(format!("replica-{n}.log"));
    let host = format!("replica-{n}");
    // A process group of its own, so that it dies whole, like a container: git pushes in flight
    // and agents included.
    let child = plancd_command(dir, &["serve", "--config", config.to_str().unwrap()], &[("PLANCD_HOST", &host), ("RUST_LOG", "info")])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Replica { child, log }
}

/// The reflog of `name` in the remote: one line per update.
fn updates(remote: &Path, name: &str) -> usize {
    std::fs::read_to_string(remote.join("logs").join(name)).unwrap_or_default().lines().count()
}

#[test]
fn three_replicas_share_a_remote_and_finish_a_plan_after_one_is_killed() {
    let remote = bare();
    // Every ref update the remote takes is logged, so that "written once" can be counted.
    git_in(remote.path(), &["config", "core.logAllRefUpdates", "always"]);
    let url = format!("file://{}", remote.path().display());
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        "branch: main\nconcurrency: 3\nlease_grace_seconds: 3\nroles:\n  coder: { command: [\"sh\", \"agent.sh\"] }\n",
    );
    repo.write("agent.sh", AGENT);
    repo.write("plans/big.yaml", &plan());
    repo.commit("Sixty tasks");
    repo.git(&["push", "-q", &url, "main"]);

    let dir = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Replica> = (0..3).map(|n| start_replica(n, &url, dir.path())).collect();

    // Kill replica 0 (its whole process group) with SIGKILL while it holds a claim, once some work is done.
    wait_for(Duration::from_secs(120), "replica 0 holding a claim after 10 results", &replicas, || {
        let tasks = remote_tasks(remote.path());
        let done = tasks.values().filter(|(phase, _)| phase == "Succeeded").count();
        done >= 10 && tasks.values().any(|(phase, holder)| phase == "Running" && holder.starts_with("replica-0:"))
    });
    let group = format!("-{}", replicas[0].child.id());
    let killed = std::process::Command::new("kill").args(["-KILL", "--", &group]).status().unwrap();
    assert!(killed.success());
    replicas[0].child.wait().unwrap();
    let orphaned: Vec<String> = remote_tasks(remote.path())
        .into_iter()
        .filter(|(_, (phase, holder))| phase == "Running" && holder.starts_with("replica-0:"))
        .map(|(task, _)| task)
        .collect();

    wait_for(Duration::from_secs(300), "every task Succeeded", &replicas, || {
        let tasks = remote_tasks(remote.path());
        tasks.len() == LAYERS * WIDTH && tasks.values().all(|(phase, _)| phase == "Succeeded")
    });
    let logs: Vec<String> = replicas.iter().map(Replica::log).collect();
    drop(replicas);

    for layer in 0..LAYERS {
        for i in 0..WIDTH {
            let id = task_id(layer, i);
            let branch = format!("refs/heads/ai/generated/big/{id}");
            assert_eq!(updates(remote.path(), &branch), 1, "{branch} was written once");
            let tags = git_in(remote.path(), &["for-each-ref", "--format=%(refname)", &format!("refs/tags/ai/big/{id}/")]);
            assert_eq!(tags.trim(), format!("refs/tags/ai/big/{id}/1"), "one result tag for {id}");
            assert_eq!(updates(remote.path(), &format!("refs/tags/ai/big/{id}/1")), 1, "the tag of {id} was written once");
            let file = git_in(remote.path(), &["show", &format!("ai/big/{id}/1:out/{id}.txt")]);
            assert_eq!(file.trim(), id);
            // One claim per task, or a takeover of one the killed replica held.
            let chain = git_in(
                remote.path(),
                &["log", "-z", "--format=%(trailers:key=Plancd-Reason,valueonly,separator=)|%b", &format!("refs/ai/tasks/big/{id}")],
            );
            let records: Vec<&str> = chain.split('\0').map(str::trim).collect();
            let claims: Vec<&&str> = records.iter().filter(|r| r.starts_with("Claimed|") || r.starts_with("TakenOver|")).collect();
            let takeovers: Vec<&&&str> = claims.iter().filter(|r| r.starts_with("TakenOver|")).collect();
            if orphaned.contains(&id) {
                assert_eq!(takeovers.len(), 1, "{id}'s claim was taken over once: {chain}");
                assert!(takeovers[0].contains("replica-0:"), "taken over from the killed replica: {chain}");
            } else {
                assert_eq!((claims.len(), takeovers.len()), (1, 0), "{id} was claimed once: {chain}");
            }
        }
    }
    assert!(!orphaned.is_empty());
    // The surviving replicas did the work between them.
    for (n, log) in logs.iter().enumerate().skip(1) {
        assert!(log.contains("attempt ended"), "replica {n} ran attempts:\n{log}");
    }
}

/// Runs `plancd reconcile --shared` in a clone of `url`, returning the process.
fn shared_reconcile(url: &str, dir: &Path, host: &str) -> Child {
    git_in(dir, &["clone", "-q", "-b", "main", url, "."]);
    plancd_command(dir, &["reconcile", "--shared"], &[("PLANCD_HOST", host)]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn two_shared_reconciles_of_one_remote_split_the_work_and_do_none_twice() {
    let remote = bare();
    git_in(remote.path(), &["config", "core.logAllRefUpdates", "always"]);
    let url = format!("file://{}", remote.path().display());
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nconcurrency: 2\nroles:\n  coder: { command: [\"sh\", \"agent.sh\"] }\n");
    repo.write("agent.sh", AGENT);
    let mut plan = String::from("todo_list_id: big\ntitle: Eight tasks\ntasks:\n");
    for i in 0..8 {
        plan.push_str(&format!(
            "  - id: t0{i}\n    title: Task {i}\n    agent_role: coder\n    outputs: [out/t0{i}.txt]\n    acceptance_criteria:\n      tests: [{{cmd: \"grep -qx t0{i} out/t0{i}.txt\"}}]\n"
        ));
    }
    repo.write("plans/big.yaml", &plan);
    repo.commit("Eight tasks");
    repo.git(&["push", "-q", &url, "main"]);

    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let runs = [shared_reconcile(&url, a.path(), "a"), shared_reconcile(&url, b.path(), "b")];
    let outputs: Vec<std::process::Output> = runs.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let tasks = remote_tasks(remote.path());
    assert_eq!(tasks.len(), 8);
    assert!(tasks.values().all(|(phase, _)| phase == "Succeeded"), "{tasks:?}");
    for i in 0..8 {
        let id = format!("t0{i}");
        assert_eq!(updates(remote.path(), &format!("refs/heads/ai/generated/big/{id}")), 1, "{id}'s result was published once");
        let claims = git_in(
            remote.path(),
            &["log", "--format=%(trailers:key=Plancd-Reason,valueonly,separator=)", &format!("refs/ai/tasks/big/{id}")],
        );
        assert_eq!(claims.lines().filter(|l| *l == "Claimed" || *l == "TakenOver").count(), 1, "{id} was claimed once:\n{claims}");
    }
    // Both ended knowing every task done, whoever did it.
    for dir in [a.path(), b.path()] {
        let status = git_in(dir, &["for-each-ref", "--format=%(contents:subject)", "refs/ai/tasks/big/"]);
        assert_eq!(status.lines().filter(|l| l.starts_with("Succeeded")).count(), 8, "{status}");
    }
}

#[test]
fn shared_without_the_remote_is_bad_input() {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"true\"] }\n");
    repo.write("plans/p.yaml", "todo_list_id: p\ntitle: P\ntasks:\n  - { id: t, title: T, agent_role: coder }\n");
    repo.commit("plan");
    let run = repo.plancd(&["reconcile", "--shared"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no remote `origin` to share"), "{}", run.stderr);
}

#[test]
fn a_request_through_the_remote_is_acknowledged_by_a_controller_serving_it() {
    let remote = bare();
    let url = format!("file://{}", remote.path().display());
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"agent.sh\"] }\n");
    repo.write("agent.sh", AGENT);
    repo.write(
        "plans/one.yaml",
        "todo_list_id: big\ntitle: One\ntasks:\n  - id: t00\n    title: T\n    agent_role: coder\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx t00 out/t00.txt\"}]\n",
    );
    repo.commit("One task");
    repo.git(&["push", "-q", &url, "main"]);
    let dir = tempfile::tempdir().unwrap();
    let replicas = vec![start_replica(0, &url, dir.path())];
    wait_for(Duration::from_secs(60), "the first pass", &replicas, || remote_tasks(remote.path()).values().any(|(p, _)| p == "Succeeded"));

    let checkout = tempfile::tempdir().unwrap();
    git_in(checkout.path(), &["clone", "-q", "-b", "main", &url, "."]);
    let run = crate::util::plancd_in(checkout.path(), &["reconcile", "--request", "--shared", "--timeout", "60"]);
    run.expect_code(0);
    assert!(run.stdout.contains("handled by replica-0:"), "{}", run.stdout);
    // The acknowledgement is on the remote, where the controller wrote it.
    let ack: serde_json::Value =
        serde_json::from_str(&git_in(remote.path(), &["show", "refs/ai/requests/reconcile:request.json"])).unwrap();
    assert!(ack["handled_by"].as_str().is_some_and(|h| h.starts_with("replica-0:")), "{ack}");
}

/// A chain of four slow tasks in a repository pushed to a new bare remote.
fn slow_chain(remote: &Path) -> (Repo, String) {
    let url = format!("file://{}", remote.display());
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        "branch: main\nroles:\n  coder: { command: [\"sh\", \"-c\", \"sleep 1.5; mkdir -p out; touch out/done\"] }\n",
    );
    let mut plan = String::from("todo_list_id: big\ntitle: A chain\ntasks:\n");
    for i in 0..4 {
        let deps = if i == 0 { String::new() } else { format!("    dependencies: [t0{}]\n", i - 1) };
        plan.push_str(&format!("  - id: t0{i}\n    title: Step {i}\n    agent_role: coder\n{deps}"));
    }
    repo.write("plans/chain.yaml", &plan);
    repo.commit("A chain");
    repo.git(&["push", "-q", &url, "main"]);
    (repo, url)
}

#[test]
fn a_shared_pass_starts_nothing_more_once_the_remote_branch_moves() {
    let remote = bare();
    let (repo, url) = slow_chain(remote.path());
    let checkout = tempfile::tempdir().unwrap();
    let run = shared_reconcile(&url, checkout.path(), "a");
    // Once the first task runs, someone pushes a new plan commit.
    let start = Instant::now();
    while !remote_tasks(remote.path()).contains_key("t00") {
        assert!(start.elapsed() < Duration::from_secs(60), "the first task never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    repo.write("README.md", "a newer plan commit\n");
    repo.commit("Newer");
    repo.git(&["push", "-q", &url, "main"]);
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("the remote's branch moved meanwhile"), "{stdout}");
    let done = remote_tasks(remote.path()).values().filter(|(phase, _)| phase == "Succeeded").count();
    assert!((1..4).contains(&done), "{done} of 4 tasks ran: the pass went on after the branch moved");
    // Nothing is left held.
    assert!(remote_tasks(remote.path()).values().all(|(phase, _)| phase != "Running"));
}

#[test]
fn a_shared_reconcile_of_a_branch_that_differs_from_the_remote_is_refused() {
    let remote = bare();
    let (_, url) = slow_chain(remote.path());
    let checkout = tempfile::tempdir().unwrap();
    git_in(checkout.path(), &["clone", "-q", "-b", "main", &url, "."]);
    std::fs::write(checkout.path().join("notes.txt"), "local\n").unwrap();
    git_in(checkout.path(), &["add", "notes.txt"]);
    git_in(checkout.path(), &["commit", "-q", "-m", "not pushed"]);
    let run = crate::util::plancd_in(checkout.path(), &["reconcile", "--shared"]);
    run.expect_code(2);
    assert!(run.stderr.contains("`main` differs from `origin`'s"), "{}", run.stderr);
    assert!(git_in(remote.path(), &["for-each-ref", "refs/ai/"]).is_empty(), "nothing was claimed");
}
