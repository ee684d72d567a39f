//! A full docker-backend cycle as a task sees it (create the session, put a file, run `true`,
//! get the files, destroy it) against `docker run --rm IMAGE true` by the docker CLI, in the
//! same run: warm (the session comes from the pool; its refill, started by the take, runs
//! during the cycle) and cold (no pool). Prints medians and both ratios; the aim is a warm
//! ratio of at most 0.5.

use std::time::{Duration, Instant};

use plancd_sandbox::docker::{DEFAULT_IMAGE, DockerSandbox};
use plancd_sandbox::{CopyOutLimits, ExecRequest, FileEntry, Sandbox, SessionSpec};

const RUNS: usize = 15;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times one cycle: in all, and each step (create, put, exec, get, destroy).
async fn cycle(sandbox: &DockerSandbox, spec: &SessionSpec) -> (Duration, [Duration; 5]) {
    let start = Instant::now();
    let mut marks = [start; 5];
    let session = sandbox.create(spec).await.expect("a session");
    marks[0] = Instant::now();
    session.put_files(&[FileEntry::new("input.txt", "x")]).await.expect("put");
    marks[1] = Instant::now();
    let out = session.exec(&ExecRequest::new(["true"], Duration::from_secs(30))).await.expect("exec");
    assert!(out.success(), "{out:?}");
    marks[2] = Instant::now();
    let files = session.get_files(&CopyOutLimits::default()).await.expect("get");
    assert_eq!(files.files.len(), 1);
    marks[3] = Instant::now();
    session.destroy().await.expect("remove");
    marks[4] = Instant::now();
    let mut steps = [Duration::ZERO; 5];
    let mut last = start;
    for (step, mark) in steps.iter_mut().zip(marks) {
        *step = mark - last;
        last = mark;
    }
    (start.elapsed(), steps)
}

fn steps_text(runs: &[[Duration; 5]]) -> String {
    let names = ["create", "put", "exec", "get", "destroy"];
    let medians = (0..5).map(|i| median(runs.iter().map(|r| r[i]).collect()));
    names.iter().zip(medians).map(|(n, d)| format!("{n} {:.1}", ms(d))).collect::<Vec<_>>().join(", ")
}

/// Waits, outside the measurement, until the pool holds a session for `spec` again.
async fn refilled(sandbox: &DockerSandbox, spec: &SessionSpec) {
    let waiting = Instant::now();
    while sandbox.warm_sessions(spec).await == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the pool never refilled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn cli_run() -> Duration {
    let start = Instant::now();
    let status = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", DEFAULT_IMAGE, "true"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the docker CLI runs");
    assert!(status.success());
    start.elapsed()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let connect = |kind: &str| rt.block_on(DockerSandbox::connect(&format!("plancd-bench-{kind}-{}", std::process::id())));
    let (warm, cold) = match (connect("warm"), connect("cold")) {
        (Ok(w), Ok(c)) => (w, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipping: no docker engine ({e})");
            return;
        }
    };
    let _inside = rt.enter();
    warm.keep_warm(1);
    let spec = SessionSpec { image: Some(DEFAULT_IMAGE.into()), ..SessionSpec::default() };
    rt.block_on(warm.warm(&spec));
    rt.block_on(refilled(&warm, &spec));
    rt.block_on(cycle(&cold, &spec));
    rt.block_on(cold.settle());
    cli_run();
    let (mut warm_runs, mut cold_runs, mut cli_runs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut warm_steps, mut cold_steps) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        rt.block_on(refilled(&warm, &spec));
        let (total, steps) = rt.block_on(cycle(&warm, &spec));
        warm_runs.push(total);
        warm_steps.push(steps);
        rt.block_on(refilled(&warm, &spec));
        let (total, steps) = rt.block_on(cycle(&cold, &spec));
        cold_runs.push(total);
        cold_steps.push(steps);
        rt.block_on(cold.settle());
        cli_runs.push(cli_run());
    }
    rt.block_on(warm.settle());
    let (warm_ms, cold_ms, cli_ms) = (median(warm_runs), median(cold_runs), median(cli_runs));
    let warm_ratio = warm_ms.as_secs_f64() / cli_ms.as_secs_f64();
    let cold_ratio = cold_ms.as_secs_f64() / cli_ms.as_secs_f64();
    println!("docker backend, median of {RUNS} runs");
    println!("  warm cycle (pooled session: create, put, exec, get, destroy): {:8.1} ms", ms(warm_ms));
    println!("  cold cycle (no pool: create, put, exec, get, destroy):        {:8.1} ms", ms(cold_ms));
    println!("  docker run --rm {DEFAULT_IMAGE} true (CLI):               {:8.1} ms", ms(cli_ms));
    let verdict = if warm_ratio <= 0.5 { "met" } else { "missed" };
    println!("  warm cycle / docker run --rm:                                {warm_ratio:8.2}  (aim <= 0.5: {verdict})");
    println!("  cold cycle / docker run --rm:                                {cold_ratio:8.2}");
    println!("  warm steps, ms: {}", steps_text(&warm_steps));
    println!("  cold steps, ms: {}", steps_text(&cold_steps));
}
