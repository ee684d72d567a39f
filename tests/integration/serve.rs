//! `plancd serve` as a controller: it reacts to commits, webhooks and reconcile requests,
//! answers health, readiness and metrics, and stops cleanly on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Repo, plancd_command};

/// A controller running in `repo`, killed when dropped; its JSON log goes to `log`.
pub(crate) struct Controller {
    pub(crate) child: Child,
    pub(crate) port: u16,
    log: tempfile::NamedTempFile,
}

impl Controller {
    /// Stops it as an operator would (SIGTERM: claims released, sandboxes ended); its exit
    /// code, or `None` when it had to be killed after 30 s.
    pub(crate) fn stop(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(exit) = self.child.try_wait().ok().flatten() {
                return exit.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn start(repo: &Repo, env: &[(&str, &str)]) -> Controller {
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
pub(crate) fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<(u16, String)> {
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

pub(crate) fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) {
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
    // The gauges are counted from the refs when the pass ends, a moment after its last record.
    wait_for(Duration::from_secs(20), || scrape(&c).contains("phase=\"Succeeded\"} 1"));
    let metrics = scrape(&c);
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
    assert!(!c.log().contains("\"trigger\":\"webhook\""), "{}", c.log());
    let (code, text) = push(&sig, "push", body);
    assert_eq!(code, 200, "{text}");
    assert_eq!(text.trim(), format!("pass started for {}", repo.path().file_name().unwrap().to_string_lossy()));
    wait_for(Duration::from_secs(20), || c.log().contains("\"trigger\":\"webhook\""));
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

/// The sum of the samples of `name` whose labels include `labels`; `None` when there is none.
pub(crate) fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = metrics
        .lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

pub(crate) fn scrape(c: &Controller) -> String {
    let (code, metrics) = http(c.port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(code, 200);
    metrics
}

/// Seen: branch todos counted as tasks (one escalation showed as 2 Escalated + 1 Failed), no
/// workflow or role label, and series that appeared only once something happened.
#[test]
fn metrics_count_tasks_apart_from_branch_todos_by_workflow_and_role_with_zeros_from_the_start() {
    let repo = crate::observe::debugged();
    let c = start(&repo, &[]);
    let source = repo.path().file_name().unwrap().to_str().unwrap().to_owned();
    wait_for(Duration::from_secs(60), || sample(&scrape(&c), "plancd_tasks", &[("workflow", "wf"), ("phase", "Escalated")]) == Some(1.0));
    let m = scrape(&c);
    let wf = [("source", source.as_str()), ("workflow", "wf")];
    let tasks = |phase: &str| sample(&m, "plancd_tasks", &[wf[0], wf[1], ("phase", phase)]);
    assert_eq!(
        (tasks("Succeeded"), tasks("Escalated"), tasks("Failed"), tasks("Debugging")),
        (Some(1.0), Some(1.0), Some(0.0), Some(0.0)),
        "{m}"
    );
    assert_eq!(sample(&m, "plancd_tasks", &wf), Some(2.0), "two tasks in all: {m}");
    let branches = sample(&m, "plancd_branch_todos", &wf).unwrap();
    assert!(branches >= 2.0, "a's and b's branch todos, counted apart: {m}");
    // Attempts by workflow, role and outcome; retries are the branch todos' attempts here.
    let attempts = |role: &str, outcome: &str| sample(&m, "plancd_attempts_total", &[wf[1], ("role", role), ("outcome", outcome)]);
    assert_eq!(attempts("coder", "debugging"), Some(2.0), "{m}");
    assert!(attempts("debugger", "succeeded").unwrap() >= 1.0, "{m}");
    assert_eq!(attempts("tester", "failed"), Some(0.0), "a series at 0 for every role and outcome: {m}");
    assert!(sample(&m, "plancd_attempt_retries_total", &[wf[1], ("role", "debugger")]).unwrap() >= 2.0, "{m}");
    assert_eq!(sample(&m, "plancd_attempt_retries_total", &[wf[1], ("role", "coder")]), Some(0.0), "{m}");
    // The controller's own series.
    assert_eq!(sample(&m, "plancd_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0), "{m}");
    assert!(sample(&m, "plancd_last_successful_pass_timestamp_seconds", &[wf[0]]).unwrap() > 1.7e9, "{m}");
    for zero in ["plancd_git_push_failures_total", "plancd_forge_failures_total"] {
        assert_eq!(sample(&m, zero, &[wf[0]]), Some(0.0), "{zero} at 0: {m}");
    }
    assert_eq!(sample(&m, "plancd_workflow_spend_usd", &wf), Some(0.0), "{m}");
    assert_eq!(sample(&m, "plancd_workflow_budget_usd", &wf), Some(0.0), "{m}");
    // a's success took its own attempt and its branch todo's, one level deep; b escalated, so
    // the workflow is not satisfied.
    let success = |name: &str, role: &str| sample(&m, name, &[wf[1], ("role", role)]);
    assert_eq!(success("plancd_attempts_per_success_count", "coder"), Some(1.0), "{m}");
    assert_eq!(success("plancd_attempts_per_success_sum", "coder"), Some(2.0), "{m}");
    assert_eq!(success("plancd_branch_depth_per_success_sum", "coder"), Some(1.0), "{m}");
    assert_eq!(success("plancd_attempts_per_success_count", "tester"), Some(0.0), "{m}");
    assert_eq!(sample(&m, "plancd_workflow_time_to_satisfied_seconds", &wf), Some(0.0), "{m}");
    assert_eq!(sample(&m, "plancd_forge_rate_limit_remaining", &[wf[0]]), Some(0.0), "no forge, nothing heard: {m}");
}

/// Seen: nothing told how long a plan commit took to be satisfied, or what a success took.
#[test]
fn metrics_time_a_workflow_from_its_plan_commit_to_satisfied() {
    let repo = repo_with_agent();
    repo.write("plans/p.yaml", PLAN);
    // Committed a minute ago: the time to satisfied counts from the commit, not from the pass.
    let ago = (jiff::Timestamp::now().as_second() - 60).to_string();
    crate::util::git_command(repo.path()).args(["add", "-A"]).status().unwrap();
    let committed = crate::util::git_command(repo.path())
        .args(["commit", "-q", "-m", "a plan"])
        .env("GIT_COMMITTER_DATE", format!("{ago} +0000"))
        .status()
        .unwrap();
    assert!(committed.success());
    let c = start(&repo, &[]);
    let p = [("workflow", "p")];
    wait_for(Duration::from_secs(60), || sample(&scrape(&c), "plancd_workflow_time_to_satisfied_seconds", &p).is_some_and(|s| s > 0.0));
    let m = scrape(&c);
    let seconds = sample(&m, "plancd_workflow_time_to_satisfied_seconds", &p).unwrap();
    assert!((60.0..600.0).contains(&seconds), "a minute and the pass: {seconds}\n{m}");
    let coder = [p[0], ("role", "coder")];
    assert_eq!(sample(&m, "plancd_attempts_per_success_count", &coder), Some(1.0), "{m}");
    assert_eq!(sample(&m, "plancd_attempts_per_success_sum", &coder), Some(1.0), "{m}");
    assert_eq!(sample(&m, "plancd_attempts_per_success_bucket", &[coder[0], coder[1], ("le", "1.0")]), Some(1.0), "{m}");
    assert_eq!(sample(&m, "plancd_branch_depth_per_success_sum", &coder), Some(0.0), "passed on its own: {m}");
    assert_eq!(sample(&m, "plancd_branch_depth_per_success_count", &coder), Some(1.0), "{m}");
}

/// Seen: nothing showed how much of GitHub's rate limit was left before it ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_forges_rate_limit_from_its_answers() {
    use crate::fake_github::{FakeGitHub, RATE_LIMIT};
    crate::util::within(180, async {
        let fake = FakeGitHub::start("", crate::action::TOKEN).await;
        let remote = crate::util::bare();
        let repo = crate::action::repo(&fake, remote.path());
        let c = tokio::task::spawn_blocking(move || {
            let c = start(&repo, &[("GITHUB_TOKEN", crate::action::TOKEN)]);
            let m = scrape(&c);
            let source = repo.path().file_name().unwrap().to_str().unwrap().to_owned();
            // Present from the start; then what the pass's last answer said.
            assert!(sample(&m, "plancd_forge_rate_limit", &[("source", source.as_str())]).is_some(), "{m}");
            let limit = || sample(&scrape(&c), "plancd_forge_rate_limit", &[("source", source.as_str())]);
            wait_for(Duration::from_secs(120), || limit() == Some(RATE_LIMIT as f64));
            (c, repo, source)
        })
        .await
        .unwrap();
        let (c, _repo, source) = c;
        let calls = fake.calls().await.len() as f64;
        let m = tokio::task::spawn_blocking(move || scrape(&c)).await.unwrap();
        let remaining = sample(&m, "plancd_forge_rate_limit_remaining", &[("source", source.as_str())]).unwrap();
        assert!(
            calls > 0.0 && remaining < RATE_LIMIT as f64 && remaining >= RATE_LIMIT as f64 - calls,
            "{remaining} left after {calls} calls: {m}"
        );
        assert!(fake.with(|s| s.pulls.len()) == 2, "the pass opened its pull requests");
    })
    .await;
}

/// Every expression of deploy/prometheus/alerts.yaml and deploy/grafana/plancd.json names only
/// series that a running `plancd serve` exports (`up` is Prometheus's own); promtool checks
/// the rules when it is installed.
#[test]
fn the_shipped_alerts_and_dashboard_use_only_series_plancd_serve_exports() {
    let repo = repo_with_agent();
    repo.write(
        "plancd.yaml",
        "branch: main\nmodels:\n  default: { provider: openai, base_url: \"http://127.0.0.1:9/v1\", model: m, api_key_env: NO_KEY }\nroles:\n  coder: { command: [\"sh\", \"-c\", \"cp answer out.txt\"] }\n  architect: { model: default }\nbudget: { usd_per_workflow: 2.5 }\n",
    );
    repo.write("plans/p.yaml", PLAN);
    repo.commit("a plan");
    let c = start(&repo, &[]);
    let m = scrape(&c);
    let exported: std::collections::BTreeSet<&str> =
        m.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(|l| l.split(['{', ' ']).next().unwrap()).collect();
    // Present from the start: the workflow's series and each configured model's.
    assert_eq!(sample(&m, "plancd_workflow_budget_usd", &[("workflow", "p")]), Some(2.5), "{m}");
    assert_eq!(
        sample(&m, "plancd_model_tokens_total", &[("workflow", "p"), ("role", "architect"), ("model", "default")]),
        Some(0.0),
        "{m}"
    );

    let root = crate::util::project_root();
    let text = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yaml")).unwrap();
    let rules = plancd::spec::Document::parse(text.as_bytes(), plancd::spec::Format::Yaml, &plancd::spec::Limits::default()).unwrap().value;
    assert_eq!(rules["kind"], "PrometheusRule");
    let alerts: Vec<&serde_json::Value> =
        rules["spec"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    let names: Vec<&str> = alerts.iter().map(|a| a["alert"].as_str().unwrap()).collect();
    for wanted in ["PlancdWorkflowFailureRateHigh", "PlancdTaskRetryRateHigh", "PlancdControllerDown", "PlancdSpendOverBudget"] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("deploy/grafana/plancd.json")).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut exprs: Vec<String> = alerts.iter().map(|a| a["expr"].as_str().unwrap().to_owned()).collect();
    exprs.extend(panels.iter().flat_map(|p| p["targets"].as_array().unwrap()).map(|t| t["expr"].as_str().unwrap().to_owned()));
    let mut used = 0;
    for expr in &exprs {
        for name in series_names(expr) {
            used += 1;
            assert!(name == "up" || exported.contains(name.as_str()), "`{name}` of `{expr}` is not exported:\n{m}");
        }
    }
    assert!(used >= exprs.len(), "every expression names a series");

    match std::process::Command::new("promtool").arg("--version").output() {
        Ok(_) => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("rules.yaml");
            let groups = serde_json::json!({ "groups": rules["spec"]["groups"] });
            std::fs::write(&file, serde_json::to_string(&groups).unwrap()).unwrap();
            let out = std::process::Command::new("promtool").args(["check", "rules"]).arg(&file).output().unwrap();
            assert!(out.status.success(), "promtool: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        Err(_) => eprintln!("promtool is not installed (Debian: apt-get install prometheus): the rules' syntax is not checked"),
    }
}

/// The series a PromQL expression selects: the `plancd_` names (and `up`) outside label
/// matchers, strings and ranges.
fn series_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut word, mut skip_until) = (String::new(), None::<char>);
    for ch in expr.chars().chain([' ']) {
        if let Some(end) = skip_until {
            if ch == end {
                skip_until = None;
            }
            continue;
        }
        if ch.is_ascii_alphanumeric() || ch == '_' || ch == ':' {
            word.push(ch);
            continue;
        }
        let w = std::mem::take(&mut word);
        if w.starts_with("plancd_") || w == "up" {
            out.push(w);
        }
        skip_until = match ch {
            '{' => Some('}'),
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
    }
    out
}

#[test]
fn series_names_are_read_from_promql() {
    assert_eq!(
        series_names(
            "sum by (workflow) (increase(plancd_attempts_total{outcome=~\"a|b\"}[1h])) / plancd_x > 0.2 or absent(up{job=\"plancd\"})"
        ),
        ["plancd_attempts_total", "plancd_x", "up"]
    );
}

/// Seen: a push that failed was never counted (`plancd_git_push_failures_total` stayed empty).
#[test]
fn a_failed_push_is_counted() {
    let repo = repo_with_agent();
    repo.write("plans/p.yaml", PLAN);
    repo.commit("a plan");
    let gone = tempfile::tempdir().unwrap();
    repo.git(&["remote", "add", "origin", gone.path().join("missing.git").to_str().unwrap()]);
    let c = start(&repo, &[]);
    let source = repo.path().file_name().unwrap().to_str().unwrap().to_owned();
    wait_for(Duration::from_secs(60), || {
        sample(&scrape(&c), "plancd_git_push_failures_total", &[("source", &source)]).unwrap_or(0.0) >= 1.0
    });
    assert_eq!(sample(&scrape(&c), "plancd_forge_failures_total", &[("source", &source)]), Some(0.0));
}
