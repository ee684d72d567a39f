//! A git remote reached with the `git` command: fetches, and pushes that carry many refs at once
//! with compare-and-swap semantics (fast-forward only, `--force-with-lease=<ref>:<expected>`,
//! `--atomic`). Credentials travel in the child's environment only, never in a URL or argv, and
//! are scrubbed from every message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use git2::Oid;
use secrecy::{ExposeSecret, SecretString};

/// Why a remote operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The repository could not be read.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// The `git` command could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// The `git` command failed.
    #[error("git {op} {remote} failed: {message}")]
    Command {
        /// `fetch`, `push` or `ls-remote`.
        op: &'static str,
        /// The remote's name.
        remote: String,
        /// What git said, with credentials scrubbed.
        message: String,
    },
}

/// What the remote must hold for a ref to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The remote's value must be an ancestor of the new one (git's default): chains that only
    /// grow, such as task refs, and immutable tags (an existing tag is never overwritten).
    FastForward,
    /// The remote must hold exactly this value (`None`: the ref must not exist); the ref may
    /// then move anywhere.
    Lease(Option<Oid>),
}

/// One ref to move on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The new value; `None` deletes the ref.
    pub new: Option<Oid>,
    /// The full ref name on both sides, e.g. `refs/heads/ai/generated/wf/t`.
    pub name: String,
    /// The compare-and-swap condition.
    pub expect: Expect,
}

impl RefUpdate {
    /// Moves `name` to `new` if the remote's value is an ancestor of it.
    pub fn fast_forward(name: impl Into<String>, new: Oid) -> RefUpdate {
        RefUpdate { new: Some(new), name: name.into(), expect: Expect::FastForward }
    }

    /// Moves `name` to `new` if the remote holds `expected`.
    pub fn lease(name: impl Into<String>, new: Oid, expected: Option<Oid>) -> RefUpdate {
        RefUpdate { new: Some(new), name: name.into(), expect: Expect::Lease(expected) }
    }
}

/// How one ref of a push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefOutcome {
    /// The remote now holds the new value.
    Updated,
    /// The remote already held it (also when a refusal turned out to be another writer's
    /// identical push landing first).
    UpToDate,
    /// The remote refused: a lease that did not hold, a non-fast-forward, an existing tag, or an
    /// atomic push that failed elsewhere.
    Rejected(String),
}

/// Every ref of a push and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// By full ref name.
    pub refs: BTreeMap<String, RefOutcome>,
}

impl PushReport {
    /// The refs the remote refused, with why.
    pub fn rejected(&self) -> Vec<(&str, &str)> {
        self.refs
            .iter()
            .filter_map(|(name, o)| match o {
                RefOutcome::Rejected(why) => Some((name.as_str(), why.as_str())),
                _ => None,
            })
            .collect()
    }

    /// How many refs moved.
    pub fn updated(&self) -> usize {
        self.refs.values().filter(|o| **o == RefOutcome::Updated).count()
    }
}

/// A named remote of a local repository.
#[derive(Clone)]
pub struct Remote {
    repo: PathBuf,
    name: String,
    url: String,
    token: Option<SecretString>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("name", &self.name).field("url", &self.url()).finish_non_exhaustive()
    }
}

impl Remote {
    /// The remote `name` of the repository at `repo`; `None` when the repository has no such
    /// remote. `token` authenticates https remotes (and http ones on this machine).
    pub fn open(repo: &Path, name: &str, token: Option<SecretString>) -> Result<Option<Remote>, RemoteError> {
        let git = git2::Repository::discover(repo)?;
        let url = match git.find_remote(name) {
            Ok(remote) => remote.url().unwrap_or_default().to_owned(),
            Err(e) if e.code() == git2::ErrorCode::NotFound || e.class() == git2::ErrorClass::Config => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let dir = git.workdir().unwrap_or_else(|| git.path()).to_path_buf();
        Ok(Some(Remote { repo: dir, name: name.to_owned(), url, token }))
    }

    /// The remote's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The remote's URL, fit to show: any user or password in it replaced by `***`.
    pub fn url(&self) -> String {
        redact_url(&self.url)
    }

    /// The refs on the remote that match `patterns` (e.g. `refs/ai/*`), by full name.
    pub async fn ls_remote(&self, patterns: &[&str]) -> Result<BTreeMap<String, Oid>, RemoteError> {
        let out = self.run("ls-remote", &self.ls_remote_args(patterns)).await?;
        Ok(parse_ls_remote(&out))
    }

    /// [`Remote::ls_remote`], blocking the thread.
    fn ls_remote_blocking(&self, patterns: &[&str]) -> Result<BTreeMap<String, Oid>, RemoteError> {
        let (ok, stdout, stderr) = self.output_blocking(&self.ls_remote_args(patterns))?;
        if !ok {
            return Err(self.command_error("ls-remote", &stderr));
        }
        Ok(parse_ls_remote(&stdout))
    }

    fn ls_remote_args(&self, patterns: &[&str]) -> Vec<String> {
        let mut args = vec!["ls-remote".to_owned(), "--".to_owned(), self.name.clone()];
        args.extend(patterns.iter().map(|p| (*p).to_owned()));
        args
    }

    /// Fetches `refspecs` (e.g. `+refs/ai/*:refs/ai/*`) in one run of git.
    pub async fn fetch(&self, refspecs: &[&str]) -> Result<(), RemoteError> {
        let mut args = vec!["fetch".to_owned(), "--quiet".to_owned(), "--no-tags".to_owned(), "--".to_owned(), self.name.clone()];
        args.extend(refspecs.iter().map(|r| (*r).to_owned()));
        self.run("fetch", &args).await.map(drop)
    }

    /// Fetches `refspecs` (without `+`, e.g. `refs/ai/*:refs/ai/*`) fast-forward only, in one
    /// run of git: refs this repository lacks are made, refs the remote has grown are moved, and
    /// a local ref that is not an ancestor of the remote's is kept as it is. Returns those kept
    /// refs, by full name.
    pub async fn fetch_fast_forward(&self, refspecs: &[&str]) -> Result<Vec<String>, RemoteError> {
        let mut args = ["fetch", "--porcelain", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-auto-maintenance", "--"]
            .map(String::from)
            .to_vec();
        args.push(self.name.clone());
        args.extend(refspecs.iter().map(|r| (*r).to_owned()));
        let (ok, stdout, stderr) = self.output(&args).await?;
        let kept = parse_fetch_porcelain_rejected(&stdout);
        // git exits non-zero when it refuses a ref; anything else is a failure to fetch.
        if ok || !kept.is_empty() { Ok(kept) } else { Err(self.command_error("fetch", &stderr)) }
    }

    /// Pushes every update in one run of git. `atomic`: all move or none does. A refused ref is
    /// an outcome in the report, not an error; errors are failures to talk to the remote.
    pub async fn push(&self, updates: &[RefUpdate], atomic: bool) -> Result<PushReport, RemoteError> {
        if updates.is_empty() {
            return Ok(PushReport::default());
        }
        let mut args = vec!["push".to_owned(), "--porcelain".to_owned()];
        if atomic {
            args.push("--atomic".into());
        }
        for u in updates {
            if let Expect::Lease(expected) = u.expect {
                args.push(format!("--force-with-lease={}:{}", u.name, expected.map(|o| o.to_string()).unwrap_or_default()));
            }
        }
        args.push("--".into());
        args.push(self.name.clone());
        args.extend(updates.iter().map(|u| format!("{}:{}", u.new.map(|o| o.to_string()).unwrap_or_default(), u.name)));
        let mut report = self.push_args("push", args).await?;
        let wanted: BTreeMap<String, Option<Oid>> = updates.iter().map(|u| (u.name.clone(), u.new)).collect();
        self.settle(&mut report, &wanted, false).await?;
        Ok(report)
    }

    /// Pushes every local ref under each of `prefixes` (e.g. `refs/ai/tasks/`) to the same name,
    /// fast-forward only, in one run of git.
    pub async fn push_prefixes(&self, prefixes: &[&str]) -> Result<PushReport, RemoteError> {
        let wanted = self.local_refs(prefixes)?;
        let mut args = vec!["push".to_owned(), "--porcelain".to_owned(), "--".to_owned(), self.name.clone()];
        args.extend(prefixes.iter().map(|p| format!("{p}*:{p}*")));
        let mut report = self.push_args("push", args).await?;
        self.settle(&mut report, &wanted, true).await?;
        Ok(report)
    }

    /// The local refs under `prefixes`.
    fn local_refs(&self, prefixes: &[&str]) -> Result<BTreeMap<String, Option<Oid>>, RemoteError> {
        let repo = git2::Repository::open(&self.repo)?;
        let mut out = BTreeMap::new();
        for prefix in prefixes {
            for reference in repo.references_glob(&format!("{prefix}*"))? {
                let reference = reference?;
                if let (Ok(name), Some(target)) = (reference.name(), reference.target()) {
                    out.insert(name.to_owned(), Some(target));
                }
            }
        }
        Ok(out)
    }

    /// Turns each refusal of a ref that the remote holds as wanted anyway into
    /// [`RefOutcome::UpToDate`]: another writer's identical push got there first (the refusal
    /// is its lock, or a lease that saw its value), which is no failure. With `ahead`, a remote
    /// value that descends from the wanted one holds it too: a chain another writer has since
    /// grown, as with the task refs pushed at the end of a pass.
    async fn settle(&self, report: &mut PushReport, wanted: &BTreeMap<String, Option<Oid>>, ahead: bool) -> Result<(), RemoteError> {
        let refused: Vec<&str> = report.rejected().into_iter().map(|(name, _)| name).filter(|n| wanted.contains_key(*n)).collect();
        if refused.is_empty() {
            return Ok(());
        }
        let on_remote = self.ls_remote(&refused).await?;
        let repo = git2::Repository::open(&self.repo)?;
        let settled: Vec<String> = refused
            .into_iter()
            .filter(|name| {
                let (want, have) = (wanted[*name], on_remote.get(*name).copied());
                have == want
                    || (ahead && matches!((have, want), (Some(have), Some(want)) if repo.graph_descendant_of(have, want).unwrap_or(false)))
            })
            .map(str::to_owned)
            .collect();
        for name in settled {
            report.refs.insert(name, RefOutcome::UpToDate);
        }
        Ok(())
    }

    async fn push_args(&self, op: &'static str, args: Vec<String>) -> Result<PushReport, RemoteError> {
        let (ok, stdout, stderr) = self.output(&args).await?;
        let report = parse_porcelain(&stdout);
        // git exits non-zero when any ref is refused; that is in the report. Anything else, such
        // as an unreachable remote, is an error.
        if ok || !report.refs.is_empty() {
            return Ok(report);
        }
        Err(self.command_error(op, &stderr))
    }

    async fn run(&self, op: &'static str, args: &[String]) -> Result<String, RemoteError> {
        let (ok, stdout, stderr) = self.output(args).await?;
        if ok { Ok(stdout) } else { Err(self.command_error(op, &stderr)) }
    }

    fn command_error(&self, op: &'static str, stderr: &str) -> RemoteError {
        let message = self.scrub(stderr.trim());
        RemoteError::Command { op, remote: self.name.clone(), message: if message.is_empty() { "no output".into() } else { message } }
    }

    /// `git -C <repo> <args>` with no prompts, C messages and this remote's credentials.
    fn command(&self, args: &[String]) -> std::process::Command {
        let mut cmd = std::process::Command::new("git");
        cmd.arg("-C").arg(&self.repo).args(args);
        cmd.env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C").env_remove("GIT_ASKPASS").env_remove("SSH_ASKPASS");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in self.credential_env() {
            cmd.env(k, v);
        }
        cmd
    }

    async fn output(&self, args: &[String]) -> Result<(bool, String, String), RemoteError> {
        let mut cmd = tokio::process::Command::from(self.command(args));
        cmd.kill_on_drop(true);
        let out = cmd.output().await.map_err(RemoteError::Spawn)?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned()))
    }

    /// [`Remote::output`], blocking the thread.
    fn output_blocking(&self, args: &[String]) -> Result<(bool, String, String), RemoteError> {
        let out = self.command(args).output().map_err(RemoteError::Spawn)?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned()))
    }

    /// `GIT_CONFIG_*` variables that give git an `Authorization` header for this remote's URL,
    /// after clearing any header configured for it before (a checkout's persisted credentials).
    fn credential_env(&self) -> Vec<(String, String)> {
        let (Some(token), Some(prefix)) = (&self.token, token_url_prefix(&self.url)) else { return Vec::new() };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{}", token.expose_secret()));
        let base: usize = std::env::var("GIT_CONFIG_COUNT").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
        let key = format!("http.{prefix}.extraheader");
        vec![
            ("GIT_CONFIG_COUNT".into(), (base + 2).to_string()),
            (format!("GIT_CONFIG_KEY_{base}"), key.clone()),
            (format!("GIT_CONFIG_VALUE_{base}"), String::new()),
            (format!("GIT_CONFIG_KEY_{}", base + 1), key),
            (format!("GIT_CONFIG_VALUE_{}", base + 1), format!("Authorization: Basic {basic}")),
        ]
    }

    /// `text` with the token, its encoded form and any URL credentials replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = redact_url(text);
        if let Some(token) = &self.token {
            let secret = token.expose_secret();
            if !secret.is_empty() {
                out = out.replace(secret, "***");
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{secret}"));
                out = out.replace(&basic, "***");
            }
        }
        out
    }
}

/// A remote as the [`Authority`](crate::state::Authority) of a store's refs, for controllers that
/// share it: each write is one push whose expected old value the server checks
/// (`--force-with-lease`); a refused one brings the remote's value into the local repository.
pub struct RemoteAuthority {
    remote: Remote,
}

impl RemoteAuthority {
    /// Writes through `remote`.
    pub fn new(remote: Remote) -> RemoteAuthority {
        RemoteAuthority { remote }
    }

    /// Brings the local state refs up to the remote's, then the results they name: a result is
    /// pushed before the record that names it, so fetching the records first never leaves one
    /// naming a commit this repository lacks. Nothing is pruned: a ref only this repository
    /// has (written before it shared the remote) is kept, and one the remote deleted goes when
    /// a write to it is refused ([`RemoteAuthority::follow`]). A fetch that fails (a ref lock
    /// another writer holds for a moment) is tried again.
    fn fetch_state(&self) -> Result<(), RemoteError> {
        let patterns = ["refs/ai/tasks/*", "refs/ai/workflows/*", "refs/ai/requests/*", "refs/heads/ai/generated/*", "refs/tags/ai/*"];
        // Fetched often: no gc or maintenance started behind it.
        let mut args =
            ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-auto-maintenance"].map(String::from).to_vec();
        args.push("--".to_owned());
        args.push(self.remote.name.clone());
        args.extend(patterns.iter().map(|p| format!("+{p}:{p}")));
        let mut tries = 0;
        loop {
            let (ok, _, stderr) = self.remote.output_blocking(&args)?;
            if ok {
                return Ok(());
            }
            tries += 1;
            if tries == 3 {
                return Err(self.remote.command_error("fetch", &stderr));
            }
            std::thread::sleep(std::time::Duration::from_millis(100 * tries));
        }
    }

    /// Sets the local `name` to what the remote holds (bringing in every other state ref on the
    /// way), and returns that; deletes it here when the remote has none.
    fn follow(&self, name: &str) -> Result<Option<Oid>, RemoteError> {
        self.fetch_state()?;
        let on_remote = self.remote.ls_remote_blocking(&[name])?.contains_key(name);
        let repo = git2::Repository::open(&self.remote.repo)?;
        if !on_remote {
            if let Ok(mut local) = repo.find_reference(name) {
                local.delete()?;
            }
            return Ok(None);
        }
        Ok(repo.find_reference(name).ok().and_then(|r| r.target()))
    }
}

impl crate::state::Authority for RemoteAuthority {
    fn swap(&self, _repo: &Path, name: &str, expected: Option<Oid>, new: Option<Oid>) -> Result<Option<Option<Oid>>, String> {
        let show = |o: Option<Oid>| o.map(|o| o.to_string()).unwrap_or_default();
        let args = [
            "push".to_owned(),
            "--porcelain".to_owned(),
            format!("--force-with-lease={name}:{}", show(expected)),
            "--".to_owned(),
            self.remote.name.clone(),
            format!("{}:{name}", show(new)),
        ];
        // A push that did not get through (the remote out of reach for a moment) is tried
        // again: if the first one landed after all, the second finds the ref already there.
        let mut tries = 0;
        let (stdout, stderr) = loop {
            let (_, stdout, stderr) = self.remote.output_blocking(&args).map_err(|e| e.to_string())?;
            tries += 1;
            if parse_porcelain(&stdout).refs.contains_key(name) || tries == 3 {
                break (stdout, stderr);
            }
            std::thread::sleep(std::time::Duration::from_millis(250 * tries));
        };
        match parse_porcelain(&stdout).refs.get(name) {
            Some(RefOutcome::Updated | RefOutcome::UpToDate) => Ok(None),
            Some(RefOutcome::Rejected(why)) => {
                // Another writer moved it: a lost race. Still at `expected`: the remote refused
                // for another reason (a hook, a protected ref), which no retry mends.
                let actual = self.follow(name).map_err(|e| e.to_string())?;
                // The remote holds what this write wanted: an earlier try of it got through.
                if actual == new {
                    return Ok(None);
                }
                if actual == expected {
                    return Err(format!("the remote refused the update: {}", self.remote.scrub(why)));
                }
                Ok(Some(actual))
            }
            None => Err(self.remote.command_error("push", &stderr).to_string()),
        }
    }

    fn refresh(&self) -> Result<(), String> {
        self.fetch_state().map_err(|e| e.to_string())
    }

    fn tip(&self, name: &str) -> Result<Option<Oid>, String> {
        self.remote.ls_remote_blocking(&[name]).map(|refs| refs.get(name).copied()).map_err(|e| e.to_string())
    }
}

/// The local refs `git fetch --porcelain` refused to update (`! <old> <new> <ref>` lines).
fn parse_fetch_porcelain_rejected(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.strip_prefix("! ")).filter_map(|rest| rest.split_whitespace().nth(2)).map(str::to_owned).collect()
}

/// `ls-remote` output as ref -> object, without peeled tags' `^{}` lines.
fn parse_ls_remote(out: &str) -> BTreeMap<String, Oid> {
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(oid, name)| Some((name.to_owned(), Oid::from_str(oid).ok()?)))
        .filter(|(name, _)| !name.ends_with("^{}"))
        .collect()
}

/// The `scheme://host[:port]/` that a token may be sent to: https remotes, and plain http only
/// to this machine. `None` for paths, ssh and other hosts over http.
fn token_url_prefix(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    match scheme {
        "https" => Some(format!("https://{host_port}/")),
        "http" if local => Some(format!("http://{host_port}/")),
        _ => None,
    }
}

/// Replaces the user and password part of every URL in `text` with `***`.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Reads `git push --porcelain`: `<flag>\t<from>:<to>\t<summary>` per ref.
fn parse_porcelain(stdout: &str) -> PushReport {
    let mut report = PushReport::default();
    for line in stdout.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(flag), Some(refs), summary) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Some((_, to)) = refs.split_once(':') else { continue };
        let outcome = match flag {
            " " | "+" | "-" | "*" => RefOutcome::Updated,
            "=" => RefOutcome::UpToDate,
            "!" => RefOutcome::Rejected(summary.unwrap_or("[rejected]").trim().to_owned()),
            _ => continue,
        };
        report.refs.insert(to.to_owned(), outcome);
    }
    report
}

#[cfg(test)]
mod tests;
