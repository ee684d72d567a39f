//! Benchmarks of controller mode, each next to a baseline measured in the same run:
//!
//! 1. commit-to-first-agent-start latency in watch mode (p50, p90), against the latency of the
//!    file system notification alone;
//! 2. the CPU a watching controller uses while nothing happens, against the same time asleep;
//! 3. the memory (RSS) of a controller that knows 10,000 satisfied tasks, against an idle one.
//!
//! Run with `cargo bench --bench serve`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{Repository, Signature};
use plancd::config::{Config, Env};
use plancd::ops::reconcile::{OpenFuture, SandboxOpener};
use plancd::ops::serve::{ServeConfig, ServeOptions, SourceConfig, serve};
use plancd::reconcile::Event;
use plancd_sandbox::Sandbox;
use plancd_sandbox::fake::FakeSandbox;
use tokio::sync::watch;

fn commit(repo: &Repository, files: &[(&str, String)]) {
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (path, text) in files {
        update.upsert(*path, repo.blob(text.as_bytes()).expect("blob"), git2::FileMode::Blob);
    }
    let parent = repo.find_reference("refs/heads/main").ok().and_then(|r| r.target()).map(|o| repo.find_commit(o).expect("commit"));
    let base = match &parent {
        Some(p) => p.tree().expect("tree"),
        None => repo.find_tree(repo.treebuilder(None).expect("builder").write().expect("tree")).expect("tree"),
    };
    let tree = repo.find_tree(update.create_updated(repo, &base).expect("tree")).expect("tree");
    let sig = Signature::now("bench", "bench@localhost").expect("sig");
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "change", &tree, &parents).expect("commit");
}

fn fake_opener() -> SandboxOpener {
    let fake = FakeSandbox::new(|_, _| plancd_sandbox::ExecOutcome { exit_code: Some(0), ..Default::default() });
    Arc::new(move |_: &Config| -> OpenFuture {
        let fake = fake.clone();
        Box::pin(async move { Ok(Arc::new(fake) as Arc<dyn Sandbox>) })
    })
}

fn plan(n: usize) -> String {
    let mut text = String::from("todo_list_id: w\ntitle: W\ntasks:\n");
    for i in 0..n {
        text.push_str(&format!("  - {{id: t{i}, title: T{i}, agent_role: coder, acceptance_criteria: {{tests: [{{cmd: 'true'}}]}}}}\n"));
    }
    text
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Commit a new task, wait for its agent to start; many times.
async fn latency() {
    let dir = tempfile::tempdir().expect("dir");
    let repo = Repository::init(dir.path()).expect("init");
    commit(&repo, &[("plancd.yaml", "branch: main\nroles:\n  coder: { command: [agent] }\n".into()), ("plans/w.yaml", plan(1))]);
    let started: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let seen = started.clone();
    let events: plancd::reconcile::EventSink = Arc::new(move |e: &Event| {
        if let Event::Started { key, .. } = e {
            seen.lock().expect("not poisoned").push((key.task.clone(), Instant::now()));
        }
    });
    let (stop, cancel) = watch::channel(false);
    let config = ServeConfig {
        sources: vec![SourceConfig { name: Some("bench".into()), path: Some(dir.path().to_path_buf()), ..SourceConfig::default() }],
        resync_seconds: Some(3600),
        ..ServeConfig::default()
    };
    let opts = ServeOptions { config, env: Env::default(), sandbox: fake_opener(), cancel, http: false, events: Some(events) };
    let controller = tokio::spawn(serve(opts));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut samples = Vec::new();
    let mut notify_only = Vec::new();
    for n in 2..=31 {
        let committed = Instant::now();
        commit(&repo, &[("plans/w.yaml", plan(n))]);
        let want = format!("t{}", n - 1);
        loop {
            if let Some((_, at)) = started.lock().expect("not poisoned").iter().find(|(t, _)| *t == want) {
                samples.push(at.duration_since(committed));
                break;
            }
            assert!(committed.elapsed() < Duration::from_secs(10), "no agent started for {want}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        notify_only.push(notification_latency(dir.path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = controller.await;
    let (p50, p90) = (percentile(&mut samples, 0.5), percentile(&mut samples, 0.9));
    let base = percentile(&mut notify_only, 0.5);
    println!(
        "commit to first agent start (watch mode, {} commits): p50 {:.1} ms, p90 {:.1} ms; file notification alone p50 {:.2} ms",
        samples.len(),
        p50.as_secs_f64() * 1000.0,
        p90.as_secs_f64() * 1000.0,
        base.as_secs_f64() * 1000.0
    );
}

/// How long inotify takes to report a file written in `dir`.
fn notification_latency(dir: &Path) -> Duration {
    use notify::Watcher;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut w = notify::recommended_watcher(move |e| {
        let _ = tx.send(e);
    })
    .expect("watcher");
    w.watch(dir, notify::RecursiveMode::NonRecursive).expect("watch");
    let t = Instant::now();
    std::fs::write(dir.join("probe"), "x").expect("write");
    let _ = rx.recv_timeout(Duration::from_secs(2));
    t.elapsed()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn plancd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_plancd")
}

/// A `plancd serve` child on `dir`, after its first pass; the caller kills and reaps it.
#[allow(clippy::zombie_processes)] // returned to the caller, which waits for it
fn controller(dir: &Path) -> std::process::Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = Command::new(plancd_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("plancd runs");
    let start = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return child;
            }
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the controller never became ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn idle_and_memory() {
    let small = tempfile::tempdir().expect("dir");
    let repo = Repository::init(small.path()).expect("init");
    commit(&repo, &[("plancd.yaml", "branch: main\n".into())]);
    let mut idle = controller(small.path());
    let ticks_per_second = 100.0;
    let before = cpu_ticks(idle.id());
    let wall = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let used = (cpu_ticks(idle.id()) - before) as f64 / ticks_per_second;
    let share = used / wall.elapsed().as_secs_f64() * 100.0;
    let idle_rss = rss_kib(idle.id());
    let _ = idle.kill();
    let _ = idle.wait();
    println!(
        "idle watching controller: {used:.2} s of CPU in {:.0} s ({share:.2}% of one core); sleeping: 0.00%",
        wall.elapsed().as_secs_f64()
    );

    // 10,000 satisfied tasks: reconcile them once (fake agents), then start the controller.
    let big = tempfile::tempdir().expect("dir");
    let repo = Repository::init(big.path()).expect("init");
    let mut files = vec![("plancd.yaml", "branch: main\nconcurrency: 16\nroles:\n  coder: { command: [agent] }\n".to_owned())];
    let names: Vec<String> = (0..100).map(|f| format!("plans/w{f:03}.yaml")).collect();
    for (f, name) in names.iter().enumerate() {
        files.push((name.as_str(), plan(100).replace("todo_list_id: w\n", &format!("todo_list_id: w{f:03}\n"))));
    }
    commit(&repo, &files);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (_tx, cancel) = watch::channel(false);
    let opts = plancd::ops::reconcile::ReconcileOptions {
        repo: big.path().to_path_buf(),
        branch: None,
        env: Env::default(),
        sandbox: fake_opener(),
        events: None,
        cancel,
        shared: false,
        remote: None,
    };
    let report = runtime.block_on(plancd::ops::reconcile::reconcile(opts)).expect("the tasks reconcile");
    assert_eq!(report.attempts.len(), 10_000);
    let _ = Command::new("git").args(["-C", &big.path().to_string_lossy(), "pack-refs", "--all"]).status();
    let mut full = controller(big.path());
    let rss = rss_kib(full.id());
    let _ = full.kill();
    let _ = full.wait();
    println!(
        "controller RSS: {:.1} MiB knowing 10,000 satisfied tasks; {:.1} MiB knowing none",
        rss as f64 / 1024.0,
        idle_rss as f64 / 1024.0
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(latency());
    idle_and_memory();
}
