//! A role's egress allowlist (`roles.<role>.network.allow`): a command agent runs `pip download`
//! against a local package index through plancd's egress proxy (the one host allowed) and tries
//! a host that is not; the task succeeds with the downloaded wheel, the refused requests are in
//! its status with their counts, in `plancd status`, `plancd describe` and the pull request. The
//! acceptance tests run offline.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::action::TOKEN;
use crate::fake_github::FakeGitHub;
use crate::util::{Repo, bare, plancd_async, skip, within};

const WHEEL: &str = "tinypkg-1.0-py3-none-any.whl";

/// Writes a pure-Python wheel of `tinypkg` 1.0 (whose module says `VALUE = 42`) with the host's
/// Python; `None` when there is no Python.
fn build_wheel(dir: &Path) -> Option<Vec<u8>> {
    let path = dir.join(WHEEL);
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('tinypkg/__init__.py', 'VALUE = 42\\n')\n    z.writestr('tinypkg-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: tinypkg\\nVersion: 1.0\\n')\n    z.writestr('tinypkg-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: plancd-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n    z.writestr('tinypkg-1.0.dist-info/RECORD', '')\n";
    let ok = Command::new(python()).args(["-c", script]).arg(&path).status().is_ok_and(|s| s.success());
    ok.then(|| std::fs::read(&path).ok()).flatten()
}

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" }
}

/// Whether the process backend's sandbox (the host's /usr) has Python with pip.
fn pip_in_process_sandbox() -> bool {
    Command::new("/usr/bin/env")
        .args(["-i", "PATH=/usr/local/bin:/usr/bin:/bin", "python3", "-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A PEP 503 "simple" index of one wheel on 127.0.0.1 (an ephemeral port); every request's
/// path is kept.
struct Index {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Index {
    async fn start(wheel: Vec<u8>) -> Index {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let port = listener.local_addr().expect("an address").port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&paths);
        let wheel = Arc::new(wheel);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let (seen, wheel) = (Arc::clone(&seen), Arc::clone(&wheel));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    seen.lock().unwrap().push(path.clone());
                    let page = format!("<!DOCTYPE html><html><body><a href=\"/files/{WHEEL}\">{WHEEL}</a></body></html>\n").into_bytes();
                    let (status, kind, body): (&str, &str, &[u8]) = match path.as_str() {
                        "/simple/tinypkg/" => ("200 OK", "text/html", &page),
                        p if p == format!("/files/{WHEEL}") => ("200 OK", "application/octet-stream", &wheel),
                        _ => ("404 Not Found", "text/plain", b"not here\n"),
                    };
                    let reply =
                        format!("HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.write_all(body).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Index { port, paths, task }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The agent: `pip download` from the index (the allowed host), then three requests to a host
/// that is not allowed (two plain HTTP, one HTTPS tunnel), which it shrugs off.
fn agent(port: u16) -> String {
    format!(
        r#"import subprocess, sys, urllib.request
pip = [sys.executable, "-m", "pip", "download", "tinypkg==1.0", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
       "--retries", "0", "--timeout", "60", "--index-url", "http://localhost:{port}/simple/", "--trusted-host", "localhost", "-d", "downloads"]
r = subprocess.run(pip, capture_output=True, text=True)
print(r.stdout, r.stderr)
if r.returncode != 0:
    sys.exit(r.returncode)
for url in ("http://blocked.example/", "http://blocked.example/again", "https://blocked.example/"):
    try:
        urllib.request.urlopen(url, timeout=60)
        print("REACHED", url)
    except Exception as e:
        print("refused:", url, e)
"#
    )
}

/// The acceptance test: the wheel is there and whole, and the test itself has no network.
fn offline_test(port: u16) -> String {
    format!(
        r#"import os, sys, urllib.request, zipfile
assert zipfile.ZipFile("downloads/{WHEEL}").read("tinypkg/__init__.py") == b"VALUE = 42\n"
assert not any(k.lower() in ("http_proxy", "https_proxy") for k in os.environ), "the tests got the proxy"
try:
    urllib.request.urlopen("http://localhost:{port}/simple/tinypkg/", timeout=10)
except OSError:
    print("offline, as it should be")
else:
    sys.exit("the acceptance test reached the network")
"#
    )
}

fn project(fake: &FakeGitHub, origin: &Path, port: u16, docker: bool) -> Repo {
    let repo = Repo::new();
    let sandbox = if docker { "sandbox: { backend: docker }\n" } else { "" };
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\n{sandbox}roles:\n  coder:\n    command: [\"python3\", \"agents/fetch.py\"]\n    network: {{ allow: [\"localhost:{port}\"] }}\nforge:\n  github: {{ repo: acme/widgets, token_env: GITHUB_TOKEN, api_url: \"{}\" }}\n",
            fake.api_url()
        ),
    );
    repo.write("agents/fetch.py", &agent(port));
    repo.write("tests/test_offline.py", &offline_test(port));
    repo.write(
        "plans/net.yaml",
        &format!(
            "todo_list_id: net\ntitle: Network\ntasks:\n  - id: fetch\n    title: Fetch tinypkg\n    agent_role: coder\n    max_attempts: 1\n    timeout_seconds: 900\n    outputs: [downloads/{WHEEL}]\n    acceptance_criteria:\n      tests:\n        - cmd: python3 tests/test_offline.py\n          timeout_seconds: 120\n      files: [tests/test_offline.py]\n"
        ),
    );
    repo.commit("A task that downloads a package");
    repo.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    repo
}

async fn allowed_host_downloads_and_refused_host_is_reported(docker: bool) {
    let wheels = tempfile::tempdir().unwrap();
    let Some(wheel) = build_wheel(wheels.path()) else {
        skip("no python3 on this host to build the test's wheel", "PLANCD_REQUIRE_CLIENTS");
        return;
    };
    let index = Index::start(wheel).await;
    let fake = FakeGitHub::start("", TOKEN).await;
    let origin = bare();
    let repo = project(&fake, origin.path(), index.port, docker);
    let run = plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await;
    run.expect_code(0);
    let log = repo.git(&["show", "refs/ai/tasks/net/fetch:attempts/1/agent.log"]);
    let status: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/net/fetch:status.json"])).unwrap();
    assert_eq!(status["phase"], "Succeeded", "{status}\n{log}");

    // The wheel came through the proxy from the allowed host, and is the result.
    let files = repo.git(&["ls-tree", "-r", "--name-only", "refs/heads/ai/generated/net/fetch"]);
    assert!(files.lines().any(|f| f == format!("downloads/{WHEEL}")), "{files}");
    let paths = index.paths();
    assert!(paths.contains(&"/simple/tinypkg/".to_owned()) && paths.contains(&format!("/files/{WHEEL}")), "{paths:?}");

    // What the proxy did, in the status: the host used, the refusals with their counts.
    let network = &status["network"];
    assert_eq!(network["attempt"], 1, "{network}");
    assert_eq!(network["allow"], serde_json::json!([format!("localhost:{}", index.port)]), "{network}");
    let used = network["used"].as_array().unwrap();
    assert!(used.iter().any(|u| u["host"] == "localhost" && u["port"] == index.port && u["count"].as_u64() >= Some(2)), "{network}");
    let blocked = network["blocked"].as_array().unwrap();
    let count = |port: u16| blocked.iter().find(|b| b["host"] == "blocked.example" && b["port"] == port).map(|b| b["count"].clone());
    assert_eq!((count(80), count(443)), (Some(2.into()), Some(1.into())), "{network}\n{log}");
    assert_eq!(network["blocked_total"], 3, "{network}");
    let egress = repo.git(&["show", "refs/ai/tasks/net/fetch:attempts/1/egress.log"]);
    assert!(egress.contains("CONNECT blocked.example:443 refused (NotAllowed)"), "{egress}");

    // Shown where people look.
    let shown = plancd_async(repo.path(), &["status"], &[]).await;
    assert!(
        shown.stdout.contains("blocked network requests")
            && shown.stdout.contains("net/fetch attempt 1: blocked.example:80 ×2, blocked.example:443 ×1"),
        "{}",
        shown.all()
    );
    let described = plancd_async(repo.path(), &["describe", "net/fetch"], &[]).await;
    assert!(described.stdout.contains("blocked 3 request(s): blocked.example:80 ×2, blocked.example:443 ×1"), "{}", described.all());
    let body = fake.with(|s| s.pulls.iter().map(|p| p["body"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>().join("\n"));
    assert!(body.contains("### Blocked network requests") && body.contains("> [!WARNING]"), "{body}");
    assert!(body.contains("| `blocked.example` | 80 | 2 |") && body.contains("| `blocked.example` | 443 | 1 |"), "{body}");
}

#[tokio::test]
async fn on_process_an_allowed_host_serves_pip_and_a_refused_one_is_counted_in_status_and_the_pull_request() {
    if !pip_in_process_sandbox() {
        skip("the process sandbox (the host's /usr) has no python3 with pip", "PLANCD_REQUIRE_CLIENTS");
        return;
    }
    within(900, allowed_host_downloads_and_refused_host_is_reported(false)).await;
}

#[tokio::test]
async fn on_docker_an_allowed_host_serves_pip_and_a_refused_one_is_counted_in_status_and_the_pull_request() {
    if !crate::docker_sessions::engine_with_image() {
        return;
    }
    within(900, allowed_host_downloads_and_refused_host_is_reported(true)).await;
}
