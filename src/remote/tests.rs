//! Pushes and fetches against real bare repositories, and a token's path to an http remote.

use std::process::Command;

use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A work repository with two commits (the second on top of the first) and a bare `origin`.
struct Pair {
    _dir: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
    first: Oid,
    second: Oid,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = (dir.path().join("work"), dir.path().join("bare.git"));
    git(dir.path(), &["init", "-q", "--bare", bare.to_str().unwrap()]);
    git(dir.path(), &["init", "-q", "-b", "main", work.to_str().unwrap()]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    git(&work, &["commit", "-q", "--allow-empty", "-m", "one"]);
    let first = Oid::from_str(git(&work, &["rev-parse", "HEAD"]).trim()).unwrap();
    git(&work, &["commit", "-q", "--allow-empty", "-m", "two"]);
    let second = Oid::from_str(git(&work, &["rev-parse", "HEAD"]).trim()).unwrap();
    Pair { _dir: dir, work, bare, first, second }
}

fn remote(p: &Pair) -> Remote {
    Remote::open(&p.work, "origin", None).unwrap().unwrap()
}

fn run<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(60), f).await.expect("within a minute") })
}

#[test]
fn a_missing_remote_is_none() {
    let p = pair();
    assert!(Remote::open(&p.work, "upstream", None).unwrap().is_none());
    assert!(Remote::open(&p.work, "origin", None).unwrap().is_some());
}

#[test]
fn leases_hold_or_refuse_and_fast_forwards_never_rewind() {
    let p = pair();
    let r = remote(&p);
    let name = "refs/heads/ai/generated/wf/t";
    run(async {
        // Create: the ref must not exist.
        let report = r.push(&[RefUpdate::lease(name, p.second, None)], false).await.unwrap();
        assert_eq!(report.refs[name], RefOutcome::Updated);
        // A lease on a stale value is refused and moves nothing.
        let report = r.push(&[RefUpdate::lease(name, p.first, Some(p.first))], false).await.unwrap();
        assert!(matches!(&report.refs[name], RefOutcome::Rejected(why) if why.contains("stale info")), "{report:?}");
        assert_eq!(r.ls_remote(&[name]).await.unwrap()[name], p.second);
        // The right lease moves it anywhere, even backwards.
        let report = r.push(&[RefUpdate::lease(name, p.first, Some(p.second))], false).await.unwrap();
        assert_eq!(report.refs[name], RefOutcome::Updated);
        // Fast-forward only: forwards works, backwards is refused, the same value is up to date.
        assert_eq!(r.push(&[RefUpdate::fast_forward(name, p.second)], false).await.unwrap().refs[name], RefOutcome::Updated);
        let back = r.push(&[RefUpdate::fast_forward(name, p.first)], false).await.unwrap();
        assert!(matches!(back.refs[name], RefOutcome::Rejected(_)), "{back:?}");
        assert_eq!(r.push(&[RefUpdate::fast_forward(name, p.second)], false).await.unwrap().refs[name], RefOutcome::UpToDate);
    });
    assert_eq!(git(&p.bare, &["rev-parse", name]).trim(), p.second.to_string());
}

#[test]
fn an_atomic_push_moves_all_refs_or_none() {
    let p = pair();
    let r = remote(&p);
    let (a, b) = ("refs/heads/ai/generated/wf/a", "refs/tags/ai/wf/a/1");
    run(async {
        r.push(&[RefUpdate::lease(a, p.second, None)], false).await.unwrap();
        // The branch's lease is stale: the tag must not land either.
        let report = r.push(&[RefUpdate::lease(a, p.first, None), RefUpdate::fast_forward(b, p.first)], true).await.unwrap();
        assert_eq!(report.rejected().len(), 2, "{report:?}");
        assert!(r.ls_remote(&["refs/tags/*"]).await.unwrap().is_empty());
        let report = r.push(&[RefUpdate::lease(a, p.first, Some(p.second)), RefUpdate::fast_forward(b, p.first)], true).await.unwrap();
        assert_eq!(report.updated(), 2, "{report:?}");
    });
}

#[test]
fn prefixes_push_every_ref_under_them_in_one_go() {
    let p = pair();
    for i in 0..30 {
        git(&p.work, &["update-ref", &format!("refs/ai/tasks/wf/t{i}"), &p.first.to_string()]);
    }
    let r = remote(&p);
    let report = run(r.push_prefixes(&["refs/ai/tasks/"])).unwrap();
    assert_eq!(report.updated(), 30);
    git(&p.work, &["update-ref", "refs/ai/tasks/wf/t0", &p.second.to_string()]);
    let report = run(r.push_prefixes(&["refs/ai/tasks/"])).unwrap();
    assert_eq!((report.updated(), report.refs.len()), (1, 30));
    // Fetching them back into a fresh clone.
    let clone = p._dir.path().join("clone");
    git(p._dir.path(), &["init", "-q", clone.to_str().unwrap()]);
    git(&clone, &["remote", "add", "origin", p.bare.to_str().unwrap()]);
    let c = Remote::open(&clone, "origin", None).unwrap().unwrap();
    run(c.fetch(&["+refs/ai/*:refs/ai/*"])).unwrap();
    assert_eq!(git(&clone, &["rev-parse", "refs/ai/tasks/wf/t0"]).trim(), p.second.to_string());
}

#[test]
fn an_unreachable_remote_is_an_error_that_names_it() {
    let p = pair();
    git(&p.work, &["remote", "set-url", "origin", "/nonexistent/plancd-remote.git"]);
    let err = run(remote(&p).push(&[RefUpdate::fast_forward("refs/heads/x", p.first)], false)).unwrap_err();
    assert!(err.to_string().starts_with("git push origin failed: "), "{err}");
}

#[test]
fn urls_lose_their_credentials_when_shown() {
    assert_eq!(redact_url("fatal: https://user:s3cret@host/x.git not found"), "fatal: https://***@host/x.git not found");
    assert_eq!(redact_url("https://host/x.git and /a/b"), "https://host/x.git and /a/b");
    assert_eq!(token_url_prefix("https://github.com/o/r.git").as_deref(), Some("https://github.com/"));
    assert_eq!(token_url_prefix("http://127.0.0.1:8080/o/r.git").as_deref(), Some("http://127.0.0.1:8080/"));
    assert_eq!(token_url_prefix("http://example.com/o/r.git"), None);
    assert_eq!(token_url_prefix("/srv/git/r.git"), None);
    assert_eq!(token_url_prefix("git@github.com:o/r.git"), None);
}

#[tokio::test]
async fn the_token_reaches_an_http_remote_as_a_header_and_nowhere_else() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
    let canary = "ghs_canary0123456789abcdef";
    let server = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(403).set_body_string(format!("denied for {canary}")))
        .mount(&server)
        .await;
    let p = pair();
    let url = format!("{}/o/r.git", server.uri());
    git(&p.work, &["remote", "set-url", "origin", &url]);
    let r = Remote::open(&p.work, "origin", Some(SecretString::from(canary))).unwrap().unwrap();
    let updates = [RefUpdate::fast_forward("refs/heads/x", p.first)];
    let push = r.push(&updates, false);
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), push).await.unwrap().unwrap_err();
    let shown = format!("{err} {err:?} {r:?}");
    assert!(!shown.contains(canary), "{shown}");
    let requests = server.received_requests().await.unwrap();
    assert!(!requests.is_empty());
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{canary}")));
    for req in &requests {
        assert_eq!(req.headers.get("authorization").and_then(|v| v.to_str().ok()), Some(expected.as_str()));
        assert!(!req.url.as_str().contains(canary));
    }
    let config = std::fs::read_to_string(p.work.join(".git/config")).unwrap();
    assert!(!config.contains(canary) && !config.contains(&expected));
}

/// Two controllers' repositories sharing `bare` through [`RemoteAuthority`].
fn shared_stores(p: &Pair) -> (PathBuf, crate::state::Store, PathBuf, crate::state::Store) {
    let open = |name: &str| {
        let path = p._dir.path().join(name);
        git(p._dir.path(), &["clone", "-q", "--bare", p.bare.to_str().unwrap(), path.to_str().unwrap()]);
        let remote = Remote::open(&path, "origin", None).unwrap().unwrap();
        let store = crate::state::Store::open(&path).unwrap().with_authority(std::sync::Arc::new(RemoteAuthority::new(remote)));
        (path, store)
    };
    let (a_path, a) = open("a.git");
    let (b_path, b) = open("b.git");
    (a_path, a, b_path, b)
}

#[test]
fn writers_sharing_a_remote_take_turns_through_it() {
    use crate::state::{Phase, StateError, TaskKey, TaskStatus};
    let p = pair();
    git(&p.work, &["push", "-q", "origin", "main"]);
    let (_, a, b_path, b) = shared_stores(&p);
    assert!(a.is_shared());
    let key = TaskKey::new("wf", "t1");
    let now = jiff::Timestamp::now();

    // A claims first: the remote holds A's record.
    let claim = |holder: &str| TaskStatus { holder: Some(holder.into()), ..TaskStatus::new("wf", "t1", Phase::Running, now) };
    let claimed = a.append(&key, None, &claim("a"), &[]).unwrap();
    let on_remote = git(&p.bare, &["rev-parse", "refs/ai/tasks/wf/t1"]);
    assert_eq!(on_remote.trim(), claimed.to_string());

    // B, which has not seen it, loses: a conflict naming A's record, which B now holds and reads.
    let lost = b.append(&key, None, &claim("b"), &[]).unwrap_err();
    match lost {
        StateError::Conflict { expected: None, actual: Some(actual), .. } => assert_eq!(actual, claimed),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.status(&key).unwrap().map(|(tip, _)| tip), Some(claimed));

    // B, now current, writes on top; A is the one behind, and its stale write is refused.
    let (_, status) = b.status(&key).unwrap().unwrap();
    let next = b.append(&key, Some(claimed), &status.next(Phase::Succeeded, now), &[]).unwrap();
    assert!(matches!(
        a.append(&key, Some(claimed), &status.next(Phase::Failed, now), &[]),
        Err(StateError::Conflict { actual: Some(actual), .. }) if actual == next
    ));
    assert_eq!(git(&p.bare, &["rev-parse", "refs/ai/tasks/wf/t1"]).trim(), next.to_string());

    // A deletion on the remote reaches B when B's own write to the ref is refused.
    a.delete(&key, next).unwrap();
    assert!(git(&p.bare, &["for-each-ref", "refs/ai/tasks/"]).is_empty());
    b.refresh().unwrap();
    assert!(b.status(&key).unwrap().is_some(), "a fetch prunes nothing");
    let (_, status) = b.status(&key).unwrap().unwrap();
    assert!(matches!(b.append(&key, Some(next), &status.next(Phase::Failed, now), &[]), Err(StateError::Conflict { actual: None, .. })));
    assert!(b.status(&key).unwrap().is_none());
    assert!(git(&b_path, &["for-each-ref", "refs/ai/tasks/"]).is_empty());
    assert!(git(&p.bare, &["for-each-ref", "refs/ai/tasks/"]).is_empty(), "the refused write left the remote alone");
}

#[test]
fn a_look_at_the_shared_remote_brings_in_other_writers_records_and_their_results() {
    use crate::state::{Phase, TaskKey, TaskStatus};
    let p = pair();
    git(&p.work, &["push", "-q", "origin", "main"]);
    let (_, a, b_path, b) = shared_stores(&p);
    let key = TaskKey::new("wf", "t1");
    // A result branch that only the remote (and A) have, then A's record naming it.
    git(&p.work, &["push", "-q", "origin", &format!("{}:refs/heads/ai/generated/wf/t1", p.second)]);
    let tip = a.append(&key, None, &TaskStatus::new("wf", "t1", Phase::Succeeded, jiff::Timestamp::now()), &[]).unwrap();
    assert!(b.status(&key).unwrap().is_none());
    b.refresh().unwrap();
    assert_eq!(b.status(&key).unwrap().map(|(t, _)| t), Some(tip));
    let result = git(&b_path, &["rev-parse", "refs/heads/ai/generated/wf/t1^{commit}"]);
    assert_eq!(result.trim(), p.second.to_string());
}

#[test]
fn an_unreachable_shared_remote_is_an_error_and_writes_nothing() {
    use crate::state::{Phase, StateError, TaskKey, TaskStatus};
    let p = pair();
    let (a_path, a, _, _) = shared_stores(&p);
    git(&a_path, &["remote", "set-url", "origin", "/nonexistent/remote.git"]);
    let key = TaskKey::new("wf", "t1");
    let err = a.append(&key, None, &TaskStatus::new("wf", "t1", Phase::Running, jiff::Timestamp::now()), &[]).unwrap_err();
    assert!(matches!(err, StateError::Authority { ref ref_name, .. } if ref_name == "refs/ai/tasks/wf/t1"), "{err:?}");
    assert!(a.status(&key).unwrap().is_none(), "nothing written locally");
}

#[test]
fn a_shared_remote_that_refuses_for_another_reason_is_an_error_not_a_lost_race() {
    use crate::state::{Phase, StateError, TaskKey, TaskStatus};
    let p = pair();
    let (_, a, _, _) = shared_stores(&p);
    let hook = p.bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'refs/ai is protected here' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let key = TaskKey::new("wf", "t1");
    let err = a.append(&key, None, &TaskStatus::new("wf", "t1", Phase::Running, jiff::Timestamp::now()), &[]).unwrap_err();
    match &err {
        StateError::Authority { ref_name, message } => {
            assert_eq!(ref_name, "refs/ai/tasks/wf/t1");
            assert!(message.contains("the remote refused the update"), "{message}");
        }
        other => panic!("expected the remote's refusal, got {other:?}"),
    }
    assert!(a.status(&key).unwrap().is_none(), "nothing written locally");
}

/// Makes the bare remote behave as if another writer's identical push landed just before each
/// of ours: its hook sets the refs to the values pushed (the first `limit` of them), then
/// refuses the push, as git does for the loser of such a race.
fn identical_push_lands_first(bare: &Path, limit: usize) {
    let hook = bare.join("hooks/pre-receive");
    let script = format!(
        "#!/bin/sh\nn=0\nwhile read old new ref; do\n  n=$((n+1))\n  if [ $n -le {limit} ]; then env -u GIT_QUARANTINE_PATH git update-ref \"$ref\" \"$new\"; fi\ndone\necho 'cannot lock ref' >&2\nexit 1\n"
    );
    std::fs::write(&hook, script).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// Seen 11: a push refused because an identical one got there first leaves the remote as
/// wanted, which is a success; a refusal that leaves it otherwise is still a refusal.
#[test]
fn a_refused_push_whose_refs_the_remote_already_holds_is_a_success() {
    let p = pair();
    // The objects are on the remote already, as after the other writer's push.
    git(&p.work, &["push", "-q", "origin", "main"]);
    for i in 0..3 {
        git(&p.work, &["update-ref", &format!("refs/ai/tasks/wf/t{i}"), &p.second.to_string()]);
    }
    identical_push_lands_first(&p.bare, 1000);
    let r = remote(&p);
    let report = run(r.push_prefixes(&["refs/ai/tasks/"])).unwrap();
    assert!(report.rejected().is_empty(), "{report:?}");
    assert_eq!(report.refs.len(), 3);

    let (a, b) = ("refs/heads/ai/generated/wf/a", "refs/tags/ai/wf/a/1");
    let both = [RefUpdate::lease(a, p.second, None), RefUpdate::fast_forward(b, p.first)];
    let report = run(r.push(&both, true)).unwrap();
    assert!(report.rejected().is_empty(), "{report:?}");

    // Only the first ref landed: the other is still refused.
    git(&p.bare, &["update-ref", "-d", a]);
    git(&p.bare, &["update-ref", "-d", b]);
    identical_push_lands_first(&p.bare, 1);
    let report = run(r.push(&both, true)).unwrap();
    let rejected: Vec<&str> = report.rejected().into_iter().map(|(name, _)| name).collect();
    assert_eq!(rejected, [b], "{report:?}");
}

/// Seen 11 for real: processes pushing the same task refs at the same moment (what several
/// `plancd reconcile` processes of one repository do at the end of their passes) all succeed.
#[test]
fn identical_pushes_racing_each_other_all_succeed() {
    const PUSHERS: usize = 6;
    const ROUNDS: usize = 6;
    let p = pair();
    let r = remote(&p);
    let repo = git2::Repository::open(&p.work).unwrap();
    let sig = git2::Signature::now("t", "t@t").unwrap();
    let tree = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
    let mut refused = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..40 {
            let name = format!("refs/ai/tasks/wf/t{i}");
            let parent = repo.find_reference(&name).ok().and_then(|r| r.target()).map(|t| repo.find_commit(t).unwrap());
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            let next = repo.commit(None, &sig, &sig, &format!("round {round} t{i}"), &tree, &parents).unwrap();
            repo.reference(&name, next, true, "test").unwrap();
        }
        let barrier = std::sync::Barrier::new(PUSHERS);
        let reports: Vec<PushReport> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..PUSHERS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        run(r.push_prefixes(&["refs/ai/tasks/"])).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        refused.extend(reports.iter().flat_map(|rep| rep.rejected().into_iter().map(|(n, why)| format!("round {round}: {n} ({why})"))));
    }
    assert!(refused.is_empty(), "{} refusals, e.g. {:?}", refused.len(), refused.first());
}

#[test]
fn a_fast_forward_fetch_takes_what_grew_or_is_missing_and_keeps_what_diverged() {
    let p = pair();
    // Another line of history from the first commit: neither side descends from the other.
    let tree = git(&p.work, &["rev-parse", "HEAD^{tree}"]);
    let other = git(&p.work, &["commit-tree", tree.trim(), "-p", &p.first.to_string(), "-m", "elsewhere"]);
    git(&p.work, &["push", "-q", "origin", "main", &format!("{}:refs/heads/elsewhere", other.trim())]);
    for (name, there) in [("grown", p.second.to_string()), ("missing", p.second.to_string()), ("diverged", other.trim().to_owned())] {
        git(&p.bare, &["update-ref", &format!("refs/ai/tasks/wf/{name}"), &there]);
    }
    git(&p.work, &["update-ref", "refs/ai/tasks/wf/grown", &p.first.to_string()]);
    git(&p.work, &["update-ref", "refs/ai/tasks/wf/diverged", &p.second.to_string()]);
    let kept = run(remote(&p).fetch_fast_forward(&["refs/ai/*:refs/ai/*"])).unwrap();
    assert_eq!(kept, ["refs/ai/tasks/wf/diverged"]);
    let here = |name: &str| git(&p.work, &["rev-parse", &format!("refs/ai/tasks/wf/{name}")]).trim().to_owned();
    assert_eq!((here("grown"), here("missing"), here("diverged")), (p.second.to_string(), p.second.to_string(), p.second.to_string()));

    git(&p.work, &["remote", "set-url", "origin", "/nonexistent/plancd-remote.git"]);
    let err = run(remote(&p).fetch_fast_forward(&["refs/ai/*:refs/ai/*"])).unwrap_err();
    assert!(err.to_string().starts_with("git fetch origin failed: "), "{err}");
}
