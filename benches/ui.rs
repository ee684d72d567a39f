//! Benchmark of the dashboard at 10,000 tasks (100 workflows of 100 tasks, every task with a
//! status record), each figure next to a baseline measured in the same process:
//!
//! 1. the overview over HTTP (`GET /api/v1/workflows` and `GET /ui`) once the refs were read,
//!    p50 and p90 of repeated requests (the aim: at most 200 ms), against
//!    `plancd::ops::status::status`, what `plancd status` computes;
//! 2. the first overview after a ref moved (one read of plans and refs), against the same; and
//!    with a page listening to the event stream, the time from the move to its event (the
//!    source is read again before it goes out) and the overview's then;
//! 3. one workflow's page of 200 tasks (`GET /api/v1/workflows/<wf>`);
//! 4. one task's page (`GET /api/v1/workflows/<wf>/tasks/<task>`), the first after its ref moved
//!    and again with nothing moved.
//!
//! Run with `cargo bench --bench ui`. Prints medians and ratios; asserts nothing, because timing
//! on shared machines is noisy.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::{Repository, Signature};
use plancd::config::Env;
use plancd::reconcile::Snapshot;
use plancd::state::{Cost, Phase, Store, TaskKey, TaskStatus};
use plancd::ui::{Dashboard, UiSettings, UiSource};

const WORKFLOWS: usize = 100;
const TASKS: usize = 100;
const RUNS: usize = 20;

fn plan(w: usize) -> String {
    let mut text = format!("todo_list_id: wf{w:03}\ntitle: Workflow {w}\ntasks:\n");
    for i in 0..TASKS {
        let deps = if i == 0 { String::new() } else { format!("t{:03}", i / 2) };
        text.push_str(&format!(
            "  - {{id: t{i:03}, title: Task {i}, agent_role: coder, dependencies: [{deps}], acceptance_criteria: {{tests: [{{cmd: 'true'}}]}}}}\n"
        ));
    }
    text
}

/// A repository whose 10,000 tasks all have records: most succeeded for their current spec,
/// some running, some escalated.
fn repository(dir: &Path) {
    let repo = Repository::init(dir).expect("init");
    let mut update = git2::build::TreeUpdateBuilder::new();
    let config = "branch: main\nroles:\n  coder: { command: [agent] }\nbudget: { usd_per_workflow: 5 }\n";
    update.upsert("plancd.yaml", repo.blob(config.as_bytes()).expect("blob"), git2::FileMode::Blob);
    for w in 0..WORKFLOWS {
        update.upsert(format!("plans/wf{w:03}.yaml"), repo.blob(plan(w).as_bytes()).expect("blob"), git2::FileMode::Blob);
    }
    let empty = repo.find_tree(repo.treebuilder(None).expect("builder").write().expect("tree")).expect("tree");
    let tree = repo.find_tree(update.create_updated(&repo, &empty).expect("tree")).expect("tree");
    let sig = Signature::now("bench", "bench@localhost").expect("sig");
    repo.commit(Some("refs/heads/main"), &sig, &sig, "plans", &tree, &[]).expect("commit");
    repo.set_head("refs/heads/main").expect("head");
    let snapshot = Snapshot::load(dir, None, &Env::default()).expect("snapshot");
    let store = Store::open(dir).expect("store");
    let now = jiff::Timestamp::now();
    for (key, hash) in &snapshot.hashes {
        let n: usize = key.task[1..].parse().unwrap_or(0);
        let phase = match n % 50 {
            7 => Phase::Running,
            13 => Phase::Escalated,
            _ => Phase::Succeeded,
        };
        let mut status = TaskStatus::new(&key.workflow, &key.task, phase, now);
        status.spec_hash = Some(hash.clone());
        status.attempt = 1;
        status.started_at = Some(now);
        status.finished_at = Some(now);
        status.cost = Some(Cost { input_tokens: 1000, output_tokens: 100, usd: 0.001 });
        store.append(key, None, &status, &[]).expect("append");
    }
    // Packed, as a repository that has seen `git gc` keeps its refs.
    let out = std::process::Command::new("git").args(["pack-refs", "--all"]).current_dir(dir).output().expect("git");
    assert!(out.status.success());
}

fn get(port: u16, path: &str) -> (Duration, usize) {
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut body = Vec::new();
    s.read_to_end(&mut body).expect("read");
    assert!(body.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&body[..body.len().min(300)]));
    (started.elapsed(), body.len())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().expect("dir");
    let t = Instant::now();
    repository(dir.path());
    println!("set up {} tasks in {:.1} s", WORKFLOWS * TASKS, t.elapsed().as_secs_f64());
    let env = Env::default();

    let mut baseline: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let report = plancd::ops::status::status(dir.path(), None, &env, None).expect("status");
            assert_eq!(report.tasks.len(), WORKFLOWS * TASKS);
            t.elapsed()
        })
        .collect();
    let base = percentile(&mut baseline, 0.5);
    let mut loads: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let _ = Snapshot::load(dir.path(), None, &env).expect("snapshot");
            t.elapsed()
        })
        .collect();
    println!("(of which loading the plans: p50 {:.1} ms)", ms(percentile(&mut loads, 0.5)));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let source = Arc::new(UiSource::new("bench", dir.path().to_path_buf(), None, None));
    let dashboard = Dashboard::new(vec![source], env.clone(), UiSettings::default());
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Made inside the runtime, so that the poller behind the event stream runs.
    let app = runtime.block_on(async { plancd::ui::router(dashboard.clone()) });
    let _server = runtime.spawn(async move { axum::serve(listener, app).await });

    // First look, then after each ref move: one read of everything.
    let mut cold = Vec::new();
    let store = Store::open(dir.path()).expect("store");
    for i in 0..5 {
        let key = TaskKey::new("wf000", "t007");
        let (tip, mut status) = store.status(&key).expect("read").expect("exists");
        status.message = format!("moved {i}");
        store.append(&key, Some(tip), &status, &[]).expect("append");
        cold.push(get(port, "/api/v1/workflows").0);
    }
    // A task's page: the first read after its ref moved, then again with nothing moved.
    let (mut task_cold, mut task_warm) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let key = TaskKey::new("wf002", "t013");
        let (tip, mut status) = store.status(&key).expect("read").expect("exists");
        status.message = format!("task page {i}");
        store.append(&key, Some(tip), &status, &[]).expect("append");
        task_cold.push(get(port, "/api/v1/workflows/wf002/tasks/t013").0);
        task_warm.push(get(port, "/api/v1/workflows/wf002/tasks/t013").0);
    }
    let mut api: Vec<Duration> = (0..RUNS).map(|_| get(port, "/api/v1/workflows").0).collect();
    let (_, page_bytes) = get(port, "/ui");
    let mut page: Vec<Duration> = (0..RUNS).map(|_| get(port, "/ui").0).collect();
    let mut workflow: Vec<Duration> = (0..RUNS).map(|_| get(port, "/api/v1/workflows/wf050?limit=200").0).collect();

    // With a page listening: a ref moves, the event arrives once the source was read again,
    // and the page's request finds it read.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    write!(s, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut events = std::io::BufReader::new(s);
    let (mut to_event, mut after_event) = (Vec::new(), Vec::new());
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(600)); // the poller's first look
        let key = TaskKey::new("wf001", "t007");
        let (tip, mut status) = store.status(&key).expect("read").expect("exists");
        status.message = format!("listened {i}");
        let moved = Instant::now();
        store.append(&key, Some(tip), &status, &[]).expect("append");
        let mut line = String::new();
        loop {
            line.clear();
            std::io::BufRead::read_line(&mut events, &mut line).expect("an event");
            if line.starts_with("data:") && line.contains("wf001") {
                break;
            }
        }
        to_event.push(moved.elapsed());
        after_event.push(get(port, "/api/v1/workflows").0);
    }

    let (api50, api90) = (percentile(&mut api, 0.5), percentile(&mut api, 0.9));
    println!(
        "overview at {} tasks, GET /api/v1/workflows: p50 {:.1} ms, p90 {:.1} ms (aim: <= 200 ms); `plancd status` computing the same: p50 {:.1} ms ({:.3}x)",
        WORKFLOWS * TASKS,
        ms(api50),
        ms(api90),
        ms(base),
        api50.as_secs_f64() / base.as_secs_f64()
    );
    let page50 = percentile(&mut page, 0.5);
    println!(
        "overview page GET /ui ({page_bytes} bytes): p50 {:.1} ms ({:.3}x of status)",
        ms(page50),
        page50.as_secs_f64() / base.as_secs_f64()
    );
    let cold50 = percentile(&mut cold, 0.5);
    println!(
        "first overview after a task ref moved (the plans kept, every task's record read): p50 {:.1} ms ({:.2}x of status)",
        ms(cold50),
        cold50.as_secs_f64() / base.as_secs_f64()
    );
    let (ev50, after50) = (percentile(&mut to_event, 0.5), percentile(&mut after_event, 0.5));
    println!(
        "with a page listening: a ref move to its event p50 {:.1} ms (the source read again meanwhile); the overview then p50 {:.1} ms ({:.3}x of status)",
        ms(ev50),
        ms(after50),
        after50.as_secs_f64() / base.as_secs_f64()
    );
    let wf50 = percentile(&mut workflow, 0.5);
    println!(
        "one workflow's page of 200 tasks, GET /api/v1/workflows/wf050: p50 {:.1} ms ({:.3}x of status)",
        ms(wf50),
        wf50.as_secs_f64() / base.as_secs_f64()
    );
    let (cold50, warm50) = (percentile(&mut task_cold, 0.5), percentile(&mut task_warm, 0.5));
    println!(
        "one task's page, GET /api/v1/workflows/wf002/tasks/t013: the first after its ref moved p50 {:.1} ms ({:.2}x of status), again with nothing moved p50 {:.1} ms ({:.3}x)",
        ms(cold50),
        cold50.as_secs_f64() / base.as_secs_f64(),
        ms(warm50),
        warm50.as_secs_f64() / base.as_secs_f64()
    );
}
