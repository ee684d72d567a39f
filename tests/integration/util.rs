//! The harness: run the `plancd` binary with a clean environment and look at what it did.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's root folder.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a run of plancd did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the whole run unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Standard output and error together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics if the process panicked or was killed.
    #[track_caller]
    pub fn no_panic(&self) -> &Run {
        assert!(self.code.is_some_and(|c| c != 101), "crashed: {:?}\n{}", self.code, self.stderr);
        assert!(!self.stderr.contains("panicked"), "panicked:\n{}", self.stderr);
        self
    }
}

/// Runs `plancd ARGS` in `dir`, with no PLANCD_*, git or OpenTelemetry variables from the caller.
pub fn plancd_in(dir: &Path, args: &[&str]) -> Run {
    plancd_env(dir, args, &[])
}

/// `plancd` as a command in `dir`, with a clean environment plus `env` (a developer's
/// collector gets no test's spans).
pub fn plancd_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plancd"));
    cmd.args(args).current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PLANCD_") || key.starts_with("GIT_") || key.starts_with("OTEL_") {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null").env("NO_COLOR", "1");
    cmd.envs(env.iter().copied());
    cmd
}

/// Runs `plancd ARGS` in `dir` with `env` added to a clean environment.
pub fn plancd_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = plancd_command(dir, args, env).output().expect("the plancd binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `plancd ARGS` in the project root.
pub fn plancd(args: &[&str]) -> Run {
    plancd_in(&project_root(), args)
}

/// A git repository in a temporary folder, driven by the `git` command with no system or
/// global configuration.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// An empty repository on branch `main`.
    pub fn new() -> Repo {
        let repo = Repo { dir: tempfile::tempdir().unwrap() };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// Its folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (folders created).
    pub fn write(&self, path: &str, content: &str) -> &Repo {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, content).unwrap();
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        self
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Runs git and returns its stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let out = git_command(self.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs plancd in the repository.
    pub fn plancd(&self, args: &[&str]) -> Run {
        plancd_in(self.path(), args)
    }

    /// A copy of the repository in a new temporary folder.
    pub fn clone_dir(&self) -> Repo {
        let copy = Repo { dir: tempfile::tempdir().unwrap() };
        let status = Command::new("cp").arg("-a").arg(format!("{}/.", self.path().display())).arg(copy.path()).status().unwrap();
        assert!(status.success());
        copy
    }
}

/// `git` with a clean configuration and a fixed identity.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com");
    cmd
}

/// Runs `future`, failing the test when it takes longer than `seconds`.
pub async fn within<F: Future>(seconds: u64, future: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(seconds), future).await.expect("the test took too long")
}

/// Runs `plancd ARGS` in `dir` with `env` added to a clean environment, without blocking the
/// async runtime (a fake server may be serving it); killed if dropped.
pub async fn plancd_async(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::from(plancd_command(dir, args, env));
    cmd.kill_on_drop(true);
    let out = cmd.output().await.expect("the plancd binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A bare repository in a temporary folder.
pub fn bare() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = git_command(dir.path()).args(["init", "-q", "--bare", "."]).output().unwrap();
    assert!(out.status.success());
    dir
}

/// Runs git in `dir` and returns its stdout; panics on failure.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Every ref, every object of `repo` and every text of `extra`: none may hold `secret`.
pub fn assert_secret_nowhere(repo: &Repo, secret: &str, extra: &[&str]) {
    let refs = repo.git(&["for-each-ref", "--format=%(refname) %(objectname) %(contents)"]);
    assert!(!refs.contains(secret), "a ref holds the key");
    let all = git_command(repo.path()).args(["cat-file", "--batch-all-objects", "--batch"]).output().unwrap().stdout;
    assert!(all.len() > 1000, "the object search found little to search");
    assert!(all.windows(secret.len()).all(|w| w != secret.as_bytes()), "an object holds the key");
    for text in extra {
        assert!(!text.contains(secret), "output holds the key: {text}");
    }
}

/// Skips visibly, or fails where CI requires what is missing (`require` names the variable).
pub fn skip(why: &str, require: &str) {
    if std::env::var(require).as_deref() == Ok("1") {
        panic!("{require}=1 but {why}");
    }
    eprintln!("skipping: {why}");
}

/// Where a client or agent runs: the process backend on the sandbox image's root folder, or
/// docker with that image.
pub enum Backend {
    Process(PathBuf),
    Docker,
}

impl Backend {
    /// The `sandbox:` section of plancd.yaml.
    pub fn config(&self) -> String {
        match self {
            Backend::Process(root) => format!("sandbox:\n  root: {}\n", root.display()),
            Backend::Docker => "sandbox:\n  backend: docker\n  image: plancd-sandbox:python\n".to_owned(),
        }
    }
}

/// Runs `test` on a runtime of two workers, failing it after `seconds`.
pub fn block_on_within(seconds: u64, test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(within(seconds, test));
}
