//! `/plancd retry` and `/plancd approve` from GitHub, against a bare remote and the fake GitHub:
//! on an escalation issue (whose text says so), on a plan pull request, by people with write
//! access only; an escalation issue closed when its task succeeds.

use std::path::Path;

use serde_json::{Value, json};

use crate::action::{TOKEN, event, repo};
use crate::fake_github::FakeGitHub;
use crate::util::{Repo, bare, git_in, plancd_async, within};

/// `plancd action` on an `issue_comment` event: `body` by `user` on issue or pull request
/// `number` (an issue when `issue_body` is given).
async fn comment(repo: &Repo, number: u64, issue_body: Option<&str>, user: &str, body: &str) -> crate::util::Run {
    let dir = tempfile::tempdir().unwrap();
    let payload = event(dir.path(), "issue_comment.json", |p| {
        p["issue"]["number"] = number.into();
        if let Some(text) = issue_body {
            p["issue"]["pull_request"] = Value::Null;
            p["issue"]["body"] = text.into();
        }
        p["comment"]["body"] = body.into();
        p["comment"]["user"]["login"] = user.into();
    });
    let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "issue_comment"), ("GITHUB_EVENT_PATH", payload.as_str())];
    plancd_async(repo.path(), &["action"], &env).await
}

/// One task whose agent writes the repository's (wrong) answer unless its instructions say
/// `PLEASE-WRITE-42`; one branch todo at most, then a person.
fn escalating(fake: &FakeGitHub, origin: &Path) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\nmax_branch_depth: 1\nroles:\n  coder: {{ command: [\"sh\", \"agents/answer.sh\"] }}\nforge:\n  github: {{ repo: acme/widgets, token_env: GITHUB_TOKEN, api_url: \"{}\" }}\n",
            fake.api_url()
        ),
    );
    repo.write(
        "agents/answer.sh",
        "#!/bin/sh\npython3 - <<'EOF'\nimport json, os\nt = json.load(open(os.environ['PLANCD_TASK']))\nasked = 'PLEASE-WRITE-42' in (t.get('instructions') or '')\nopen('out.txt', 'w').write('42\\n' if asked else open('answer').read())\nEOF\n",
    );
    repo.write("answer", "41\n");
    repo.write(
        "plans/p.yaml",
        "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: The answer\n    agent_role: coder\n    max_attempts: 1\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt\"}]\n",
    );
    repo.commit("plan");
    repo.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    repo
}

#[tokio::test]
async fn a_retry_comment_on_an_escalation_issue_runs_the_task_with_its_words_and_the_issue_closes_when_it_succeeds() {
    within(300, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let origin = bare();
        let repo = escalating(&fake, origin.path());
        plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await.expect_code(1);
        let issue = fake.with(|s| s.issues[0].clone());
        let body = issue["body"].as_str().unwrap().to_owned();
        assert!(body.contains("Comment `/plancd retry <what to do differently>` on this issue"), "{body}");
        assert!(!body.contains("its pull request"), "an escalated task has no pull request:\n{body}");
        let number = issue["number"].as_u64().unwrap();

        // Someone without write access is ignored, with the reason.
        let stranger = comment(&repo, number, Some(&body), "stranger", "/plancd retry\nPLEASE-WRITE-42").await;
        stranger.expect_code(0);
        assert!(stranger.stdout.contains("@stranger cannot push"), "{}", stranger.stdout);
        assert!(git_in(origin.path(), &["log", "-1", "--format=%s", "refs/ai/tasks/p/t"]).starts_with("Escalated"));

        // An approval of a task that needs none is refused, on the issue, with what works.
        fake.with(|s| s.permissions.push(("maintainer".into(), "write".into())));
        let approve = comment(&repo, number, Some(&body), "maintainer", "/plancd approve").await;
        approve.expect_code(2);
        let said = fake.with(|s| s.comments.iter().map(|c| c["body"].as_str().unwrap().to_owned()).collect::<Vec<_>>().join("\n"));
        assert!(said.contains("p/t does not require approval"), "{said}");

        // The retry: recorded on the remote with who asked, run with the words, issue closed.
        let run = comment(&repo, number, Some(&body), "maintainer", "/plancd retry\nPLEASE-WRITE-42 please").await;
        run.expect_code(0);
        let chain = git_in(origin.path(), &["log", "--format=%B", "refs/ai/tasks/p/t"]);
        assert!(chain.contains("Plancd-Reason: RevisionRequested") && chain.contains("Plancd-By: maintainer"), "{chain}");
        let status: Value = serde_json::from_str(&git_in(origin.path(), &["show", "refs/ai/tasks/p/t:status.json"])).unwrap();
        assert_eq!(status["phase"], "Succeeded");
        git_in(origin.path(), &["rev-parse", "refs/tags/ai/p/t/1"]);
        fake.with(|s| {
            let issue = s.issues.iter().find(|i| i["number"] == number).unwrap();
            assert_eq!(issue["state"], "closed", "{issue}");
            let closing: Vec<&Value> =
                s.comments.iter().filter(|c| c["issue"] == number && c["body"].as_str().unwrap().contains("succeeded (attempt")).collect();
            assert_eq!(closing.len(), 1, "{:?}", s.comments);
        });
    })
    .await;
}

#[tokio::test]
async fn an_approve_comment_on_a_plan_pull_request_approves_its_gated_tasks_for_its_head() {
    within(300, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let origin = bare();
        let repo = repo(&fake, origin.path());
        repo.git(&["checkout", "-q", "-b", "plan-c"]);
        let plan = std::fs::read_to_string(repo.path().join("plans/wf.yaml")).unwrap();
        let task_c = "  - id: c\n    title: Task c\n    agent_role: coder\n    requires_approval: true\n    acceptance_criteria:\n      tests: [{cmd: \"grep -q 'done by c' out/c.txt\"}]\n";
        repo.write("plans/wf.yaml", &format!("{plan}{task_c}"));
        repo.commit("Add task c, which needs approval");
        repo.git(&["push", "-q", "origin", "plan-c:refs/pull/7/head"]);
        repo.git(&["checkout", "-q", "main"]);
        fake.with(|s| {
            s.pulls.push(json!({
                "id": 1007, "number": 7, "state": "open", "title": "Add task c", "body": "",
                "html_url": "https://github.example/acme/widgets/pull/7",
                "head": {"ref": "plan-c", "sha": "0".repeat(40)}, "base": {"ref": "main"}, "labels": [], "created_at": "2026-05-01T00:00:00Z",
            }))
        });

        let stranger = comment(&repo, 7, None, "stranger", "/plancd approve").await;
        stranger.expect_code(0);
        assert!(stranger.stdout.contains("@stranger cannot push"), "{}", stranger.stdout);
        assert!(git_in(origin.path(), &["for-each-ref", "refs/ai/"]).is_empty());

        fake.with(|s| s.permissions.push(("maintainer".into(), "maintain".into())));
        let approve = comment(&repo, 7, None, "maintainer", "/plancd approve").await;
        approve.expect_code(0);
        let status: Value = serde_json::from_str(&git_in(origin.path(), &["show", "refs/ai/tasks/wf/c:status.json"])).unwrap();
        assert_eq!((status["phase"].as_str(), status["by"].as_str()), (Some("Approved"), Some("maintainer")));
        assert!(git_in(origin.path(), &["for-each-ref", "refs/heads/ai/"]).is_empty(), "nothing runs before the merge");
        let said = fake.with(|s| s.comments.iter().map(|c| c["body"].as_str().unwrap().to_owned()).collect::<Vec<_>>().join("\n"));
        assert!(said.contains("approved 1 task(s) of this pull request") && said.contains("recorded on origin"), "{said}");

        // Once is enough.
        comment(&repo, 7, None, "maintainer", "/plancd approve").await.expect_code(2);
        assert_eq!(git_in(origin.path(), &["log", "--format=%s", "refs/ai/tasks/wf/c"]).lines().count(), 1);

        // Merged: the push reconciles, and the approved task runs.
        repo.git(&["merge", "-q", "--ff-only", "plan-c"]);
        repo.git(&["push", "-q", "origin", "main"]);
        let dir = tempfile::tempdir().unwrap();
        let head = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
        let payload = event(dir.path(), "push.json", |p| p["after"] = head.clone().into());
        let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "push"), ("GITHUB_EVENT_PATH", payload.as_str())];
        plancd_async(repo.path(), &["action"], &env).await.expect_code(0);
        git_in(origin.path(), &["rev-parse", "refs/tags/ai/wf/c/1"]);
    })
    .await;
}
