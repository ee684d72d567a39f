//! Compare-and-swaps racing on real repositories, and locks held by live, slow and dead writers.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;
use crate::state::{commit_on_chain, ref_target};

fn repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    (dir, repo)
}

fn commit(repo: &Repository, n: usize) -> Oid {
    commit_on_chain(repo, None, &[("n", n.to_string().as_bytes())], &[], &format!("commit {n}")).unwrap()
}

/// Seen 10: creators racing for an absent ref (threads with handles of their own, as processes
/// have). Exactly one wins each round, and the ref then holds the winner's value.
#[test]
fn one_of_many_creators_racing_for_a_new_ref_wins_every_time() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 400;
    let (dir, first) = repo();
    let commits: Vec<Oid> = (0..THREADS).map(|i| commit(&first, i)).collect();
    let mut double_wins = 0;
    for round in 0..ROUNDS {
        let name = format!("refs/ai/tasks/race/t{round}");
        let barrier = std::sync::Barrier::new(THREADS);
        let winners: Vec<Oid> = std::thread::scope(|scope| {
            let handles: Vec<_> = commits
                .iter()
                .map(|commit| {
                    let (name, barrier, path) = (&name, &barrier, dir.path());
                    scope.spawn(move || {
                        let repo = Repository::open(path).unwrap();
                        barrier.wait();
                        match cas_ref(&repo, name, None, Some(*commit), "race") {
                            Ok(()) => Some(*commit),
                            Err(StateError::Conflict { .. }) => None,
                            Err(e) => panic!("{e}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().unwrap()).collect()
        });
        assert!(!winners.is_empty(), "round {round}: somebody wins");
        double_wins += usize::from(winners.len() > 1);
        let tip = ref_target(&first, &name).unwrap();
        assert!(tip.is_some_and(|t| winners.contains(&t)), "round {round}: the ref holds a winner's value");
    }
    assert_eq!(double_wins, 0, "rounds (of {ROUNDS}) in which two creators both won");
}

#[test]
fn updates_and_deletes_hold_only_at_the_expected_value() {
    let (_dir, repo) = repo();
    let (a, b) = (commit(&repo, 1), commit(&repo, 2));
    let name = "refs/ai/tasks/wf/t";
    cas_ref(&repo, name, None, Some(a), "create").unwrap();
    assert!(matches!(cas_ref(&repo, name, None, Some(b), "again"), Err(StateError::Conflict { actual: Some(x), .. }) if x == a));
    assert!(matches!(cas_ref(&repo, name, Some(b), Some(a), "stale"), Err(StateError::Conflict { .. })));
    cas_ref(&repo, name, Some(a), Some(b), "move").unwrap();
    assert!(matches!(cas_ref(&repo, name, Some(a), None, "stale delete"), Err(StateError::Conflict { .. })));
    cas_ref(&repo, name, Some(b), None, "delete").unwrap();
    assert_eq!(ref_target(&repo, name).unwrap(), None);
    assert!(read_records(repo.commondir()).is_empty(), "no writer record is left behind");
}

/// `git update-ref --stdin` holding `name`'s lock (prepared, not committed) until told to
/// commit: a live writer of another program, as slow as the test wants.
struct SlowGitWriter(std::process::Child);

impl SlowGitWriter {
    fn lock(dir: &Path, name: &str, new: Oid) -> SlowGitWriter {
        let mut child = Command::new("git")
            .args(["update-ref", "--stdin"])
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().unwrap();
        writeln!(stdin, "start\ncreate {name} {new}\nprepare").unwrap();
        stdin.flush().unwrap();
        let lock = dir.join(".git").join(format!("{name}.lock"));
        let since = Instant::now();
        while !lock.exists() {
            assert!(since.elapsed() < Duration::from_secs(10), "git took the lock");
            std::thread::sleep(Duration::from_millis(5));
        }
        SlowGitWriter(child)
    }

    fn commit(mut self) -> bool {
        let mut stdin = self.0.stdin.take().unwrap();
        writeln!(stdin, "commit").unwrap();
        drop(stdin);
        self.0.wait().unwrap().success()
    }
}

/// Seen 13: a writer that holds a ref's lock for longer than a second is alive, not gone: its
/// lock stays, the other write waits and then loses, and the slow writer's write lands.
#[test]
fn a_live_writer_holding_a_lock_for_seconds_is_not_broken() {
    let (dir, repo) = repo();
    let (theirs, ours) = (commit(&repo, 1), commit(&repo, 2));
    let name = "refs/ai/tasks/wf/t";
    let slow = SlowGitWriter::lock(dir.path(), name, theirs);
    let committer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1800));
        slow.commit()
    });
    let started = Instant::now();
    let ours = cas_ref(&repo, name, None, Some(ours), "ours");
    let waited = started.elapsed();
    assert!(committer.join().unwrap(), "the slow writer's commit went through");
    match ours {
        Err(StateError::Conflict { actual, .. }) => assert_eq!(actual, Some(theirs)),
        other => panic!("the write during the slow writer's lock must lose, got {other:?}"),
    }
    assert!(waited >= Duration::from_millis(1500), "it waited for the live writer ({waited:?})");
    assert_eq!(ref_target(&repo, name).unwrap(), Some(theirs));
}

/// A lock whose recorded writer is a dead process of this host is removed at once.
#[test]
fn a_dead_writers_lock_is_recovered_at_once() {
    let (_dir, repo) = repo();
    let new = commit(&repo, 1);
    let name = "refs/ai/tasks/wf/t";
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let dead = Holder::of_process(child.id()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = repo.commondir().join(format!("{name}.lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "").unwrap();
    let writers = repo.commondir().join(WRITERS);
    std::fs::create_dir_all(&writers).unwrap();
    std::fs::write(writers.join("dead-writer"), format!("{dead}\n{name}.lock\n")).unwrap();

    let started = Instant::now();
    cas_ref(&repo, name, None, Some(new), "after the crash").unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "recovered without waiting: {:?}", started.elapsed());
    assert_eq!(ref_target(&repo, name).unwrap(), Some(new));
    assert!(!lock.exists());
    assert!(read_records(repo.commondir()).is_empty(), "the dead writer's record went with its lock");
}

#[test]
fn locks_are_judged_by_the_writers_recorded_while_they_stood() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let lock = "refs/ai/tasks/wf/t.lock";
    let alive = Holder { host: "h".into(), pid: 1, start: 1, nonce: "0".into() };
    let dead = Holder { pid: 2, ..alive.clone() };
    let is_dead = |h: &Holder| h.pid == 2;
    let rec = |holder: &Holder, lock: &str, _: u64| Record { holder: holder.clone(), lock: lock.into(), ino: Some(7) };
    let soon = t0 + Duration::from_secs(2);
    let late = t0 + UNRECORDED_STALE_LOCK;
    let rows: Vec<(&str, Vec<Record>, SystemTime, LockVerdict)> = vec![
        ("a live writer, however long", vec![rec(&alive, lock, 0)], late, LockVerdict::Live),
        ("a dead writer", vec![rec(&dead, lock, 0)], soon, LockVerdict::Dead),
        ("a dead and a live writer", vec![rec(&dead, lock, 0), rec(&alive, lock, 1)], soon, LockVerdict::Live),
        ("nobody's, young", vec![], soon, LockVerdict::Unrecorded),
        ("nobody's, past the bound", vec![], late, LockVerdict::StaleUnrecorded),
        ("another lock's dead writer", vec![rec(&dead, "packed-refs.lock", 0)], soon, LockVerdict::Unrecorded),
    ];
    for (row, records, now, want) in rows {
        assert_eq!(judge(&records, (lock, 7), t0, now, is_dead), want, "{row}");
    }
    // git writes into its lock after the record: the lock's time moves past the record's, its
    // inode does not. A record of another lock file of the same name is a leftover.
    let earlier = rec(&dead, lock, 0);
    assert_eq!(judge(std::slice::from_ref(&earlier), (lock, 7), t0, soon, is_dead), LockVerdict::Dead);
    assert_eq!(judge(std::slice::from_ref(&earlier), (lock, 8), t0, soon, is_dead), LockVerdict::Unrecorded);
    // A record without an inode was written before its writer took the lock (and died before it
    // could add the inode): it speaks for the lock of its name.
    let unnumbered = Record { ino: None, ..earlier };
    assert_eq!(judge(&[unnumbered], (lock, 7), t0, soon, is_dead), LockVerdict::Dead);
}
