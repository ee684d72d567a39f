//! Benchmarks of the engine, each printed next to a baseline measured in the same process:
//!
//! 1. publishing results (result commit, branch, tag, status) for 1,000 tasks;
//! 2. a no-op reconcile over 1k and 10k satisfied tasks versus
//!    `git for-each-ref --format='%(refname) %(objectname)'` over the same refs;
//! 3. a 1,000-task random DAG at concurrency 16, with agents that sleep fixed durations:
//!    makespan over the lower bound max(critical path, total work / 16); and with agents that
//!    do nothing: controller overhead per task.
//!
//! The sandbox here is a timer (a session whose commands sleep for the duration their
//! arguments name): what is measured is the controller, not process start-up.
//! Run with `cargo bench --bench reconcile`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use git2::{Repository, Signature};
use plancd::config::{Config, Env};
use plancd::ops::reconcile::{OpenFuture, ReconcileOptions, SandboxOpener, reconcile};
use plancd::publish::{self, Provenance};
use plancd::reconcile::Snapshot;
use plancd::state::{Phase, ResultRef, Store, TaskStatus};
use plancd_sandbox::{CopyOut, CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, Sandbox, SandboxError, Session, SessionSpec};
use tokio::sync::watch;

/// A sandbox whose agent sleeps: `timer-agent` sleeps as many milliseconds as the task's
/// description says; anything else returns at once. Files are kept in memory.
struct TimerSandbox;

struct TimerSession {
    files: std::sync::Mutex<Vec<FileEntry>>,
    work_ms: std::sync::Mutex<u64>,
}

#[async_trait]
impl Sandbox for TimerSandbox {
    fn name(&self) -> &'static str {
        "timer"
    }
    async fn create(&self, _: &SessionSpec) -> Result<Box<dyn Session>, SandboxError> {
        Ok(Box::new(TimerSession { files: Default::default(), work_ms: Default::default() }))
    }
}

#[async_trait]
impl Session for TimerSession {
    fn id(&self) -> &str {
        "timer"
    }
    async fn put_files(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        self.files.lock().expect("not poisoned").extend_from_slice(files);
        Ok(())
    }
    async fn put_meta(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        for f in files.iter().filter(|f| f.path == "task.json") {
            let task: serde_json::Value = serde_json::from_slice(&f.data).expect("task.json is JSON");
            *self.work_ms.lock().expect("not poisoned") = task["description"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0);
        }
        Ok(())
    }
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutcome, SandboxError> {
        let started = Instant::now();
        if req.argv == ["timer-agent"] {
            let ms = *self.work_ms.lock().expect("not poisoned");
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(ExecOutcome { exit_code: Some(0), duration: started.elapsed(), ..Default::default() })
    }
    async fn get_files(&self, _: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
        let mut files = self.files.lock().expect("not poisoned").clone();
        files.push(FileEntry::new("out.txt", "done"));
        Ok(CopyOut { files, skipped: Vec::new() })
    }
    async fn destroy(self: Box<Self>) -> Result<(), SandboxError> {
        Ok(())
    }
}

fn timer_opener() -> SandboxOpener {
    Arc::new(|_: &Config| -> OpenFuture { Box::pin(async { Ok(Arc::new(TimerSandbox) as Arc<dyn Sandbox>) }) })
}

/// A small xorshift generator, so that the DAG is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Per plan file, per task: its dependencies (indexes) and its work in milliseconds.
type Shape = Vec<Vec<(Vec<usize>, u64)>>;

/// A repository with `files` plan files of `per_file` tasks each (chains of dependencies),
/// each task's agent `sleep-ms <its duration>`.
fn repo_with_plans(
    files: usize,
    per_file: usize,
    deps: impl Fn(&mut Rng, usize) -> Vec<usize>,
    work_ms: impl Fn(&mut Rng) -> u64,
) -> (tempfile::TempDir, Shape) {
    // PLANCD_BENCH_DIR puts the repositories elsewhere, e.g. on a tmpfs to take the file
    // system's cost of creating loose objects out of the measurement.
    let dir = match std::env::var_os("PLANCD_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).expect("temp dir"),
        None => tempfile::tempdir().expect("temp dir"),
    };
    let mut init = git2::RepositoryInitOptions::new();
    init.initial_head("main");
    let repo = Repository::init_opts(dir.path(), &init).expect("init");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut shape = Vec::new();
    let mut update = git2::build::TreeUpdateBuilder::new();
    let config = "branch: main\nconcurrency: 16\nroles:\n  coder: { command: [timer-agent] }\n";
    update.upsert("plancd.yaml", repo.blob(config.as_bytes()).expect("blob"), git2::FileMode::Blob);
    for f in 0..files {
        let mut text = format!("todo_list_id: wf{f:03}\ntitle: Workflow {f}\ntasks:\n");
        let mut tasks = Vec::new();
        for i in 0..per_file {
            let d = deps(&mut rng, i);
            let ms = work_ms(&mut rng);
            let list: Vec<String> = d.iter().map(|j| format!("t{j:04}")).collect();
            text.push_str(&format!(
                "  - id: t{i:04}\n    title: Task {i}\n    description: \"{ms}\"\n    agent_role: coder\n    dependencies: [{}]\n",
                list.join(", ")
            ));
            tasks.push((d, ms));
        }
        update.upsert(format!("plans/wf{f:03}.yaml").as_str(), repo.blob(text.as_bytes()).expect("blob"), git2::FileMode::Blob);
        shape.push(tasks);
    }
    let empty = repo.find_tree(repo.treebuilder(None).expect("builder").write().expect("tree")).expect("tree");
    let tree = repo.find_tree(update.create_updated(&repo, &empty).expect("tree")).expect("tree");
    let sig = Signature::now("bench", "bench@localhost").expect("sig");
    repo.commit(Some("refs/heads/main"), &sig, &sig, "plans", &tree, &[]).expect("commit");
    (dir, shape)
}

/// Records every task as published and satisfied, the way a pass does: result commit, branch,
/// tag, status. Returns the time it took.
fn publish_all(dir: &Path) -> Duration {
    let snapshot = Snapshot::load(dir, None, &Env::default()).expect("snapshot");
    let store = Store::open(dir).expect("store");
    let started = Instant::now();
    let watched = snapshot.plan_commit;
    let tree = store.repo().find_commit(watched).expect("commit").tree_id();
    for (key, hash) in &snapshot.hashes {
        let prov = Provenance {
            key: key.clone(),
            spec_hash: hash.clone(),
            attempt: 1,
            agent: "coder: command agent".into(),
            model: "none".into(),
            prompt_hash: "none".into(),
            correlation_id: "bench".into(),
            plan_commit: watched,
        };
        let published = {
            let repo = store.repo();
            let commit = publish::result_commit(&repo, watched, tree, &key.task, "", &prov).expect("result commit");
            publish::publish(&repo, key, commit, 0).expect("publish")
        };
        let mut status = TaskStatus::new(&key.workflow, &key.task, Phase::Succeeded, jiff::Timestamp::now());
        status.spec_hash = Some(hash.clone());
        status.attempt = 1;
        status.accepted = 1;
        status.result = Some(ResultRef {
            commit: published.commit.to_string(),
            branch: published.branch,
            tag: Some(published.tag),
            files: vec![],
            pull_request: None,
            accepted_in: None,
        });
        store.append(key, None, &status, &[]).expect("status");
    }
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn pass(dir: &Path) -> plancd::reconcile::PassReport {
    let (_tx, cancel) = watch::channel(false);
    let opts = ReconcileOptions {
        repo: dir.to_path_buf(),
        branch: None,
        env: Env::default(),
        sandbox: timer_opener(),
        events: None,
        cancel,
        shared: false,
        remote: None,
    };
    reconcile(opts).await.expect("the pass runs")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn noop(total: usize, runs: usize) {
    let per_file = 100;
    let (dir, _) = repo_with_plans(total / per_file, per_file, |_, i| if i == 0 { vec![] } else { vec![i - 1] }, |_| 0);
    let publishing = publish_all(dir.path());
    if total == 1000 {
        println!(
            "publishing 1,000 results (result commit, branch, tag, status): {:.0} ms ({:.2} ms per result)",
            ms(publishing),
            ms(publishing) / 1000.0
        );
    }
    for packed in [false, true] {
        if packed {
            git(dir.path(), &["pack-refs", "--all"]);
            git(dir.path(), &["gc", "-q"]);
        }
        let ours = median(
            futures_timed(runs, || async {
                let report = pass(dir.path()).await;
                assert!(report.attempts.is_empty(), "nothing runs in a no-op pass");
            })
            .await,
        );
        let baseline = median(
            (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    let out = git(dir.path(), &["for-each-ref", "--format=%(refname) %(objectname)"]);
                    assert!(out.lines().count() >= total * 3);
                    t.elapsed()
                })
                .collect(),
        );
        let t = Instant::now();
        let snapshot = Snapshot::load(dir.path(), None, &Env::default()).expect("snapshot");
        let load = t.elapsed();
        let store = Store::open(dir.path()).expect("store");
        let t = Instant::now();
        let actual = plancd::reconcile::read_actual(&store).expect("state");
        let read = t.elapsed();
        let t = Instant::now();
        let desired = snapshot.desired();
        let actions =
            plancd::reconcile::decide(&desired, &actual, &plancd::reconcile::Context { now: jiff::Timestamp::now(), prune: false });
        let decide = t.elapsed();
        assert_eq!(actions.len(), total);
        let t = Instant::now();
        let source = plancd::spec::TreeSource::new(dir.path(), snapshot.plan_commit).expect("tree");
        let tree = t.elapsed();
        let t = Instant::now();
        let specs = plancd::spec::load_specs(&source, &snapshot.config).expect("specs");
        let parse = t.elapsed();
        let t = Instant::now();
        for plan in &specs.plans {
            plancd::spec::spec_hashes(&plan.list, &source).expect("hashes");
        }
        let hashing = t.elapsed();
        println!(
            "  where the time goes: load plans + spec hashes {:.1} ms (tree {:.1}, parse+check {:.1}, hashes {:.1}), read state {:.1} ms, decide {:.1} ms",
            ms(load),
            ms(tree),
            ms(parse),
            ms(hashing),
            ms(read),
            ms(decide)
        );
        println!(
            "no-op reconcile, {total:>5} satisfied tasks, refs {}: {:8.1} ms; git for-each-ref over the same {} refs: {:6.1} ms; ratio {:.1}x",
            if packed { "packed" } else { "loose " },
            ms(ours),
            total * 3 + 1,
            ms(baseline),
            ours.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}

async fn futures_timed<F, Fut>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut out = Vec::new();
    for _ in 0..runs + 1 {
        let t = Instant::now();
        f().await;
        out.push(t.elapsed());
    }
    out.remove(0); // the first run warms caches
    out
}

/// Longest chain of work through the DAG, in ms.
fn critical_path(tasks: &[(Vec<usize>, u64)]) -> u64 {
    let mut finish = vec![0u64; tasks.len()];
    for (i, (deps, ms)) in tasks.iter().enumerate() {
        finish[i] = deps.iter().map(|d| finish[*d]).max().unwrap_or(0) + ms;
    }
    finish.into_iter().max().unwrap_or(0)
}

async fn dag(work: bool) {
    let n = 1000;
    let (dir, shape) = repo_with_plans(
        1,
        n,
        |rng, i| {
            // Up to three dependencies on earlier tasks, more often recent ones: a wide, deep DAG.
            let k = if i == 0 { 0 } else { rng.below(4) as usize };
            let mut d: Vec<usize> = (0..k).map(|_| i - 1 - rng.below(i.min(50) as u64) as usize).collect();
            d.sort_unstable();
            d.dedup();
            d
        },
        |rng| if work { 20 + rng.below(81) } else { 0 },
    );
    let tasks = &shape[0];
    let total: u64 = tasks.iter().map(|t| t.1).sum();
    let bound = critical_path(tasks).max(total / 16);
    let started = Instant::now();
    let report = pass(dir.path()).await;
    let makespan = started.elapsed();
    assert_eq!(report.attempts.len(), n, "every task ran once");
    if work {
        println!(
            "1,000-task DAG, concurrency 16, agents sleeping 20-100 ms: makespan {:.2} s, lower bound {:.2} s (critical path {:.2} s, work/16 {:.2} s), ratio {:.3}",
            makespan.as_secs_f64(),
            bound as f64 / 1000.0,
            critical_path(tasks) as f64 / 1000.0,
            total as f64 / 16000.0,
            makespan.as_secs_f64() * 1000.0 / bound as f64
        );
    } else {
        println!(
            "1,000-task DAG, concurrency 16, agents doing nothing: {:.2} s, controller overhead {:.2} ms per task",
            makespan.as_secs_f64(),
            ms(makespan) / n as f64
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
        let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
        if wanted("noop") {
            noop(1000, 5).await;
            noop(10_000, 3).await;
        }
        if wanted("dag") {
            dag(false).await;
            dag(true).await;
        }
    });
}
