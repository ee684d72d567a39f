//! The dashboard `plancd serve` serves, over HTTP: the JSON API (overview counts, a workflow's
//! paged tasks, one task), the pages with their Content-Security-Policy, the event stream, the
//! operations (refused unless enabled and authenticated, then the same record as the command
//! line), and `plancd status -o html`.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::{http, start};
use crate::util::Repo;

fn json(port: u16, path: &str) -> Value {
    let (code, body) = http(port, "GET", path, &[], b"").unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The full response head and body of a GET.
fn raw(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut out);
    out
}

#[test]
fn the_api_and_pages_show_the_workflows_their_tasks_and_one_task() {
    let repo = crate::observe::debugged();
    repo.plancd(&["reconcile"]).no_panic();
    let c = start(&repo, &[]);

    let overview = json(c.port, "/api/v1/workflows");
    let wf = &overview["sources"][0]["workflows"][0];
    assert_eq!(wf["id"], "wf", "{overview:#}");
    assert_eq!((wf["tasks"].as_u64(), wf["satisfied"].as_u64(), wf["escalated"].as_u64()), (Some(2), Some(1), Some(1)), "{wf:#}");
    assert!(wf["branch_todos"].as_u64().unwrap() >= 2, "{wf:#}");
    assert_eq!(wf["title"], "Two steps");

    // Paged: a, then its branch todos, then b and its.
    let first = json(c.port, "/api/v1/workflows/wf?limit=1");
    assert_eq!(first["tasks"].as_array().unwrap().len(), 1);
    assert_eq!((first["tasks"][0]["task"].as_str(), first["next"].as_str()), (Some("a"), Some("a")), "{first:#}");
    let total = first["total"].as_u64().unwrap() as usize;
    let rest = json(c.port, "/api/v1/workflows/wf?limit=100&after=a");
    let names: Vec<&str> = rest["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(names.len(), total - 1, "{rest:#}");
    assert!(rest["next"].is_null());
    let b = rest["tasks"].as_array().unwrap().iter().find(|t| t["task"] == "b").unwrap();
    assert_eq!((b["phase"].as_str(), b["standing"].as_str()), (Some("Escalated"), Some("Escalated")));
    assert_eq!(b["dependencies"], serde_json::json!(["a"]));
    assert_eq!(first["pull_requests"][0]["branch"], "ai/generated/wf/a", "{first:#}");

    let task = json(c.port, "/api/v1/workflows/wf/tasks/b");
    assert_eq!(task["phase"], "Escalated");
    assert_eq!(task["decided_by"]["task"], "b_branch_01", "{task:#}");
    assert!(task["logs"].as_array().unwrap().iter().any(|f| f["name"] == "tests.log"), "{task:#}");
    let a = json(c.port, "/api/v1/workflows/wf/tasks/a");
    assert_eq!(a["provenance"]["Plancd-Task"], "a", "{a:#}");
    let logs = json(c.port, "/api/v1/workflows/wf/tasks/a/logs?attempt=1");
    assert_eq!(logs["attempt"], 1);
    assert_eq!(http(c.port, "GET", "/api/v1/workflows/nope", &[], b"").unwrap().0, 404);
    assert_eq!(http(c.port, "GET", "/api/v1/workflows/wf/tasks/nope", &[], b"").unwrap().0, 404);

    // The pages: server-rendered, with a strict policy and no inline script.
    let page = raw(c.port, "/ui");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let head = page.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'"), "{head}");
    assert!(page.contains("data-workflow=\"wf\"") && page.contains("1/2"), "{page}");
    let graph = raw(c.port, "/ui/workflows/wf");
    for (task, phase) in [("a", "Succeeded"), ("b", "Escalated"), ("a_branch_01", "Succeeded")] {
        assert!(graph.contains(&format!("data-task=\"{task}\" data-phase=\"{phase}\"")), "{task} {phase} in\n{graph}");
    }
    assert!(!graph.contains("<script>"), "no inline script");
    let b_page = raw(c.port, "/ui/workflows/wf/tasks/b");
    assert!(b_page.contains("Tests that decided") && b_page.contains("grep -q &#39;done by b&#39; out/b.txt"), "{b_page}");
    assert!(raw(c.port, "/ui/workflows/wf/tasks/nope").starts_with("HTTP/1.1 404"));
    assert!(raw(c.port, "/ui/assets/app.js").contains("EventSource"));

    // A new commit of the plans is read again (the plans are kept only while branches stay).
    let plan = std::fs::read_to_string(repo.path().join("plans/wf.yaml")).unwrap();
    repo.write("plans/wf.yaml", &format!("{plan}  - id: c\n    title: Task c\n    agent_role: coder\n    dependencies: [b]\n    acceptance_criteria:\n      tests: [{{cmd: \"true\"}}]\n"));
    repo.commit("Add task c");
    let now = json(c.port, "/api/v1/workflows");
    assert_eq!(now["sources"][0]["workflows"][0]["tasks"], 3, "{now:#}");
}

/// A workflow of many tasks comes in pages, and its overview counts them all.
#[test]
fn many_tasks_come_in_pages() {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"true\"] }\n");
    let mut plan = String::from("todo_list_id: big\ntitle: Big\ntasks:\n");
    for i in 0..450 {
        plan.push_str(&format!("  - {{id: t{i:03}, title: T, agent_role: coder, acceptance_criteria: {{tests: [{{cmd: 'true'}}]}}}}\n"));
    }
    repo.write("plans/big.yaml", &plan);
    repo.commit("a big plan");
    // Suspended: its tasks are listed, none runs.
    repo.plancd(&["suspend", "big"]).expect_code(0);
    let c = start(&repo, &[]);
    let overview = json(c.port, "/api/v1/workflows");
    assert_eq!(overview["sources"][0]["workflows"][0]["tasks"], 450, "{overview:#}");
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let path = if after.is_empty() {
            "/api/v1/workflows/big?limit=200".to_owned()
        } else {
            format!("/api/v1/workflows/big?limit=200&after={after}")
        };
        let page = json(c.port, &path);
        seen.extend(page["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    let want: Vec<String> = (0..450).map(|i| format!("t{i:03}")).collect();
    assert_eq!(seen, want);
}

/// Opens `/api/v1/events`, runs `act`, and reads events until one names `task`; returns it and
/// the stream, still open.
fn wait_for_event(port: u16, task: &str, act: impl FnOnce()) -> (String, BufReader<std::net::TcpStream>) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(stream, "GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    act();
    let started = Instant::now();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the event stream ended");
        }
        if line.starts_with("data:") && line.contains(&format!("\"{task}\"")) {
            return (line, reader);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no event for {task}");
    }
}

#[test]
fn a_task_ref_that_moves_is_an_event_and_open_streams_do_not_keep_the_server_from_stopping() {
    let repo = crate::observe::debugged();
    repo.plancd(&["reconcile"]).no_panic();
    let mut c = start(&repo, &[]);
    let (event, _open) = wait_for_event(c.port, "b", || {
        repo.plancd(&["retry", "wf/b"]).expect_code(0);
    });
    let data: Value = serde_json::from_str(event.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(data["workflow"], "wf");
    assert!(data["tasks"].as_array().unwrap().iter().any(|t| t == "b"), "{data}");
    assert_eq!(c.stop(), Some(0), "SIGTERM stops the server with a stream open");
}

/// One task that waits for approval.
fn approval() -> Repo {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"-c\", \"echo 42 > out.txt\"] }\n");
    repo.write(
        "plans/p.yaml",
        "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    requires_approval: true\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt\"}]\n",
    );
    repo.commit("plan");
    repo.plancd(&["reconcile"]).expect_code(0);
    assert!(repo.git(&["log", "-1", "--format=%s", "refs/ai/tasks/p/t"]).starts_with("NeedsApproval"));
    repo
}

#[test]
fn operations_are_refused_unless_enabled_and_authenticated() {
    let repo = approval();
    let off = start(&repo, &[("PLANCD_UI_TOKEN", "t0ken")]);
    let (code, body) = http(off.port, "POST", "/api/v1/workflows/p/tasks/t/approve", &[("Authorization", "Bearer t0ken")], b"").unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("operations are off"), "{body}");
    drop(off);
    let c = start(&repo, &[("PLANCD_UI_ACTIONS", "1"), ("PLANCD_UI_TOKEN", "t0ken")]);
    // Once its first pass is over: a pass that read the refs after the approval would run the
    // task at once, and the records below would be the run's.
    crate::serve::wait_for(Duration::from_secs(20), || http(c.port, "GET", "/readyz", &[], b"").is_some_and(|(code, _)| code == 200));
    let post = |headers: &[(&str, &str)], body: &[u8]| http(c.port, "POST", "/api/v1/workflows/p/tasks/t/approve", headers, body).unwrap();
    assert_eq!(post(&[], b"").0, 401);
    assert_eq!(post(&[("Authorization", "Bearer wrong")], b"").0, 401);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(post(&form, b"token=nope&by=ann").0, 401);
    assert_eq!(repo.git(&["rev-list", "--count", "refs/ai/tasks/p/t"]).trim(), "1", "nothing written");
    let (code, body) = post(&form, b"token=t0ken&by=ann%40example.com");
    assert_eq!(code, 200, "{body}");
    // The record `plancd approve --as ann@example.com` writes.
    assert!(repo.git(&["log", "-1", "--format=%s", "refs/ai/tasks/p/t"]).starts_with("Approved p/t"));
    let status: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/p/t:status.json"])).unwrap();
    assert_eq!((status["phase"].as_str(), status["by"].as_str()), (Some("Approved"), Some("ann@example.com")));
    let trailer = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-By,valueonly)", "refs/ai/tasks/p/t"]);
    assert_eq!(trailer.trim(), "ann@example.com");
    // Twice: refused as the command line refuses it, and nothing more is written.
    let (code, body) = post(&[("Authorization", "Bearer t0ken")], b"");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("approved for its current spec already"), "{body}");
    assert_eq!(repo.git(&["rev-list", "--count", "refs/ai/tasks/p/t"]).trim(), "2");
    // A browser's form is sent back to the task's page.
    let (code, _) = http(
        c.port,
        "POST",
        "/api/v1/workflows/p/suspend",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "text/html")],
        b"token=t0ken",
    )
    .unwrap();
    assert_eq!(code, 303);
    // Reconcile now: a pass of the source.
    let (code, body) = http(c.port, "POST", "/api/v1/reconcile", &[("Authorization", "Bearer t0ken")], b"").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(repo.path().file_name().unwrap().to_str().unwrap()), "{body}");
    assert_eq!(http(c.port, "POST", "/api/v1/reconcile", &[], b"").unwrap().0, 401);
    let record: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/workflows/p:workflow.json"])).unwrap();
    assert_eq!((record["suspended"].as_bool(), record["by"].as_str()), (Some(true), Some("dashboard")), "who: the default name");
}

#[test]
fn status_writes_the_pages_as_a_static_site() {
    let repo = crate::observe::debugged();
    repo.plancd(&["reconcile"]).no_panic();
    let run = repo.plancd(&["status", "-o", "html", "site"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("wrote "), "{}", run.stdout);
    let site = repo.path().join("site");
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(index.contains("href=\"workflows/wf/index.html\"") && index.contains("href=\"assets/style.css\""), "{index}");
    let wf = std::fs::read_to_string(site.join("workflows/wf/index.html")).unwrap();
    assert!(
        wf.contains("data-task=\"b\" data-phase=\"Escalated\"") && wf.contains("href=\"../../workflows/wf/tasks/b/index.html\""),
        "{wf}"
    );
    let b = std::fs::read_to_string(site.join("workflows/wf/tasks/b/index.html")).unwrap();
    assert!(b.contains("Tests that decided") && !b.contains("app.js"), "{b}");
    assert!(site.join("workflows/wf/tasks/a_branch_01/index.html").exists());
}
