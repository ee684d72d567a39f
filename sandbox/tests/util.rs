//! The harness: deadlines for async tests, backends, and the Docker skip rule.

use std::future::Future;
use std::time::Duration;

use plancd_sandbox::docker::DockerSandbox;
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

/// The port forwarder of this crate (a test binary cannot be one).
pub const FORWARDER: &str = env!("CARGO_BIN_EXE_plancd-forward");

/// The process backend; it must be available on a test machine (scripts/setup installs it).
pub fn process() -> ProcessSandbox {
    let config = plancd_sandbox::process::ProcessConfig { forwarder: Some(FORWARDER.into()), ..Default::default() };
    ProcessSandbox::with_config(config).expect("bubblewrap is installed (scripts/setup) and works here")
}

/// The Docker backend, or `None` (with a visible note) when no engine answers, unless
/// PLANCD_REQUIRE_DOCKER=1, where a missing engine fails the test.
pub async fn docker() -> Option<DockerSandbox> {
    // Owners are unique per live user of the engine: connecting sweeps the owner's resources.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let owner = format!("plancd-tests-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    match DockerSandbox::connect(&owner).await {
        Ok(d) => {
            d.set_forwarder(FORWARDER.into());
            Some(d)
        }
        Err(e) if std::env::var("PLANCD_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("PLANCD_REQUIRE_DOCKER=1 but the docker backend is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: no docker engine ({e})");
            None
        }
    }
}

/// A spec with small limits, so tests are quick and limits are reached.
pub fn small_spec() -> SessionSpec {
    SessionSpec {
        owner: "tests".into(),
        image: Some(plancd_sandbox::docker::DEFAULT_IMAGE.into()),
        limits: plancd_sandbox::Limits { cpus: 1.0, memory_mb: 256, disk_mb: 64, pids: 64 },
        ..SessionSpec::default()
    }
}

/// Runs a shell script in `session` with a deadline.
pub async fn sh(session: &dyn Session, script: &str, timeout_s: u64) -> ExecOutcome {
    session.exec(&ExecRequest::shell(script, Duration::from_secs(timeout_s))).await.expect("the sandbox runs commands")
}
