//! The harness: deadlines for async tests, backends, and the Docker skip rule.

use std::future::Future;
use std::time::Duration;

use plancd_sandbox::process::ProcessSandbox;
use plancd_sandbox::{ExecOutcome, ExecRequest, Session, SessionSpec};

/// Runs `test` on a multi-threaded runtime and fails it past `limit`.
pub fn run<F: Future<Output = ()>>(limit: Duration, test: F) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    rt.block_on(async {
        if tokio::time::timeout(limit, test).await.is_err() {
            panic!("test took longer than {limit:?}");
        }
    });
}

/// The process backend; it must be available on a test machine (scripts/setup installs it).
pub fn process() -> ProcessSandbox {
    ProcessSandbox::new().expect("bubblewrap is installed (scripts/setup) and works here")
}

/// A spec with small limits, so tests are quick and limits are reached.
pub fn small_spec() -> SessionSpec {
    SessionSpec {
        owner: "tests".into(),
        image: Some("plancd-sandbox:python".into()),
        limits: plancd_sandbox::Limits { cpus: 1.0, memory_mb: 256, disk_mb: 64, pids: 64 },
        ..SessionSpec::default()
    }
}

/// Runs a shell script in `session` with a deadline.
pub async fn sh(session: &dyn Session, script: &str, timeout_s: u64) -> ExecOutcome {
    session.exec(&ExecRequest::shell(script, Duration::from_secs(timeout_s))).await.expect("the sandbox runs commands")
}
