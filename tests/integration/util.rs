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

/// Runs `plancd ARGS` in `dir`, with no PLANCD_* or git variables from the caller.
pub fn plancd_in(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plancd"));
    cmd.args(args).current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PLANCD_") || key.starts_with("GIT_") {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null").env("NO_COLOR", "1");
    let out = cmd.output().expect("the plancd binary runs");
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
