//! What a declared environment costs an attempt, on the process sandbox, for a Python project
//! installed editable into `/env` (a src layout; setup: a venv and `pip install -e .`):
//!
//! 1. the first attempt, which builds the environment, versus later attempts, which reuse it
//!    (each: get the environment, create a session, run the project's test, destroy), as a ratio;
//! 2. the overhead of a reused environment: such an attempt versus the same attempt in a
//!    session without any environment (running `python3 -c pass`), measured in the same process.
//!
//! The same figures follow for the docker backend when an engine with the sandbox image answers
//! (the environment a bind of the built folder; cold sessions, no warm pool, fewer rounds).
//!
//! Run with `cargo bench --bench environment` (needs bubblewrap and Debian's python3-venv).

use std::time::{Duration, Instant};

use plancd::config::EnvironmentConfig;
use plancd::reconcile::environment::Environments;
use plancd::reconcile::environment::store::BuildRequest;
use plancd_sandbox::process::ProcessSandbox;
use plancd_sandbox::{ExecRequest, FileEntry, Sandbox, SessionSpec};

const ROUNDS: usize = 30;

fn project() -> Vec<FileEntry> {
    vec![
        FileEntry::new(
            "pyproject.toml",
            "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"calc\"\nversion = \"0.1.0\"\n\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
        ),
        FileEntry::new("src/calc/__init__.py", "def add(a, b):\n    return a + b\n"),
        FileEntry::new(
            "tests/test_add.py",
            "import unittest\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n",
        ),
    ]
}

/// One attempt's sandbox work: a session (with the environment when `env` is given), the files,
/// one command, destroy. Returns how long it took, getting the environment included.
async fn attempt(
    sandbox: &dyn Sandbox,
    base: &SessionSpec,
    envs: Option<(&Environments, &BuildRequest<'_>)>,
    cmd: &str,
) -> (Duration, String) {
    let start = Instant::now();
    let mut spec = base.clone();
    let mut how = "none".to_owned();
    if let Some((envs, req)) = envs {
        let got = envs.get(req).await.map_err(|(f, _)| f.message).expect("the environment builds");
        how = got.used.how.as_str().to_owned();
        got.apply(&mut spec);
    }
    let session = sandbox.create(&spec).await.expect("a session");
    session.put_files(&project()).await.expect("files go in");
    let o = session.exec(&ExecRequest::shell(cmd, Duration::from_secs(120))).await.expect("the command runs");
    assert!(o.success(), "{cmd}: {o} {}", String::from_utf8_lossy(&o.stderr));
    session.destroy().await.expect("destroyed");
    (start.elapsed(), how)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Prints the figures for `sandbox`: first (built) versus later (reused) attempts, and the
/// overhead of a reused environment over none.
async fn measure(name: &str, sandbox: &dyn Sandbox, spec: &SessionSpec, setup: &[&str], rounds: usize) {
    let cache = tempfile::tempdir().expect("a temp dir");
    let envs = Environments::new(cache.path().join("environments"), []);
    let declared = EnvironmentConfig {
        setup: setup.iter().map(|c| (*c).to_owned()).collect(),
        cache: vec!["pyproject.toml".into()],
        image: None,
        network: Some(Vec::new()),
        timeout_seconds: None,
    };
    let input = plancd::reconcile::input::Input::from_files(project());
    let req = BuildRequest { key: "env-bench", declared: &declared, sandbox, spec, input: &input };
    let test = "python3 -m unittest -q tests/test_add.py";

    let (first, how) = attempt(sandbox, spec, Some((&envs, &req)), test).await;
    assert_eq!(how, "built");
    let mut reused = Vec::new();
    for _ in 0..rounds {
        let (t, how) = attempt(sandbox, spec, Some((&envs, &req)), test).await;
        assert_eq!(how, "reused");
        reused.push(t);
    }
    let later = median(reused);
    println!(
        "environment ({name}): first attempt (built) {:.2}s, later attempts (reused) {:.1} ms (median of {rounds}): ratio {:.0}x",
        first.as_secs_f64(),
        later.as_secs_f64() * 1e3,
        first.as_secs_f64() / later.as_secs_f64()
    );

    // Overhead: the same trivial command with a reused environment and without one.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        with.push(attempt(sandbox, spec, Some((&envs, &req)), "python3 -c pass").await.0);
        without.push(attempt(sandbox, spec, None, "python3 -c pass").await.0);
    }
    let (with, without) = (median(with), median(without));
    let overhead = with.as_secs_f64() - without.as_secs_f64();
    println!(
        "environment ({name}): reused {:.1} ms vs none {:.1} ms per attempt (median of {rounds}): overhead {:.1} ms (aim <= 50 ms)",
        with.as_secs_f64() * 1e3,
        without.as_secs_f64() * 1e3,
        overhead * 1e3
    );
    let start = Instant::now();
    for _ in 0..1000 {
        let _ = envs.get(&req).await;
    }
    println!("environment ({name}): looking up a built environment: {:.1} µs", start.elapsed().as_secs_f64() * 1e3);
}

#[tokio::main]
async fn main() {
    let spec = SessionSpec { owner: "bench".into(), ..SessionSpec::default() };
    match ProcessSandbox::new() {
        Ok(sandbox) => {
            let setup = ["python3 -m venv --system-site-packages /env", "/env/bin/pip install -q --no-index --no-build-isolation -e ."];
            measure("process", &sandbox, &spec, &setup, ROUNDS).await;
        }
        Err(e) => println!("process skipped: {e}"),
    }
    match plancd_sandbox::docker::DockerSandbox::connect(&format!("plancd-bench-{}", std::process::id())).await {
        Ok(sandbox) => {
            let spec = SessionSpec { image: Some(plancd_sandbox::docker::DEFAULT_IMAGE.into()), ..spec };
            // The image's pip and pytest, whatever its age (see README, Environments).
            let setup = [
                "python3 -m venv --without-pip --system-site-packages /env",
                "/env/bin/python3 -m pip install -q --no-index --no-build-isolation -e .",
            ];
            measure("docker", &sandbox, &spec, &setup, 10).await;
            sandbox.settle().await;
        }
        Err(e) => println!("docker skipped: {e}"),
    }
}
