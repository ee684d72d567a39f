//! End to end against a bare remote and the fake GitHub: reconciles that push results and open one
//! pull request per task (and none on a re-run), `plancd action` on push, pull_request and
//! issue_comment events read from payload fixtures, and a token that lands nowhere.

use std::path::Path;

use serde_json::Value;

use crate::fake_github::FakeGitHub;
use crate::util::{Repo, bare, git_command, git_in, plancd_async, project_root, within};

pub(crate) const TOKEN: &str = "ghs_canary7f3e9a1b2c4d6e8f0a";

/// Two tasks, a -> b, with a forge on `fake` and a bare `origin` that holds `main`.
pub(crate) fn repo(fake: &FakeGitHub, remote: &Path) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\nroles:\n  coder: {{ command: [\"sh\", \"agents/write.sh\"] }}\nforge:\n  github: {{ repo: acme/widgets, token_env: GITHUB_TOKEN, api_url: \"{}\", labels: [plancd] }}\n",
            fake.api_url()
        ),
    );
    repo.write(
        "agents/write.sh",
        "#!/bin/sh\nset -e\nmkdir -p out\npython3 - <<'EOF'\nimport json, os\nt = json.load(open(os.environ['PLANCD_TASK']))\nopen('out/%s.txt' % t['task_id'], 'w').write('done by %s\\n' % t['task_id'])\nopen('out/%s.notes' % t['task_id'], 'w').write(t.get('instructions') or '')\nEOF\n",
    );
    let task = |id: &str, deps: &str| {
        format!(
            "  - id: {id}\n    title: Task {id}\n    description: Write out/{id}.txt.\n    agent_role: coder\n    dependencies: [{deps}]\n    acceptance_criteria:\n      tests:\n        - cmd: grep -q 'done by {id}' out/{id}.txt\n          timeout_seconds: 30\n"
        )
    };
    repo.write("plans/wf.yaml", &format!("todo_list_id: wf\ntitle: Two steps\ntasks:\n{}{}", task("a", ""), task("b", "a")));
    repo.commit("Add the plan");
    repo.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    repo
}

pub(crate) fn event(dir: &Path, fixture: &str, edit: impl FnOnce(&mut Value)) -> String {
    let text = std::fs::read_to_string(project_root().join("tests/data/github").join(fixture)).unwrap();
    let mut payload: Value = serde_json::from_str(&text).unwrap();
    edit(&mut payload);
    let path = dir.join(fixture);
    std::fs::write(&path, serde_json::to_vec(&payload).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Every ref and object of a repository, and the logs in them, as text.
fn everything(dir: &Path) -> String {
    let refs = git_in(dir, &["for-each-ref", "--format=%(refname) %(objectname)"]);
    let objects = git_command(dir).args(["cat-file", "--batch-all-objects", "--batch"]).output().unwrap().stdout;
    format!("{refs}{}", String::from_utf8_lossy(&objects))
}

#[tokio::test]
async fn a_reconcile_pushes_results_and_opens_one_pull_request_per_task_and_a_rerun_opens_none() {
    within(240, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = repo(&fake, remote.path());
        let files = tempfile::tempdir().unwrap();
        let (output, summary) = (files.path().join("output"), files.path().join("summary"));
        let payload = event(files.path(), "push.json", |p| p["after"] = Value::String(repo.git(&["rev-parse", "HEAD"]).trim().into()));
        let env = [
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", payload.as_str()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ];
        let run = plancd_async(repo.path(), &["action"], &env).await;
        run.expect_code(0);

        // One pull request per task, from its result branch, with the body people review.
        let pulls = fake.with(|s| s.pulls.clone());
        let heads: Vec<&str> = pulls.iter().map(|p| p["head"]["ref"].as_str().unwrap()).collect();
        assert_eq!(heads, ["ai/generated/wf/a", "ai/generated/wf/b"]);
        let body = pulls[1]["body"].as_str().unwrap();
        for part in [
            "## Task b",
            "### Acceptance tests",
            "| ✅ | test 1 |",
            "### Provenance",
            "```mermaid",
            "class n_wf__b current",
            "Write out/b.txt.",
        ] {
            assert!(body.contains(part), "{part} missing from\n{body}");
        }
        let status: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/wf/b:status.json"])).unwrap();
        assert_eq!(status["result"]["pull_request"], pulls[1]["html_url"]);
        // The remote holds results, tags and task refs, as the local repository does.
        for r in ["refs/heads/ai/generated/wf/a", "refs/tags/ai/wf/b/1", "refs/ai/tasks/wf/a", "refs/ai/tasks/wf/b"] {
            assert_eq!(git_in(remote.path(), &["rev-parse", r]), repo.git(&["rev-parse", r]), "{r}");
        }
        // The workflow's commit status, and the outputs and summary of the step.
        let statuses = fake.with(|s| s.statuses.clone());
        assert_eq!(statuses.first().map(|s| s["state"].clone()), Some(Value::from("pending")));
        assert_eq!(statuses.last().map(|s| (s["context"].clone(), s["state"].clone())), Some(("plancd/wf".into(), "success".into())));
        let outputs = std::fs::read_to_string(&output).unwrap();
        assert!(outputs.contains("tasks-run=2\ntasks-succeeded=2\ntasks-failed=0\n"), "{outputs}");
        assert!(outputs.contains(pulls[0]["html_url"].as_str().unwrap()), "{outputs}");
        let summary = std::fs::read_to_string(&summary).unwrap();
        assert!(summary.contains("| `wf/a` | coder | Succeeded |") && summary.contains("```mermaid"), "{summary}");

        // A re-run opens nothing and edits nothing.
        let writes = fake.count("POST", "/pulls").await + fake.count("PATCH", "/pulls/1").await;
        let again = plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await;
        again.expect_code(0);
        assert_eq!(fake.count("POST", "/pulls").await + fake.count("PATCH", "/pulls/1").await, writes);
        fake.with(|s| assert_eq!(s.pulls.len(), 2));

        // The token is nowhere: refs, objects, logs, either repository, output, what GitHub got.
        for (place, text) in [
            ("local repository", everything(repo.path())),
            ("remote", everything(remote.path())),
            ("output", format!("{}{}{}", run.all(), again.all(), outputs)),
            ("requests", fake.everything_sent().await),
        ] {
            assert!(!text.contains(TOKEN), "the token is in the {place}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_plan_pull_request_gets_a_preview_with_the_base_configuration_and_nothing_runs() {
    within(120, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = repo(&fake, remote.path());
        let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
        repo.git(&["checkout", "-q", "-b", "plan-c"]);
        let plan = std::fs::read_to_string(repo.path().join("plans/wf.yaml")).unwrap();
        repo.write("plans/wf.yaml", &format!("{plan}  - id: c\n    title: Task c\n    agent_role: coder\n    dependencies: [b]\n"));
        let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
        repo.write("plancd.yaml", &config.replace("agents/write.sh", "agents/evil.sh"));
        let head = repo.commit("Add task c");
        fake.with(|s| s.files = vec!["plans/wf.yaml".into(), "plancd.yaml".into()]);
        let dir = tempfile::tempdir().unwrap();
        let payload = event(dir.path(), "pull_request.json", |p| {
            p["pull_request"]["base"]["sha"] = base.clone().into();
            p["pull_request"]["head"]["sha"] = head.clone().into();
        });
        let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_EVENT_PATH", payload.as_str())];
        plancd_async(repo.path(), &["action"], &env).await.expect_code(0);
        plancd_async(repo.path(), &["action"], &env).await.expect_code(0);

        let comments = fake.with(|s| s.comments.clone());
        assert_eq!(comments.len(), 1, "one sticky preview: {comments:?}");
        let text = comments[0]["body"].as_str().unwrap();
        assert!(text.contains("<!-- plancd:preview -->") && text.contains("would start 1 task(s)"), "{text}");
        assert!(text.contains("| `wf/c` | coder | command `sh agents/write.sh` |"), "{text}");
        assert!(!text.contains("evil"), "the configuration came from the pull request:\n{text}");
        assert_eq!(repo.git(&["for-each-ref", "refs/ai/", "refs/heads/ai/"]), "", "nothing ran");

        // A broken plan: annotations, exit 2, and the preview says so.
        repo.write("plans/wf.yaml", &format!("{plan}  - id: c\n    title: Task c\n    agent_role: coder\n    dependencies: [zz]\n"));
        repo.commit("Break the plan");
        let broken = plancd_async(repo.path(), &["action"], &env).await;
        broken.expect_code(2);
        assert!(broken.stdout.contains("::error file=plans/wf.yaml,line="), "{}", broken.stdout);
        let text = fake.with(|s| s.comments[0]["body"].as_str().unwrap().to_owned());
        assert!(text.contains("error(s); nothing would run") && text.contains("unknown-dependency"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn a_retry_comment_by_a_maintainer_runs_a_new_attempt_on_the_same_branch() {
    within(240, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = repo(&fake, remote.path());
        plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await.expect_code(0);
        let before = git_in(remote.path(), &["rev-parse", "refs/heads/ai/generated/wf/a"]);
        let dir = tempfile::tempdir().unwrap();

        // Someone without write access is ignored.
        let stranger = event(dir.path(), "issue_comment.json", |p| p["comment"]["user"]["login"] = "stranger".into());
        let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "issue_comment"), ("GITHUB_EVENT_PATH", stranger.as_str())];
        let ignored = plancd_async(repo.path(), &["action"], &env).await;
        ignored.expect_code(0);
        assert!(ignored.stdout.contains("@stranger cannot push"), "{}", ignored.stdout);

        fake.with(|s| s.permissions.push(("maintainer".into(), "write".into())));
        let payload = event(dir.path(), "issue_comment.json", |_| {});
        let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "issue_comment"), ("GITHUB_EVENT_PATH", payload.as_str())];
        let run = plancd_async(repo.path(), &["action"], &env).await;
        run.expect_code(0);
        let status: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/wf/a:status.json"])).unwrap();
        assert_eq!((status["phase"].as_str(), status["attempt"].as_u64()), (Some("Succeeded"), Some(2)));
        assert!(status.get("review").is_none(), "an accepted result answers the review");
        let chain = git_in(remote.path(), &["log", "--format=%B", "refs/ai/tasks/wf/a"]);
        assert!(chain.contains("Plancd-Reason: RevisionRequested\nPlancd-By: maintainer"), "who asked is in the record:\n{chain}");
        // The new result is on the same branch, on the remote, with the comment's instructions.
        let after = git_in(remote.path(), &["rev-parse", "refs/heads/ai/generated/wf/a"]);
        assert_ne!(before, after);
        let notes = git_in(remote.path(), &["show", "refs/heads/ai/generated/wf/a:out/a.notes"]);
        assert_eq!(notes, "Also write the date of the request: 2026-05-01.");
        git_in(remote.path(), &["rev-parse", "refs/tags/ai/wf/a/2"]);
        fake.with(|s| {
            assert_eq!(s.pulls.len(), 2, "no second pull request for the branch");
            let sticky: Vec<&Value> =
                s.comments.iter().filter(|c| c["body"].as_str().unwrap().contains("<!-- plancd:task:wf/a -->")).collect();
            assert_eq!(sticky.len(), 1);
            assert!(sticky[0]["body"].as_str().unwrap().contains("attempt 2 accepted"), "{:?}", sticky[0]);
        });
    })
    .await;
}

#[test]
fn the_action_runs_plancd_action_and_the_example_workflow_uses_it_on_the_events_it_reads() {
    let read = |path: &str| -> Value {
        let bytes = std::fs::read(project_root().join(path)).unwrap();
        plancd::spec::Document::parse(&bytes, plancd::spec::Format::Yaml, &Default::default()).unwrap().value
    };
    let action = read("action.yml");
    for input in ["config", "github-token", "openai-api-key"] {
        assert!(action["inputs"].get(input).is_some(), "input {input}");
    }
    for output in ["tasks-run", "tasks-succeeded", "tasks-failed", "pull-requests"] {
        assert!(action["outputs"].get(output).is_some(), "output {output}");
    }
    let steps = action["runs"]["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["run"], "plancd action");
    let workflow = read("examples/github-action/.github/workflows/plancd.yml");
    let mut on: Vec<&str> = workflow["on"].as_object().unwrap().keys().map(String::as_str).collect();
    on.sort();
    assert_eq!(on, ["issue_comment", "pull_request", "pull_request_review", "push"]);
    let uses: Vec<&str> = workflow["jobs"]["plancd"]["steps"].as_array().unwrap().iter().filter_map(|s| s["uses"].as_str()).collect();
    assert!(uses.contains(&"plancd/plancd@main"), "{uses:?}");
}

#[tokio::test]
async fn an_escalated_task_gets_one_issue_with_the_evidence_across_reconciles() {
    within(240, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = Repo::new();
        repo.write(
            "plancd.yaml",
            &format!(
                "branch: main\nmax_branch_depth: 1\nroles:\n  coder: {{ command: [\"sh\", \"-c\", \"cat answer > out.txt\"] }}\nforge:\n  github: {{ repo: acme/widgets, token_env: GITHUB_TOKEN, api_url: \"{}\" }}\n",
                fake.api_url()
            ),
        );
        // The agent cannot fix it: the answer is wrong in the repository.
        repo.write("answer", "41\n");
        repo.write(
            "plans/p.yaml",
            "todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: The answer\n    agent_role: coder\n    max_attempts: 1\n    acceptance_criteria:\n      tests: [{cmd: \"grep -qx 42 out.txt || { echo want 42, got $(cat out.txt); exit 1; }\"}]\n",
        );
        repo.commit("plan");
        repo.git(&["remote", "add", "origin", remote.path().to_str().unwrap()]);
        repo.git(&["push", "-q", "origin", "main"]);

        let run = plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await;
        run.expect_code(1);
        let issues = fake.with(|s| s.issues.clone());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0]["title"], "plancd: p/t needs a person: The answer");
        assert_eq!(issues[0]["labels"][0]["name"], "plancd");
        let body = issues[0]["body"].as_str().unwrap();
        for part in [
            "<!-- plancd:escalation:p/t -->",
            "**`p/t`** (The answer) was escalated to a person after attempt 1.",
            "| reason | `MaxBranchDepth` |",
            "| branch todos | `t_branch_01` |",
            "### Last test output",
            "want 42, got 41",
            "`plancd retry p/t`",
        ] {
            assert!(body.contains(part), "{part} missing from\n{body}");
        }
        let statuses = fake.with(|s| s.statuses.clone());
        assert_eq!(statuses.last().map(|s| (s["context"].clone(), s["state"].clone())), Some(("plancd/p".into(), "failure".into())));

        // Reconciling again changes nothing on GitHub: the same issue, not edited.
        let again = plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await;
        again.expect_code(1);
        fake.with(|s| assert_eq!(s.issues.len(), 1));
        assert_eq!(fake.count("POST", "/issues").await, 1);
        assert_eq!(fake.count("PATCH", "/issues/500").await, 0);
        assert!(!fake.everything_sent().await.contains(TOKEN));
    })
    .await;
}

#[tokio::test]
async fn the_preview_refuses_a_task_whose_role_has_no_agent_at_its_agent_role() {
    within(120, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = repo(&fake, remote.path());
        let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
        repo.git(&["checkout", "-q", "-b", "plan-review"]);
        let plan = std::fs::read_to_string(repo.path().join("plans/wf.yaml")).unwrap();
        // Its `agent_role` is at 24:17; the base's plancd.yaml has no tester.
        repo.write("plans/wf.yaml", &format!("{plan}  - id: review\n    title: Review\n    agent_role: tester\n    dependencies: [b]\n"));
        let head = repo.commit("Add a review by a tester");
        fake.with(|s| s.files = vec!["plans/wf.yaml".into()]);
        let dir = tempfile::tempdir().unwrap();
        let payload = event(dir.path(), "pull_request.json", |p| {
            p["pull_request"]["base"]["sha"] = base.clone().into();
            p["pull_request"]["head"]["sha"] = head.clone().into();
        });
        let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_EVENT_PATH", payload.as_str())];
        let run = plancd_async(repo.path(), &["action"], &env).await;
        run.expect_code(2);
        assert!(run.stdout.contains("::error file=plans/wf.yaml,line=24,col=17"), "{}", run.stdout);
        let text = fake.with(|s| s.comments[0]["body"].as_str().unwrap().to_owned());
        assert!(text.contains("error[no-agent]: tasks[2].agent_role: task `review`: no agent plays role `tester`"), "{text}");
        assert!(text.contains("add roles.tester to plancd.yaml"), "{text}");
        assert!(!text.contains("| `wf/review` |"), "the task is not listed as one that would run:\n{text}");
    })
    .await;
}

#[tokio::test]
async fn a_stalled_workflow_gets_a_failed_commit_status_that_says_why_and_the_others_run() {
    within(240, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let remote = bare();
        let repo = repo(&fake, remote.path());
        repo.write("plans/bad.yaml", "todo_list_id: bad\ntitle: Bad\ntasks:\n  - id: r\n    title: R\n    agent_role: tester\n");
        repo.commit("A workflow whose role has no agent");
        repo.git(&["push", "-q", "origin", "main"]);
        let run = plancd_async(repo.path(), &["reconcile"], &[("GITHUB_TOKEN", TOKEN)]).await;
        run.expect_code(1);
        let statuses = fake.with(|s| s.statuses.clone());
        let last = |context: &str| statuses.iter().rev().find(|s| s["context"] == context).cloned().unwrap_or_default();
        assert_eq!(last("plancd/wf")["state"], "success", "{statuses:?}");
        let bad = last("plancd/bad");
        assert_eq!(bad["state"], "failure", "{statuses:?}");
        let description = bad["description"].as_str().unwrap();
        assert!(description.starts_with("Stalled (PlanInvalid): 1 error(s); plans/bad.yaml:6: task `r`: no agent"), "{description}");
        assert!(description.chars().count() <= 140, "{description}");
        fake.with(|s| assert_eq!(s.pulls.len(), 2, "the valid workflow's results were published"));
    })
    .await;
}
