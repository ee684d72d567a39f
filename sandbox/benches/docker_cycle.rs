//! A full docker-backend cycle (create the session, put a file, run `true`, get the files,
//! remove everything) against `docker run --rm IMAGE true` by the docker CLI, in the same run.
//! Prints medians and their ratio; the aim is a ratio of at most 1.0.

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

async fn cycle(sandbox: &DockerSandbox, spec: &SessionSpec) -> Duration {
    let start = Instant::now();
    let session = sandbox.create(spec).await.expect("a session");
    session.put_files(&[FileEntry::new("input.txt", "x")]).await.expect("put");
    let out = session.exec(&ExecRequest::new(["true"], Duration::from_secs(30))).await.expect("exec");
    assert!(out.success(), "{out:?}");
    let files = session.get_files(&CopyOutLimits::default()).await.expect("get");
    assert_eq!(files.files.len(), 1);
    session.destroy().await.expect("remove");
    start.elapsed()
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
    let sandbox = match rt.block_on(DockerSandbox::connect(&format!("plancd-bench-{}", std::process::id()))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping: no docker engine ({e})");
            return;
        }
    };
    let spec = SessionSpec { image: Some(DEFAULT_IMAGE.into()), ..SessionSpec::default() };
    rt.block_on(cycle(&sandbox, &spec));
    cli_run();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(rt.block_on(cycle(&sandbox, &spec)));
        theirs.push(cli_run());
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let ratio = ours.as_secs_f64() / theirs.as_secs_f64();
    println!("docker backend, median of {RUNS} runs");
    println!("  full cycle (create, start, put, exec, get, remove): {:8.1} ms", ms(ours));
    println!("  docker run --rm {DEFAULT_IMAGE} true (CLI):     {:8.1} ms", ms(theirs));
    println!(
        "  ratio:                                             {ratio:8.2}  (aim <= 1.0: {})",
        if ratio <= 1.0 { "met" } else { "missed" }
    );
}
