//! What a running attempt shows while it runs: `plancd logs -f` follows its output from
//! another process, a reconcile announces each step, and logs carry the attempt's fields.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::serve::wait_for;
use crate::util::{Repo, plancd_command};

/// A task whose agent runs the shell script `agent`, with acceptance test `test`.
fn repo_with(agent: &str, test: &str) -> Repo {
    repo_on("", agent, test)
}

/// [`repo_with`], with `config` added to plancd.yaml.
fn repo_on(config: &str, agent: &str, test: &str) -> Repo {
    let repo = Repo::new();
    repo.write("plancd.yaml", &format!("branch: main\n{config}roles:\n  coder: {{ command: [\"sh\", \"-c\", {agent:?}] }}\n"));
    repo.write(
        "plans/p.yaml",
        &format!(
            "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    timeout_seconds: 900\n    acceptance_criteria:\n      tests: [{{cmd: {test:?}, timeout_seconds: 120}}]\n"
        ),
    );
    repo.commit("a plan");
    repo
}

/// The lines `child` prints on stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `text`; panics with what was seen after `limit`.
fn wait_for_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !seen.iter().any(|l| l.contains(text)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("`{text}` never shown:\n{}", seen.join("\n")),
        }
    }
}

/// Waits for `child` to exit; panics after `limit`.
fn exit_of(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            return exit;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills a child left running by a failed assertion.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn logs_follow_shows_a_running_attempts_output_before_it_ends() {
    follow_a_running_attempt("");
}

#[test]
fn logs_follow_shows_a_running_attempts_output_before_it_ends_on_docker() {
    if crate::docker_sessions::engine_with_image() {
        follow_a_running_attempt("sandbox: { backend: docker, image: \"plancd-sandbox:python\" }\n");
    }
}

/// A reconcile on the sandbox `config` names runs an agent that prints lines and then waits;
/// `plancd logs -f` shows them while it waits, and exits 0 when the attempt ends.
fn follow_a_running_attempt(config: &str) {
    // The agent prints a line, then runs until the reconcile is stopped.
    // (The printed text is computed, so that the command's own line does not contain it.)
    let repo = repo_on(
        config,
        "echo \"live line $((40+2))\"; echo \"to stderr $((6*7))\" >&2; sleep 600; echo 42 > out.txt",
        "grep -qx 42 out.txt",
    );
    let reconcile = plancd_command(repo.path(), &["reconcile"], &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut reconcile = Reaper(reconcile);
    let marker = repo.path().join(".git/plancd/live/p/t/1/state.json");
    wait_for(Duration::from_secs(120), || marker.exists());

    let follower = plancd_command(repo.path(), &["logs", "p/t", "-f"], &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut follower = Reaper(follower);
    let rx = lines_of(&mut follower.0);
    let mut seen = Vec::new();
    wait_for_line(&rx, &mut seen, "live line 42", Duration::from_secs(120));
    wait_for_line(&rx, &mut seen, "to stderr 42", Duration::from_secs(60));
    assert_eq!(seen[0], "==> p/t attempt 1 agent.log (live) <==", "{seen:?}");
    assert!(seen[1].starts_with("$ echo \"live line $((40+2))\""), "the command is shown first: {seen:?}");
    // The attempt has not ended: the line came while it ran.
    assert!(reconcile.0.try_wait().unwrap().is_none(), "the reconcile ended before its agent did");
    let refs = repo.git(&["for-each-ref", "--format=%(contents:subject)", "refs/ai/tasks/"]);
    assert!(refs.contains("Running p/t"), "{refs}");
    // Without -f: what it printed so far, and a hint.
    let so_far = repo.plancd(&["logs", "p/t"]);
    so_far.expect_code(0);
    assert!(so_far.stdout.contains("(live, so far) <==") && so_far.stdout.contains("live line 42"), "{}", so_far.stdout);
    assert!(so_far.stderr.contains("attempt 1 of p/t is running (agent); `plancd logs p/t -f` follows it"), "{}", so_far.stderr);
    // The status says which step it is in.
    let status = repo.plancd(&["status"]);
    assert!(status.stdout.lines().any(|l| l.starts_with("p/t ") && l.contains("step: agent")), "{}", status.stdout);

    // Stopping the reconcile ends the attempt; the follower sees that and exits 0.
    let status = std::process::Command::new("kill").args(["-INT", &reconcile.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    exit_of(&mut reconcile.0, Duration::from_secs(60));
    let exit = exit_of(&mut follower.0, Duration::from_secs(60));
    assert_eq!(exit.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(follower.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("attempt 1 of p/t ended (last step: agent)"), "{stderr}");
}

#[test]
fn logs_follow_without_a_running_attempt_prints_the_recorded_logs() {
    let repo = repo_with("echo 'recorded line'; echo 42 > out.txt", "grep -qx 42 out.txt");
    repo.plancd(&["reconcile"]).expect_code(0);
    let followed = repo.plancd(&["logs", "p/t", "-f"]);
    followed.expect_code(0);
    assert!(
        followed.stdout.contains("==> p/t attempt 1 agent.log <==") && followed.stdout.contains("recorded line"),
        "{}",
        followed.stdout
    );
    assert_eq!(followed.stdout, repo.plancd(&["logs", "p/t"]).stdout);
}

#[test]
fn a_reconcile_announces_each_step_and_logs_carry_the_attempts_fields() {
    let repo = repo_with("echo 42 > out.txt", "grep -qx 42 out.txt");
    let run = crate::util::plancd_env(repo.path(), &["reconcile"], &[("RUST_LOG", "plancd=debug")]);
    run.expect_code(0);
    // Not a terminal: a plain line per step.
    for step in ["agent", "tests", "publishing"] {
        assert!(run.stderr.contains(&format!("p/t attempt 1: {step}\n")), "{step}:\n{}", run.stderr);
    }
    // The subscriber is installed, and a step's event carries its attempt's span fields.
    let line = run.stderr.lines().find(|l| l.contains("step=agent")).unwrap_or_else(|| panic!("no step event:\n{}", run.stderr));
    for field in ["workflow=p", "task=t", "attempt=1"] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
}

#[test]
fn a_controller_serves_a_running_attempts_output_and_logs_json_without_debug_strings() {
    use crate::serve::{http, start};
    let repo = repo_with("echo \"served live line $((40+2))\"; sleep 600; echo 42 > out.txt", "grep -qx 42 out.txt");
    let c = start(&repo, &[]);
    // The running attempt is listed, then its output comes through the API while it runs.
    wait_for(Duration::from_secs(120), || {
        http(c.port, "GET", "/api/v1/live", &[], b"").is_some_and(|(code, body)| code == 200 && body.contains("\"task\":\"t\""))
    });
    let mut offsets = [0u64; 4];
    let mut text = String::new();
    wait_for(Duration::from_secs(120), || {
        let path = format!("/api/v1/live/p/t?offsets={}", offsets.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
        let Some((200, body)) = http(c.port, "GET", &path, &[], b"") else { return false };
        let chunk: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((chunk["attempt"].as_u64(), chunk["running"].as_bool()), (Some(1), Some(true)), "{body}");
        for (i, log) in chunk["logs"].as_array().unwrap().iter().enumerate() {
            offsets[i] = log["offset"].as_u64().unwrap();
            text.push_str(log["text"].as_str().unwrap());
        }
        text.contains("served live line 42")
    });
    assert_eq!(http(c.port, "GET", "/api/v1/live/p/nope", &[], b"").map(|(code, _)| code), Some(404));
    // The command line follows it through the API too.
    let server = format!("http://127.0.0.1:{}", c.port);
    let follower = plancd_command(repo.path(), &["logs", "p/t", "-f", "--server", &server], &[]).stdout(Stdio::piped()).spawn().unwrap();
    let mut follower = Reaper(follower);
    let rx = lines_of(&mut follower.0);
    let mut seen = Vec::new();
    wait_for_line(&rx, &mut seen, "served live line 42", Duration::from_secs(120));
    assert!(seen[0].starts_with("==> p/t agent.log (live at http://127.0.0.1:"), "{seen:?}");
    assert!(follower.0.try_wait().unwrap().is_none(), "the follower stops only when the attempt ends");
    let none = crate::util::plancd_env(repo.path(), &["logs", "p/nope", "-f", "--server", &server], &[]);
    none.expect_code(0);
    assert!(none.stderr.contains("no attempt of p/nope runs at http://127.0.0.1:"), "{}", none.stderr);
    // JSON logs: structured fields, no Rust Debug strings.
    let log = c.log();
    let started = log.lines().find(|l| l.contains("pass started")).unwrap_or_else(|| panic!("no pass started:\n{log}"));
    let started: serde_json::Value = serde_json::from_str(started).unwrap();
    assert!(matches!(started["trigger"].as_str(), Some("commit" | "resync" | "request" | "webhook" | "poll")), "{started}");
    assert!(!log.contains("Some(") && !log.contains("Commit") && !log.contains(" { "), "{log}");
    let step = log.lines().find(|l| l.contains("\"attempt step\"")).unwrap_or_else(|| panic!("no step logged:\n{log}"));
    let step: serde_json::Value = serde_json::from_str(step).unwrap();
    assert_eq!(
        (step["workflow"].as_str(), step["task"].as_str(), step["attempt"].as_u64(), step["step"].as_str()),
        (Some("p"), Some("t"), Some(1), Some("agent")),
        "{step}"
    );
}
