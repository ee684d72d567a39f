//! `plancd serve` as a controller: it reacts to commits, webhooks and reconcile requests,
//! answers health, readiness and metrics, and stops cleanly on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Repo, plancd_command};

/// A controller running in `repo`, killed when dropped; its JSON log goes to `log`.
struct Controller {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl Controller {
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(repo: &Repo, env: &[(&str, &str)]) -> Controller {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = plancd_command(repo.path(), &["serve", "--listen", &listen], env)
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let c = Controller { child, port, log };
    wait_for(Duration::from_secs(20), || http(c.port, "GET", "/healthz", &[], b"").is_some_and(|(code, _)| code == 200));
    c
}

/// One HTTP/1.1 request; the status code and body, or `None` when nothing answers.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    let _ = stream.write_all(body);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((code, body))
}

fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn repo_with_agent() -> Repo {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"-c\", \"cp answer out.txt\"] }\n");
    repo.write("answer", "42\n");
    repo.write("README", "nothing to do yet\n");
    repo.commit("start");
    repo
}

const PLAN: &str = "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt\"}]\n";

fn task_refs(repo: &Repo) -> String {
    repo.git(&["for-each-ref", "--format=%(refname) %(contents:subject)", "refs/ai/tasks/"])
}

#[test]
fn a_commit_starts_a_pass_and_health_readiness_and_metrics_answer() {
    let repo = repo_with_agent();
    let c = start(&repo, &[]);
    wait_for(Duration::from_secs(20), || http(c.port, "GET", "/readyz", &[], b"").is_some_and(|(code, _)| code == 200));
    assert_eq!(task_refs(&repo), "");
    repo.write("plans/p.yaml", PLAN);
    repo.commit("add a plan");
    wait_for(Duration::from_secs(20), || task_refs(&repo).contains("Succeeded p/t attempt 1"));
    assert_eq!(repo.git(&["tag", "--list"]).trim(), "ai/p/t/1");
    let (code, metrics) = http(c.port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(code, 200);
    for name in [
        "plancd_reconcile_duration_seconds_count",
        "plancd_passes_total",
        "plancd_tasks{",
        "plancd_attempts_total{",
        "plancd_sandbox_exec_duration_seconds_count{kind=\"agent\"}",
        "plancd_queue_depth",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    assert!(metrics.contains("plancd_attempts_total{source=") && metrics.contains("outcome=\"succeeded\"} 1"), "{metrics}");
    assert!(metrics.contains("phase=\"Succeeded\"} 1"), "{metrics}");
}

#[test]
fn signed_push_webhooks_start_a_pass_and_others_are_refused() {
    let repo = repo_with_agent();
    let c = start(&repo, &[("PLANCD_WEBHOOK_SECRET", "s3cret")]);
    wait_for(Duration::from_secs(20), || http(c.port, "GET", "/readyz", &[], b"").is_some_and(|(code, _)| code == 200));
    let body = br#"{"ref":"refs/heads/main","repository":{"full_name":"o/r"}}"#;
    let sig = plancd::ops::serve::sign(b"s3cret", body);
    let push = |sig: &str, event: &str, body: &[u8]| {
        http(c.port, "POST", "/hooks/github", &[("X-GitHub-Event", event), ("X-Hub-Signature-256", sig)], body).unwrap()
    };
    assert_eq!(push("sha256=0000", "push", body).0, 401);
    assert_eq!(push(&plancd::ops::serve::sign(b"wrong", body), "push", body).0, 401);
    let big = vec![b' '; 2 << 20];
    assert_eq!(push(&plancd::ops::serve::sign(b"s3cret", &big), "push", &big).0, 413);
    let issues = br#"{"action":"opened"}"#;
    assert_eq!(push(&plancd::ops::serve::sign(b"s3cret", issues), "issues", issues).0, 202);
    let other = br#"{"ref":"refs/heads/dev","repository":{"full_name":"o/r"}}"#;
    assert_eq!(push(&plancd::ops::serve::sign(b"s3cret", other), "push", other).0, 202);
    assert!(!c.log().contains("\"trigger\":\"Webhook\""), "{}", c.log());
    let (code, text) = push(&sig, "push", body);
    assert_eq!(code, 200, "{text}");
    assert_eq!(text.trim(), format!("pass started for {}", repo.path().file_name().unwrap().to_string_lossy()));
    wait_for(Duration::from_secs(20), || c.log().contains("\"trigger\":\"Webhook\""));
}

#[test]
fn a_reconcile_request_is_picked_up_and_acknowledged() {
    let repo = repo_with_agent();
    let _c = start(&repo, &[]);
    let run = repo.plancd(&["reconcile", "--request", "--timeout", "30"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("handled by ") && run.stdout.trim_end().ends_with(": ok"), "{}", run.stdout);
    let log = repo.git(&["log", "--format=%s", "refs/ai/requests/reconcile"]);
    assert!(log.lines().next().unwrap().starts_with("Reconcile handled"), "{log}");
    // Without a controller, the request times out with exit 3.
    drop(_c);
    let lonely = repo.plancd(&["reconcile", "--request", "--timeout", "1"]);
    lonely.expect_code(3);
    assert!(lonely.stderr.contains("no controller acknowledged the request within 1s"), "{}", lonely.stderr);
}

#[test]
fn sigterm_stops_the_controller_with_exit_zero_and_releases_claims() {
    let repo = repo_with_agent();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"-c\", \"sleep 30; cp answer out.txt\"] }\n");
    repo.write("plans/p.yaml", PLAN);
    repo.commit("slow agent");
    let mut c = start(&repo, &[]);
    wait_for(Duration::from_secs(20), || task_refs(&repo).contains("Running p/t"));
    let status = std::process::Command::new("kill").args(["-TERM", &c.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = c.child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
    assert!(task_refs(&repo).contains("Released p/t attempt 1"), "{}", task_refs(&repo));
}
