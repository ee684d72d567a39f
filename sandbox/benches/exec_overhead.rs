//! Per-command overhead of the process backend: `true` in a sandbox session against a plain
//! fork/exec of `true` from the same program. Prints medians; the aim is an overhead of at
//! most 15 ms.

use std::time::{Duration, Instant};

use plancd_sandbox::process::ProcessSandbox;
use plancd_sandbox::{ExecRequest, Sandbox, SessionSpec};

const RUNS: usize = 60;
const WARMUP: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn plain() -> Duration {
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..RUNS + WARMUP {
        let start = Instant::now();
        let status = std::process::Command::new("true").status().expect("true runs");
        assert!(status.success());
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    median(samples)
}

async fn sandboxed() -> Duration {
    let sandbox = ProcessSandbox::new().expect("bubblewrap is installed (scripts/setup)");
    let session = sandbox.create(&SessionSpec::default()).await.expect("a session");
    let req = ExecRequest::new(["true"], Duration::from_secs(10));
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..RUNS + WARMUP {
        let start = Instant::now();
        let out = session.exec(&req).await.expect("the sandbox runs true");
        assert!(out.success(), "{out:?}");
        if i >= WARMUP {
            samples.push(start.elapsed());
        }
    }
    session.destroy().await.expect("the session is removed");
    median(samples)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let base = plain();
    let boxed = rt.block_on(sandboxed());
    let overhead = boxed.saturating_sub(base);
    println!("exec `true`, median of {RUNS} runs");
    println!("  plain fork/exec:        {:8.2} ms", ms(base));
    println!("  process sandbox exec:   {:8.2} ms", ms(boxed));
    println!("  overhead:               {:8.2} ms  (aim <= 15 ms: {})", ms(overhead), if ms(overhead) <= 15.0 { "met" } else { "missed" });
    println!("  ratio sandbox / plain:  {:8.1}x", boxed.as_secs_f64() / base.as_secs_f64());
}
