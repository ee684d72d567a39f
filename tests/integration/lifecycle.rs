//! The lifecycle end to end, as a reviewer and a user meet it: a retry whose new attempt fails,
//! dependents rebuilt on a new upstream result, outputs that never made it out of the sandbox,
//! and an agent that writes under `.git/`.

use std::path::Path;

use serde_json::Value;

use crate::fake_github::FakeGitHub;
use crate::util::{Repo, bare, git_in, plancd_async, project_root, within};

const TOKEN: &str = "ghs_canary1b2c3d4e5f60718293a";

/// Two tasks a -> b on a remote and the fake GitHub. The coder writes the right answer, unless a
/// reviewer's instructions ask for something (then it gets it wrong); the debugger fixes the work
/// only when the repository holds a file `fixable`.
fn reviewed(fake: &FakeGitHub, remote: &Path, fixable: bool) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\nmax_branch_depth: 1\nroles:\n  coder: {{ command: [\"sh\", \"agents/code.sh\"] }}\n  debugger: {{ command: [\"sh\", \"agents/debug.sh\"] }}\nforge:\n  github: {{ repo: acme/widgets, token_env: GITHUB_TOKEN, api_url: \"{}\" }}\n",
            fake.api_url()
        ),
    );
    repo.write(
        "agents/code.sh",
        "#!/bin/sh\nset -e\nmkdir -p out\npython3 - <<'EOF'\nimport json, os\nt = json.load(open(os.environ['PLANCD_TASK']))\nright = not t.get('instructions')\nopen('out/%s.txt' % t['task_id'], 'w').write(('done by %s\\n' if right else 'wrong %s\\n') % t['task_id'])\nEOF\n",
    );
    repo.write(
        "agents/debug.sh",
        "#!/bin/sh\nset -e\nif [ -f fixable ]; then for f in out/*.txt; do sed -i 's/^wrong /done by /' \"$f\"; done; fi\n",
    );
    if fixable {
        repo.write("fixable", "yes\n");
    }
    let task = |id: &str, deps: &str| {
        format!(
            "  - id: {id}\n    title: Task {id}\n    description: Write out/{id}.txt.\n    agent_role: coder\n    dependencies: [{deps}]\n    outputs: [out/{id}.txt]\n    acceptance_criteria:\n      tests:\n        - cmd: grep -q 'done by {id}' out/{id}.txt\n          timeout_seconds: 30\n"
        )
    };
    repo.write("plans/wf.yaml", &format!("todo_list_id: wf\ntitle: Two steps\ntasks:\n{}{}", task("a", ""), task("b", "a")));
    repo.commit("Add the plan");
    repo.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    repo
}

/// `/plancd retry <instructions>` on task a's pull request, by a maintainer.
async fn retry_comment(repo: &Repo, fake: &FakeGitHub) -> crate::util::Run {
    fake.with(|s| s.permissions.push(("maintainer".into(), "write".into())));
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(project_root().join("tests/data/github/issue_comment.json")).unwrap();
    let path = dir.path().join("event.json");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "issue_comment"), ("GITHUB_EVENT_PATH", path.as_str())];
    plancd_async(repo.path(), &["action"], &env).await
}

fn status(repo: &Repo, task: &str) -> Value {
    serde_json::from_str(&repo.git(&["show", &format!("refs/ai/tasks/wf/{task}:status.json")])).unwrap()
}

fn tag_commit(repo: &Repo, tag: &str) -> Option<String> {
    let out = crate::util::git_command(repo.path())
        .args(["rev-parse", "--verify", "-q", &format!("refs/tags/{tag}^{{commit}}")])
        .output()
        .unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test]
async fn a_retry_whose_new_attempt_fails_is_never_passed_off_as_the_old_success() {
    within(240, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = reviewed(&fake, remote.path(), false);
        plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await.expect_code(0);
        let first = tag_commit(&repo, "ai/wf/a/1").expect("the first result is tagged");

        retry_comment(&repo, &fake).await;
        // The new attempt got it wrong and its branch todo could not fix it: a person decides.
        let a = status(&repo, "a");
        assert_eq!(a["phase"], "Escalated", "{a:#}");
        assert_eq!(tag_commit(&repo, "ai/wf/a/2"), None, "no second tag on the first attempt's commit");
        let branch = status(&repo, "a_branch_01");
        assert!(branch["attempt"].as_u64().unwrap() >= 1 && branch["phase"] == "Escalated", "the branch todo ran: {branch:#}");
        let logs = repo.git(&["ls-tree", "-r", "--name-only", "refs/ai/tasks/wf/a_branch_01"]);
        assert!(logs.contains("attempts/1/tests.log"), "the branch todo ran the tests: {logs}");
        // Nothing claims the review was answered.
        fake.with(|s| {
            for c in &s.comments {
                let body = c["body"].as_str().unwrap();
                assert!(!body.contains("0 of 0"), "{body}");
                assert!(!(body.contains("attempt 1 accepted") && body.contains("ai/wf/a/2")), "{body}");
            }
        });
        assert_eq!(tag_commit(&repo, "ai/wf/a/1").as_deref(), Some(first.as_str()));
    })
    .await;
}

#[tokio::test]
async fn a_retry_fixed_by_its_branch_todo_publishes_new_work_and_rebuilds_the_dependents() {
    within(240, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = reviewed(&fake, remote.path(), true);
        plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await.expect_code(0);
        let a1 = tag_commit(&repo, "ai/wf/a/1").unwrap();
        let b1 = tag_commit(&repo, "ai/wf/b/1").unwrap();
        assert_eq!(repo.git(&["rev-parse", &format!("{b1}^")]).trim(), a1, "b is built on a's first result");

        retry_comment(&repo, &fake).await;
        let a = status(&repo, "a");
        assert_eq!(a["phase"], "Succeeded", "{a:#}");
        let a2 = tag_commit(&repo, "ai/wf/a/2").expect("the fix is the second result");
        assert_ne!(a2, a1);
        assert_eq!(a["result"]["accepted_in"], serde_json::json!({"task_id": "a_branch_01", "attempt": 1}));
        assert_eq!(a["tests"]["passed"], 1);
        // b runs again on top of a's new result.
        let b2 = tag_commit(&repo, "ai/wf/b/2").expect("b is rebuilt");
        assert_eq!(repo.git(&["rev-parse", &format!("{b2}^")]).trim(), a2, "b's new result is built on a's new one");
        let b = status(&repo, "b");
        assert_eq!(b["inputs"]["a"], a2.as_str());
        let reasons = repo.git(&["log", "--format=%(trailers:key=Plancd-Inputs,valueonly)", "refs/ai/tasks/wf/b"]);
        assert!(reasons.contains(&format!("a={a1}")) && reasons.contains(&format!("a={a2}")), "{reasons}");
        fake.with(|s| {
            let sticky: Vec<&str> =
                s.comments.iter().map(|c| c["body"].as_str().unwrap()).filter(|b| b.contains("<!-- plancd:task:wf/a -->")).collect();
            assert!(sticky.iter().any(|b| b.contains("1 of 1 acceptance test(s) passed")), "{sticky:?}");
        });
        // Nothing is left to do.
        repo.plancd(&["diff"]).expect_code(0);
    })
    .await;
}

/// One coder task with outputs; the coder's and the debugger's commands are given.
fn outputs(coder: &str, debugger: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!("branch: main\nmax_branch_depth: 1\nroles:\n  coder: {{ command: [\"sh\", \"-c\", \"{coder}\"] }}\n  debugger: {{ command: [\"sh\", \"-c\", \"{debugger}\"] }}\n"),
    );
    repo.write(
        "plans/p.yaml",
        "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    max_attempts: 1\n    max_debug_attempts: 1\n    outputs: [out.txt, big.bin]\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt\"}]\n",
    );
    repo.commit("plan");
    repo
}

#[test]
fn an_output_left_in_the_sandbox_is_named_and_never_published_by_a_branch_todo() {
    // big.bin is over the copy-out cap (10 MiB); the debugger changes nothing.
    let repo = outputs("echo 42 > out.txt && head -c 12000000 /dev/zero > big.bin", "true");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    let status = repo.plancd(&["status", "p/t", "-o", "json"]).stdout;
    assert!(!status.contains("\"phase\": \"Succeeded\""), "{status}");
    let chain = repo.git(&["log", "--format=%B", "refs/ai/tasks/p/t", "refs/ai/tasks/p/t_branch_01"]);
    assert!(chain.contains("big.bin (written, but left in the sandbox"), "the cap is named: {chain}");
    let tags = repo.git(&["tag", "--list", "ai/p/t/*"]);
    assert!(tags.trim().is_empty(), "nothing is published: {tags}");
}

#[test]
fn an_agent_that_writes_under_dot_git_fails_its_attempt_and_the_pass_goes_on() {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        "branch: main\nmax_branch_depth: 0\nroles:\n  coder: { command: [\"sh\", \"-c\", \"mkdir -p .git sub/.GIT && echo x > .git/config && echo x > sub/.GIT/hooks && echo 42 > out.txt\"] }\n  tester: { command: [\"sh\", \"-c\", \"echo 42 > other.txt\"] }\n",
    );
    repo.write(
        "plans/p.yaml",
        "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    max_attempts: 1\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt\"}]\n  - id: u\n    title: U\n    agent_role: tester\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 other.txt\"}]\n",
    );
    repo.commit("plan");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(1);
    let t: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/p/t:status.json"])).unwrap();
    assert_eq!((t["phase"].as_str(), t["reason"].as_str()), (Some("Failed"), Some("UncommittableWork")), "{t:#}");
    assert!(t["message"].as_str().unwrap().contains(".git"), "{t:#}");
    let u: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/p/u:status.json"])).unwrap();
    assert_eq!(u["phase"], "Succeeded", "the other task ran: {u:#}");
    assert!(git_in(repo.path(), &["tag", "--list", "ai/p/t/*"]).trim().is_empty());
}

#[tokio::test]
async fn a_result_over_the_pull_request_cap_is_published_and_waits_without_failing_the_pass() {
    within(240, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = reviewed(&fake, remote.path(), false);
        let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
        repo.write("plancd.yaml", &config.replace("token_env: GITHUB_TOKEN,", "token_env: GITHUB_TOKEN, max_prs_per_hour: 1,"));
        repo.commit("one pull request an hour");
        repo.git(&["push", "-q", "origin", "main"]);
        let run = plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await;
        run.expect_code(0);
        let b = status(&repo, "b");
        assert_eq!((b["phase"].as_str(), b["attempt"].as_u64()), (Some("Succeeded"), Some(1)), "{b:#}");
        let pr = b["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PullRequest").expect("a pull request condition");
        assert_eq!((pr["status"].as_str(), pr["reason"].as_str()), (Some("False"), Some("PullRequestPending")));
        assert!(b["message"].as_str().unwrap().contains("max_prs_per_hour"), "{b:#}");
        // Published: the branch and tag are on the remote.
        git_in(remote.path(), &["rev-parse", "refs/tags/ai/wf/b/1"]);
        fake.with(|s| assert_eq!(s.pulls.len(), 1));
        // Another pass claims nothing again.
        plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await.expect_code(0);
        assert_eq!(status(&repo, "b")["attempt"], 1);
    })
    .await;
}

#[test]
fn diff_tells_what_starts_now_and_why_and_sees_uncommitted_plan_edits() {
    let repo = outputs("echo 42 > out.txt && echo x > big.bin", "true");
    let diff = repo.plancd(&["diff"]);
    diff.expect_code(1);
    assert!(diff.stdout.contains("~ p/t  Run") && diff.stdout.contains("1 to start at"), "{}", diff.stdout);
    repo.plancd(&["reconcile"]).expect_code(0);
    repo.plancd(&["diff"]).expect_code(0);
    // An uncommitted edit: reconcile warns that it reads the commit; diff --work-tree sees it.
    let plan = std::fs::read_to_string(repo.path().join("plans/p.yaml")).unwrap();
    repo.write("plans/p.yaml", &plan.replace("title: T\n", "title: T, again\n"));
    let diff = repo.plancd(&["diff"]);
    diff.expect_code(0);
    assert!(diff.stderr.contains("warning: plans/p.yaml differ(s) from the watched commit"), "{}", diff.stderr);
    let edited = repo.plancd(&["diff", "--work-tree"]);
    edited.expect_code(1);
    assert!(edited.stdout.contains("run attempt 2: its spec changed"), "{}", edited.stdout);
    let run = repo.plancd(&["reconcile"]);
    assert!(run.stderr.contains("plancd reads the commit"), "{}", run.stderr);
}

/// A branch todo whose role's model key is not set here waits unclaimed, as a task does: the
/// pass says which variable to set, the parent stays Debugging (no debugging attempt is spent,
/// nothing escalates), and the branch todo is claimed once the key is set.
#[test]
fn a_branch_todo_whose_agent_has_no_key_waits_unclaimed_until_the_key_is_set() {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        "branch: main\nmax_branch_depth: 1\nmodels:\n  cloud: { provider: openai, base_url: \"http://127.0.0.1:9/v1\", model: m, api_key_env: DEBUG_MODEL_KEY, max_retries: 0 }\nroles:\n  coder: { command: [\"sh\", \"-c\", \"echo 41 > out.txt\"] }\n  debugger: { model: cloud }\n",
    );
    // A crash in the test output routes the branch todo to the debugger.
    repo.write(
        "plans/p.yaml",
        "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    max_attempts: 1\n    max_debug_attempts: 1\n    outputs: [out.txt]\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt || { echo 'Segmentation fault (core dumped)'; exit 139; }\"}]\n",
    );
    repo.commit("plan");
    for pass in 0..2 {
        let run = repo.plancd(&["reconcile"]);
        run.no_panic().expect_code(1);
        assert!(
            run.all().contains("the debugger agent cannot start: model `cloud` needs its key: DEBUG_MODEL_KEY is not set"),
            "pass {pass}: {}",
            run.all()
        );
        assert!(run.stdout.contains("0/1 tasks satisfied"), "pass {pass}: the branch todo is no task of the plan: {}", run.stdout);
        assert_eq!(repo.git(&["for-each-ref", "refs/ai/tasks/p/t_branch_01"]), "", "pass {pass}: the branch todo is not claimed");
        let t: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/p/t:status.json"])).unwrap();
        assert_eq!(t["phase"], "Debugging", "pass {pass}: nothing escalates: {t:#}");
    }
    let run = crate::util::plancd_env(repo.path(), &["reconcile"], &[("DEBUG_MODEL_KEY", "sk-test")]);
    run.no_panic();
    assert_ne!(repo.git(&["for-each-ref", "refs/ai/tasks/p/t_branch_01"]), "", "with the key set it runs: {}", run.all());
}
