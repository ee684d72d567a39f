//! What starts a pass in controller mode: a commit to the watched branch or a reconcile request
//! in a local repository (seen through inotify, debounced), a move of a remote repository's refs
//! (polled), and a timer for the periodic full pass that keeps reconciliation level-triggered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Why a pass should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The watched branch moved.
    Commit,
    /// `plancd reconcile --request` asked for one.
    Request,
    /// A webhook said the branch moved.
    Webhook,
    /// The periodic full pass.
    Resync,
    /// A remote source's watched branch or plancd refs moved.
    Poll,
}

impl Trigger {
    /// Its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Commit => "commit",
            Trigger::Request => "request",
            Trigger::Webhook => "webhook",
            Trigger::Resync => "resync",
            Trigger::Poll => "poll",
        }
    }
}

/// A running watch of one repository; dropping it stops it.
pub struct LocalWatch {
    _watcher: notify::RecommendedWatcher,
}

/// How long a burst of file events (a commit writes several files) is collected before one
/// trigger goes out.
pub const DEBOUNCE: Duration = Duration::from_millis(40);

/// Watches the git directory `git_dir` for moves of `refs/heads/<branch>` (loose or packed) and
/// of the reconcile request ref, sending a trigger after each burst.
pub fn watch_local(git_dir: &Path, branch: &str, tx: mpsc::UnboundedSender<Trigger>) -> notify::Result<LocalWatch> {
    let branch_ref = git_dir.join("refs/heads").join(branch);
    let packed = git_dir.join("packed-refs");
    let requests = git_dir.join("refs/ai/requests");
    std::fs::create_dir_all(&requests).map_err(notify::Error::io)?;
    let (raw_tx, raw_rx) = std::sync::mpsc::channel::<Trigger>();
    let relevant = move |path: &Path| -> Option<Trigger> {
        let path = path.to_string_lossy();
        let path = path.strip_suffix(".lock").unwrap_or(&path);
        let path = PathBuf::from(path);
        if path == branch_ref || path == packed {
            Some(Trigger::Commit)
        } else if path.starts_with(&requests) {
            Some(Trigger::Request)
        } else {
            None
        }
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for trigger in event.paths.iter().filter_map(|p| relevant(p)) {
            let _ = raw_tx.send(trigger);
        }
    })?;
    watcher.watch(&git_dir.join("refs"), RecursiveMode::Recursive)?;
    watcher.watch(git_dir, RecursiveMode::NonRecursive)?;
    std::thread::Builder::new().name("plancd-watch".into()).spawn(move || debounce(&raw_rx, &tx)).map_err(notify::Error::io)?;
    Ok(LocalWatch { _watcher: watcher })
}

/// Collapses bursts of events into single triggers; a request wins over a commit.
fn debounce(raw: &std::sync::mpsc::Receiver<Trigger>, tx: &mpsc::UnboundedSender<Trigger>) {
    while let Ok(first) = raw.recv() {
        let mut trigger = first;
        while let Ok(next) = raw.recv_timeout(DEBOUNCE) {
            if next == Trigger::Request {
                trigger = next;
            }
        }
        if tx.send(trigger).is_err() {
            return;
        }
    }
}

/// Sends a resync trigger every `every` (with ±10% jitter, so that replicas spread out).
pub fn resync_every(every: Duration, tx: mpsc::UnboundedSender<Trigger>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(jitter(every)).await;
            if tx.send(Trigger::Resync).is_err() {
                return;
            }
        }
    })
}

/// Lists `patterns` on `remote` every `every` (±10%), and sends a trigger when the listing
/// changed since the last look (and after the first).
pub fn poll_remote(
    remote: crate::remote::Remote,
    patterns: Vec<String>,
    every: Duration,
    tx: mpsc::UnboundedSender<Trigger>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let mut last = None;
        loop {
            tokio::time::sleep(jitter(every)).await;
            match remote.ls_remote(&patterns).await {
                Ok(refs) if last.as_ref() != Some(&refs) => {
                    last = Some(refs);
                    if tx.send(Trigger::Poll).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(remote = %remote.url(), error = %e, "polling the remote failed"),
            }
            if tx.is_closed() {
                return;
            }
        }
    })
}

/// `d` ±10%.
pub fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_nanos()));
    let fraction = (h.finish() % 2001) as f64 / 10_000.0 - 0.1;
    d.mul_f64(1.0 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..200 {
            let d = jitter(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(90) && d <= Duration::from_secs(110), "{d:?}");
        }
    }

    #[tokio::test]
    async fn a_commit_to_the_branch_triggers_once_and_other_refs_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _watch = watch_local(repo.path(), "main", tx).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
        // Another ref first: no trigger.
        let c = repo.commit(Some("refs/ai/tasks/wf/t"), &sig, &sig, "x", &tree, &[]).unwrap();
        repo.reference("refs/heads/main", c, true, "commit").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
        assert_eq!(got, Some(Trigger::Commit));
        // One burst, one trigger.
        assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv()).await.is_err());
        repo.reference("refs/ai/requests/reconcile", c, true, "request").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
        assert_eq!(got, Some(Trigger::Request));
    }
}
