//! Built environments on disk: one folder per key, made once even when several attempts (of
//! this process or of others) ask at the same time, and never left half made.
//!
//! A build runs the setup commands in a session of the attempt's backend with a fresh folder
//! mounted writable at `/env`, then renames that folder to its key: a folder named by a key is
//! complete. In this process one build per key runs (the others wait for its outcome, failures
//! included); across processes a lock file per key serialises builds, and whoever gets the lock
//! second finds the folder and reuses it. Folders of builds a crash interrupted are removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plancd_sandbox::egress::Ecosystem;
use plancd_sandbox::{ExecRequest, Mount, Sandbox, SessionSpec};
use tokio::sync::OnceCell;

use super::{MOUNT_POINT, path_with_env};
use crate::config::{DEFAULT_SETUP_SECONDS, EnvironmentConfig};
use crate::reconcile::door::Door;
use crate::reconcile::input::Input;
use crate::state::{EnvironmentHow, EnvironmentUse};

/// Variables of plancd's own environment that make package registries reachable from this
/// host, carried into setup (never into agents or tests). Values with credentials are not.
const CARRIED: [&str; 12] = [
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_CERT",
    "PIP_TRUSTED_HOST",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "NPM_CONFIG_CAFILE",
    "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
];

/// The variables of `vars` that setup gets: the registry settings plancd carries (`CARRIED`), without any
/// whose value holds credentials (`user:password@` in a URL).
pub fn carried_env<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let has_credentials = |v: &str| {
        v.split_whitespace().any(|u| u.split_once("://").is_some_and(|(_, rest)| rest.split('/').next().unwrap_or("").contains('@')))
    };
    let mut out: Vec<(String, String)> =
        vars.into_iter().filter(|(k, v)| CARRIED.contains(k) && !has_credentials(v)).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    out.sort();
    out
}

/// How a setup failed: what a person reads, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupFailure {
    /// One line.
    pub message: String,
    /// The failing command's output (escaped).
    pub output: String,
}

/// An environment ready for a session.
#[derive(Debug, Clone)]
pub struct Got {
    /// What the attempt's status records.
    pub used: EnvironmentUse,
    /// Its folder, mounted read-only at `/env`.
    pub dir: PathBuf,
}

impl Got {
    /// `spec` with the environment mounted and first on PATH.
    pub fn apply(&self, spec: &mut SessionSpec) {
        spec.mounts.push(Mount { host: self.dir.clone(), inside: MOUNT_POINT.into(), writable: false });
        spec.env.retain(|(k, _)| k != "PATH");
        spec.env.push(("PATH".into(), path_with_env()));
    }
}

/// What a build asks for.
pub struct BuildRequest<'a> {
    /// The environment's key.
    pub key: &'a str,
    /// Its declaration.
    pub declared: &'a EnvironmentConfig,
    /// Where setup runs.
    pub sandbox: &'a dyn Sandbox,
    /// The attempt's session (limits, image or root); setup gets `/env` and its own network.
    pub spec: &'a SessionSpec,
    /// The workspace setup runs in: the attempt's input.
    pub input: &'a Input,
}

type Outcome = Result<(), SetupFailure>;

/// The built environments of one cache folder.
pub struct Environments {
    dir: PathBuf,
    carried: Vec<(String, String)>,
    builds: Mutex<HashMap<String, Arc<OnceCell<Outcome>>>>,
    next: AtomicU64,
}

impl Environments {
    /// The environments kept under `dir` (made when first needed), with setup getting the
    /// registry settings of `vars`.
    pub fn new<'a>(dir: PathBuf, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environments {
        let environments = Environments { dir, carried: carried_env(vars), builds: Mutex::default(), next: AtomicU64::new(0) };
        environments.sweep();
        environments
    }

    /// Where environments of the repository whose git folder is `git_dir` are kept:
    /// `PLANCD_CACHE_DIR/environments` when set, else `<git dir>/plancd/environments`.
    pub fn default_dir(git_dir: &Path, cache_dir: Option<&str>) -> PathBuf {
        match cache_dir.filter(|d| !d.is_empty()) {
            Some(dir) => Path::new(dir).join("environments"),
            None => git_dir.join("plancd").join("environments"),
        }
    }

    /// The folder of `key`'s environment.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The environment of `req.key`: reused when it is there, else built once (the callers that
    /// waited for another's build reuse it). `Err` carries whether this caller ran the failing
    /// build (it reports the failure; the others were only held by it).
    pub async fn get(&self, req: &BuildRequest<'_>) -> Result<Got, (SetupFailure, bool)> {
        let start = Instant::now();
        let dir = self.path(req.key);
        let used = |how| EnvironmentUse { key: req.key.to_owned(), how, seconds: start.elapsed().as_secs_f64() };
        let base = req.sandbox.base_id(req.spec).await;
        if self.is_current(req.key, base.as_deref()) {
            return Ok(Got { used: used(EnvironmentHow::Reused), dir });
        }
        let build = format!("{}@{}", req.key, base.as_deref().unwrap_or("-"));
        let cell = Arc::clone(self.builds.lock().expect("the builds lock is never poisoned").entry(build).or_default());
        // Set by the one caller whose closure runs: whether it ran, and whether it built.
        let (ran_here, built_here) = (AtomicBool::new(false), AtomicBool::new(false));
        let outcome = cell
            .get_or_init(|| async {
                ran_here.store(true, Ordering::Relaxed);
                let built = self.build_locked(req, base.as_deref()).await;
                built_here.store(matches!(built, Ok(true)), Ordering::Relaxed);
                built.map(|_| ())
            })
            .await;
        match outcome {
            Ok(()) if built_here.load(Ordering::Relaxed) => Ok(Got { used: used(EnvironmentHow::Built), dir }),
            Ok(()) => Ok(Got { used: used(EnvironmentHow::Reused), dir }),
            Err(failure) => Err((failure.clone(), ran_here.load(Ordering::Relaxed))),
        }
    }

    /// Whether `key`'s environment is built on `base` (the backend's identity of the image the
    /// key names: an image rebuilt under the same name is another base). Without an identity,
    /// a built folder is current.
    fn is_current(&self, key: &str, base: Option<&str>) -> bool {
        let stamp = || std::fs::read_to_string(self.dir.join(format!("{key}.base"))).ok();
        self.path(key).is_dir() && base.is_none_or(|id| stamp().as_deref() == Some(id))
    }

    /// Under the key's lock file: reuses what another process built meanwhile (`Ok(false)`), or
    /// builds (`Ok(true)`), replacing a folder built on another base.
    async fn build_locked(&self, req: &BuildRequest<'_>, base: Option<&str>) -> Result<bool, SetupFailure> {
        let infra = |what: &str, e: &dyn std::fmt::Display| SetupFailure { message: format!("{what}: {e}"), output: String::new() };
        std::fs::create_dir_all(&self.dir).map_err(|e| infra(&format!("cannot make {}", self.dir.display()), &e))?;
        let lock_path = self.dir.join(format!("{}.lock", req.key));
        let lock = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| infra("locking the environment", &e))?
        .map_err(|e| infra("locking the environment", &e))?;
        if self.is_current(req.key, base) {
            return Ok(false);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(".tmp-{}-{}-{n}", req.key, std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(|e| infra(&format!("cannot make {}", tmp.display()), &e))?;
        let result = self.run_setup(req, &tmp).await;
        let result = result.and_then(|()| self.keep(req.key, &tmp, base, n).map_err(|e| infra("cannot keep the environment", &e)));
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        drop(lock);
        result.map(|()| true)
    }

    /// Puts the folder `tmp` in place as `key`'s environment built on `base`. One built on
    /// another base is set aside, not removed (sessions still running may mount it): the sweep
    /// of the next plancd to start removes it.
    fn keep(&self, key: &str, tmp: &Path, base: Option<&str>, n: u64) -> std::io::Result<()> {
        let dir = self.path(key);
        let stamp = self.dir.join(format!("{key}.base"));
        let _ = std::fs::remove_file(&stamp);
        if dir.exists() {
            let old = self.dir.join(format!(".tmp-{key}-{}-old{n}", std::process::id()));
            std::fs::rename(&dir, &old)?;
        }
        std::fs::rename(tmp, &dir)?;
        if let Some(id) = base {
            let written = self.dir.join(format!(".tmp-{key}-{}-{n}.base", std::process::id()));
            std::fs::write(&written, id)?;
            std::fs::rename(&written, &stamp)?;
        }
        Ok(())
    }

    /// Runs the setup commands in order in a session with `tmp` at `/env`, writable, and the
    /// allowed hosts reachable through an egress proxy (when any host is allowed).
    async fn run_setup(&self, req: &BuildRequest<'_>, tmp: &Path) -> Result<(), SetupFailure> {
        let fail = |message: String| SetupFailure { message, output: String::new() };
        let mut spec = req.spec.clone();
        spec.mounts.push(Mount { host: tmp.to_owned(), inside: MOUNT_POINT.into(), writable: true });
        spec.env.retain(|(k, _)| k != "PATH");
        spec.env.push(("PATH".into(), path_with_env()));
        spec.env.extend(self.carried.iter().cloned());
        let hosts: Vec<String> = match &req.declared.network {
            Some(hosts) => hosts.clone(),
            None => ecosystems(req.input.paths()).iter().flat_map(|e| e.hosts()).map(|h| (*h).to_owned()).collect(),
        };
        let door = match hosts.is_empty() {
            true => None,
            false => Some(
                Door::open(&hosts, "plancd-setup-net-")
                    .await
                    .map_err(|e| fail(format!("the setup's egress proxy could not start: {e}")))?,
            ),
        };
        if let Some(door) = &door {
            door.apply(&mut spec);
        }
        let session = req.sandbox.create(&spec).await.map_err(|e| fail(format!("the sandbox could not start the setup: {e}")))?;
        let result = setup_in(session.as_ref(), req).await;
        let _ = session.destroy().await;
        let records = match door {
            Some(door) => door.close().await,
            None => Vec::new(),
        };
        result.map_err(|mut f| {
            for r in records.iter().filter(|r| r.refused.is_some()) {
                f.output.push_str(&format!("egress: {r} (allowed: {})\n", hosts.join(", ")));
            }
            f
        })
    }

    /// Removes folders of builds that a crashed plancd left.
    fn sweep(&self) {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(".tmp-").and_then(|r| r.split('-').nth(2)).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
    }
}

/// The package ecosystems `paths` show: Python (pyproject.toml, setup.py, setup.cfg,
/// requirements*.txt), Node (package.json), Rust (Cargo.toml), at the repository root.
pub fn ecosystems<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<Ecosystem> {
    let mut found = Vec::new();
    for p in paths {
        let e = match p {
            "pyproject.toml" | "setup.py" | "setup.cfg" => Ecosystem::Python,
            p if p.starts_with("requirements") && p.ends_with(".txt") && !p.contains('/') => Ecosystem::Python,
            "package.json" => Ecosystem::Node,
            "Cargo.toml" => Ecosystem::Rust,
            _ => continue,
        };
        if !found.contains(&e) {
            found.push(e);
        }
    }
    found
}

async fn setup_in(session: &dyn plancd_sandbox::Session, req: &BuildRequest<'_>) -> Result<(), SetupFailure> {
    req.input
        .put_into(session, |_| false)
        .await
        .map_err(|e| SetupFailure { message: format!("the workspace could not be prepared for setup: {e}"), output: String::new() })?;
    let deadline = Instant::now() + Duration::from_secs(u64::from(req.declared.timeout_seconds.unwrap_or(DEFAULT_SETUP_SECONDS)));
    for (i, cmd) in req.declared.setup.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let o = session
            .exec(&ExecRequest::shell(cmd, left))
            .await
            .map_err(|e| SetupFailure { message: format!("the sandbox failed during setup: {e}"), output: String::new() })?;
        if !o.success() {
            let mut output = plancd_sandbox::escape::output(&o.stdout);
            output.push_str(&plancd_sandbox::escape::output(&o.stderr));
            let message = format!("environment.setup[{i}] `{cmd}` failed ({o})");
            return Err(SetupFailure { message, output });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use plancd_sandbox::ExecOutcome;
    use plancd_sandbox::fake::FakeSandbox;

    use super::*;

    fn declared(setup: &[&str]) -> EnvironmentConfig {
        EnvironmentConfig {
            setup: setup.iter().map(|s| (*s).to_owned()).collect(),
            cache: Vec::new(),
            image: None,
            network: None,
            timeout_seconds: None,
        }
    }

    /// A fake whose commands succeed unless they say `fail`.
    fn fake() -> FakeSandbox {
        FakeSandbox::new(|req, _| ExecOutcome {
            exit_code: Some(if req.argv.join(" ").contains("fail") { 3 } else { 0 }),
            stderr: b"no luck".to_vec(),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn attempts_asking_at_once_build_once_and_later_ones_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let (sandbox, spec, setup) = (fake(), SessionSpec::default(), declared(&["python3 -m venv /env", "/env/bin/pip install -e ."]));
        let envs = Environments::new(dir.path().join("environments"), []);
        let req = BuildRequest { key: "env-1", declared: &setup, sandbox: &sandbox, spec: &spec, input: &Input::default() };
        let (a, b) = tokio::join!(envs.get(&req), envs.get(&req));
        let mut hows = [a.unwrap().used.how, b.unwrap().used.how];
        hows.sort_by_key(|h| h.as_str());
        assert_eq!(hows, [EnvironmentHow::Built, EnvironmentHow::Reused]);
        assert_eq!(sandbox.commands().len(), 2, "one build: each setup command once");
        assert!(envs.path("env-1").is_dir());
        // Another process (another store on the same folder) finds it built.
        let other = Environments::new(dir.path().join("environments"), []);
        let got = other.get(&req).await.unwrap();
        assert_eq!(got.used.how, EnvironmentHow::Reused);
        assert_eq!(sandbox.commands().len(), 2);
        let mut spec = SessionSpec::default();
        got.apply(&mut spec);
        assert_eq!(spec.mounts, [Mount { host: envs.path("env-1"), inside: "/env".into(), writable: false }]);
        assert_eq!(spec.env, [("PATH".to_owned(), path_with_env())]);
    }

    #[tokio::test]
    async fn an_environment_built_on_an_image_rebuilt_under_its_name_is_built_again() {
        let dir = tempfile::tempdir().unwrap();
        let (sandbox, spec, setup) = (fake(), SessionSpec::default(), declared(&["python3 -m venv /env"]));
        let req = BuildRequest { key: "env-4", declared: &setup, sandbox: &sandbox, spec: &spec, input: &Input::default() };
        sandbox.set_base_id(Some("sha256:one"));
        let envs = Environments::new(dir.path().join("environments"), []);
        assert_eq!(envs.get(&req).await.unwrap().used.how, EnvironmentHow::Built);
        assert_eq!(envs.get(&req).await.unwrap().used.how, EnvironmentHow::Reused);
        // The image is rebuilt under the same name: this process and another build again, once.
        sandbox.set_base_id(Some("sha256:two"));
        assert_eq!(envs.get(&req).await.unwrap().used.how, EnvironmentHow::Built);
        let other = Environments::new(dir.path().join("environments"), []);
        assert_eq!(other.get(&req).await.unwrap().used.how, EnvironmentHow::Reused);
        assert_eq!(sandbox.commands().len(), 2);
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path().join("environments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let aside = format!(".tmp-env-4-{}-old1", std::process::id());
        assert_eq!(left, [aside.as_str(), "env-4", "env-4.base", "env-4.lock"].map(String::from).into(), "the old folder set aside");
        assert_eq!(std::fs::read_to_string(dir.path().join("environments/env-4.base")).unwrap(), "sha256:two");
    }

    #[tokio::test]
    async fn a_failing_setup_is_reported_once_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (sandbox, spec, setup) = (fake(), SessionSpec::default(), declared(&["python3 -m venv /env", "fail hard", "never"]));
        let envs = Environments::new(dir.path().join("environments"), []);
        let req = BuildRequest { key: "env-2", declared: &setup, sandbox: &sandbox, spec: &spec, input: &Input::default() };
        let (a, b) = tokio::join!(envs.get(&req), envs.get(&req));
        let (a, b) = (a.unwrap_err(), b.unwrap_err());
        assert_eq!([a.1, b.1].iter().filter(|ran| **ran).count(), 1, "one report");
        assert_eq!(a.0.message, "environment.setup[1] `fail hard` failed (exit 3 in 0.00s)");
        assert_eq!(a.0.output, "no luck");
        assert_eq!(sandbox.commands().len(), 2, "setup stops at the failing command, and runs once");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("environments")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("env-2.lock")], "no half environment");
    }

    #[test]
    fn the_default_network_is_the_registries_of_the_ecosystems_the_repository_shows() {
        let rows: [(&[&str], &[Ecosystem]); 4] = [
            (&["pyproject.toml", "src/a.py"], &[Ecosystem::Python]),
            (&["requirements-dev.txt", "package.json", "Cargo.toml"], &[Ecosystem::Python, Ecosystem::Node, Ecosystem::Rust]),
            (&["docs/requirements.txt", "web/package.json"], &[]),
            (&["README.md"], &[]),
        ];
        for (paths, expected) in rows {
            assert_eq!(ecosystems(paths.iter().copied()), expected, "{paths:?}");
        }
    }

    #[test]
    fn folders_of_interrupted_builds_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("environments");
        let (dead, live) = (root.join(".tmp-env-3-999999999-0"), root.join(format!(".tmp-env-3-{}-0", std::process::id())));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        let _ = Environments::new(root, []);
        assert!(!dead.exists() && live.exists());
    }

    #[test]
    fn setup_gets_registry_settings_and_never_credentials() {
        let vars = [
            ("PIP_INDEX_URL", "https://pypi.example/simple"),
            ("PIP_EXTRA_INDEX_URL", "https://me:secret@private.example/simple"),
            ("PIP_CERT", "/etc/ssl/ca.pem"),
            ("OPENAI_API_KEY", "sk-x"),
            ("HOME", "/root"),
        ];
        let carried = carried_env(vars);
        assert_eq!(
            carried,
            [("PIP_CERT".to_owned(), "/etc/ssl/ca.pem".to_owned()), ("PIP_INDEX_URL".to_owned(), "https://pypi.example/simple".to_owned())]
        );
    }
}
