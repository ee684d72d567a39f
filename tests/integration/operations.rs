//! Operations from the command line (`approve`, `retry`, `suspend`, `resume`): one record per
//! operation with who did it, refusals that say what to do instead, and records that reach the
//! remote the controllers read.

use serde_json::Value;

use crate::util::{Repo, bare, git_in, plancd_env};

/// One coder task whose agent writes `out.txt` from the repository's `answer` file; the test
/// wants "42". `extra_task` goes into the task, `config_extra` into plancd.yaml.
fn single(extra_task: &str, config_extra: &str, answer: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!("branch: main\nroles:\n  coder: {{ command: [\"sh\", \"-c\", \"cat answer > out.txt\"] }}\n{config_extra}"),
    );
    repo.write("answer", answer);
    repo.write(
        "plans/p.yaml",
        &format!("todo_list_id: p\ntitle: P\ntasks:\n  - id: t\n    title: T\n    agent_role: coder\n    max_attempts: 1\n{extra_task}    acceptance_criteria:\n      tests: [{{cmd: \"grep -qx 42 out.txt\"}}]\n"),
    );
    repo.commit("plan");
    repo
}

fn status(dir: &std::path::Path, task: &str) -> Value {
    serde_json::from_str(&git_in(dir, &["show", &format!("refs/ai/tasks/{task}:status.json")])).unwrap()
}

/// How many records of `task`'s chain have `subject_start` as their first word.
fn records(repo: &Repo, task: &str, subject_start: &str) -> usize {
    repo.git(&["log", "--format=%s", &format!("refs/ai/tasks/{task}")]).lines().filter(|l| l.starts_with(subject_start)).count()
}

#[test]
fn an_approval_is_one_record_and_approving_again_or_after_success_is_refused() {
    let repo = single("    requires_approval: true\n", "", "42\n");
    repo.plancd(&["reconcile"]).expect_code(0);
    let approve = repo.plancd(&["approve", "p/t"]);
    approve.expect_code(0);

    // Twice: refused, with what to do instead, and no second record.
    let again = repo.plancd(&["approve", "p/t"]);
    again.expect_code(2);
    assert!(again.stderr.contains("p/t is approved for its current spec already; nothing to do"), "{}", again.stderr);
    assert_eq!(records(&repo, "p/t", "Approved "), 1);

    // After it succeeded: refused, and nothing runs again.
    repo.plancd(&["reconcile"]).expect_code(0);
    assert_eq!(repo.git(&["tag", "--list"]).trim(), "ai/p/t/1");
    let late = repo.plancd(&["approve", "p/t"]);
    late.expect_code(2);
    assert!(
        late.stderr.contains("p/t succeeded (attempt 1) for its current spec; to ask for changes: plancd retry p/t -m"),
        "{}",
        late.stderr
    );
    repo.plancd(&["reconcile"]).expect_code(0);
    assert_eq!(repo.git(&["tag", "--list"]).trim(), "ai/p/t/1", "an approval of a succeeded task re-ran it");
}

#[test]
fn an_approval_records_who_gave_it_from_git_s_user_email_or_as() {
    let repo = single("    requires_approval: true\n", "", "42\n");
    repo.git(&["config", "user.email", "dev@example.com"]);
    let approve = repo.plancd(&["approve", "p/t"]);
    approve.expect_code(0);
    assert_eq!(status(repo.path(), "p/t")["by"], "dev@example.com");
    assert!(approve.stdout.contains("recorded in this repository (refs/ai/tasks/p/t)"), "{}", approve.stdout);
    assert!(repo.git(&["log", "-1", "--format=%B", "refs/ai/tasks/p/t"]).contains("approved by dev@example.com"));
    let trailer = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-By,valueonly)", "refs/ai/tasks/p/t"]);
    assert_eq!(trailer.trim(), "dev@example.com");

    // --as wins over git's identity.
    let other = single("    requires_approval: true\n", "", "42\n");
    other.git(&["config", "user.email", "dev@example.com"]);
    other.plancd(&["approve", "p/t", "--as", "ann@example.com"]).expect_code(0);
    assert_eq!(status(other.path(), "p/t")["by"], "ann@example.com");
}

#[test]
fn operations_that_mean_nothing_are_refused_with_what_to_do_instead() {
    let repo = single("", "max_branch_depth: 1\n", "41\n");
    let suspend = repo.plancd(&["suspend", "nosuch"]);
    suspend.expect_code(2);
    assert!(suspend.stderr.contains("no plan defines workflow `nosuch`; `plancd status` lists the workflows"), "{}", suspend.stderr);
    assert_eq!(repo.git(&["for-each-ref", "refs/ai/workflows/"]), "");
    repo.plancd(&["approve", "p/t"]).expect_code(2);
    repo.plancd(&["retry", "p/nosuch"]).expect_code(2);
    repo.plancd(&["retry", "p/t"]).expect_code(2); // it never ran

    // Escalated after its branch todo failed: the branch todo is closed, the parent is retried.
    repo.plancd(&["reconcile"]).expect_code(1);
    assert_eq!(status(repo.path(), "p/t")["phase"], "Escalated");
    let tip = repo.git(&["rev-parse", "refs/ai/tasks/p/t_branch_01"]);
    let branch = repo.plancd(&["retry", "p/t_branch_01"]);
    branch.expect_code(2);
    assert!(branch.stderr.contains("p/t_branch_01 is a branch todo of p/t; retry the parent: plancd retry p/t"), "{}", branch.stderr);
    assert_eq!(repo.git(&["rev-parse", "refs/ai/tasks/p/t_branch_01"]), tip, "the branch todo's record moved");

    // The parent's retry is one record, with who asked; a second retry before a run is refused.
    repo.write("answer", "42\n");
    repo.commit("fix the answer");
    let retry = repo.plancd(&["retry", "p/t", "--as", "ann"]);
    retry.expect_code(0);
    assert!(retry.stdout.contains("re-opened p/t; the next reconcile runs attempt 2"), "{}", retry.stdout);
    let twice = repo.plancd(&["retry", "p/t", "--as", "ann"]);
    twice.expect_code(2);
    assert!(twice.stderr.contains("p/t is Pending; the next reconcile runs it"), "{}", twice.stderr);
    assert_eq!(records(&repo, "p/t", "Pending "), 1);
    assert_eq!(status(repo.path(), "p/t")["by"], "ann");
    repo.plancd(&["reconcile"]).expect_code(0);

    // Suspending twice, or resuming what runs, means nothing either.
    repo.plancd(&["suspend", "p"]).expect_code(0);
    let twice = repo.plancd(&["suspend", "p"]);
    twice.expect_code(2);
    assert!(twice.stderr.contains("p is suspended already; `plancd resume p` resumes it"), "{}", twice.stderr);
    repo.plancd(&["resume", "p"]).expect_code(0);
    repo.plancd(&["resume", "p"]).expect_code(2);
    assert_eq!(repo.git(&["log", "--format=%s", "refs/ai/workflows/p"]).lines().count(), 2);
}

#[test]
fn a_retry_with_instructions_asks_a_succeeded_task_for_changes() {
    let repo = single("", "", "42\n");
    repo.plancd(&["reconcile"]).expect_code(0);
    let plain = repo.plancd(&["retry", "p/t"]);
    plain.expect_code(2);
    assert!(plain.stderr.contains("p/t succeeded (attempt 1) for its current spec"), "{}", plain.stderr);
    let revise = repo.plancd(&["retry", "p/t", "-m", "keep a trailing newline", "--as", "ann"]);
    revise.expect_code(0);
    let s = status(repo.path(), "p/t");
    assert_eq!((s["phase"].as_str(), s["reason"].as_str()), (Some("Pending"), Some("RevisionRequested")));
    assert_eq!(s["review"]["instructions"], "keep a trailing newline");
    assert_eq!(s["review"]["by"], "ann");
}

/// A repository whose `origin` is a bare repository (by `file://` URL, as a remote on another
/// machine would be), holding `main`.
fn with_origin(repo: &Repo) -> tempfile::TempDir {
    let origin = bare();
    repo.git(&["remote", "add", "origin", &format!("file://{}", origin.path().display())]);
    repo.git(&["push", "-q", "origin", "main"]);
    origin
}

/// A controller's clone of `origin`, with the task and workflow refs it holds.
fn controller(origin: &std::path::Path) -> Repo {
    let clone = Repo::new();
    clone.git(&["remote", "add", "origin", &format!("file://{}", origin.display())]);
    clone.git(&["fetch", "-q", "--update-head-ok", "origin", "+refs/heads/main:refs/heads/main", "+refs/ai/*:refs/ai/*"]);
    clone.git(&["reset", "-q", "--hard", "main"]);
    clone
}

#[test]
fn operations_reach_the_remote_where_a_controller_sees_them() {
    let repo = single("    requires_approval: true\n", "", "42\n");
    let origin = with_origin(&repo);
    // The controller's first pass marks the task as waiting, on the remote.
    let ctl = controller(origin.path());
    ctl.plancd(&["reconcile"]).expect_code(0);
    assert!(git_in(origin.path(), &["log", "-1", "--format=%s", "refs/ai/tasks/p/t"]).starts_with("NeedsApproval"));

    // A person approves from a laptop whose clone never saw that record.
    repo.git(&["config", "user.email", "ann@example.com"]);
    let approve = plancd_env(repo.path(), &["approve", "p/t"], &[]);
    approve.expect_code(0);
    assert!(approve.stdout.contains("recorded on origin (refs/ai/tasks/p/t)"), "{}", approve.stdout);
    let on_origin = status(origin.path(), "p/t");
    assert_eq!((on_origin["phase"].as_str(), on_origin["by"].as_str()), (Some("Approved"), Some("ann@example.com")));
    assert_eq!(
        git_in(origin.path(), &["rev-parse", "refs/ai/tasks/p/t^"]),
        ctl.git(&["rev-parse", "refs/ai/tasks/p/t"]),
        "the approval is appended to the controller's record"
    );

    // The controller fetches, sees it, and runs the task.
    ctl.git(&["fetch", "-q", "origin", "+refs/ai/*:refs/ai/*"]);
    ctl.plancd(&["reconcile"]).expect_code(0);
    assert_eq!(ctl.git(&["tag", "--list"]).trim(), "ai/p/t/1");

    // Suspension too; --local keeps one in this repository.
    let suspend = repo.plancd(&["suspend", "p"]);
    suspend.expect_code(0);
    assert!(suspend.stdout.contains("recorded on origin (refs/ai/workflows/p)"), "{}", suspend.stdout);
    assert!(git_in(origin.path(), &["log", "-1", "--format=%B", "refs/ai/workflows/p"]).contains("Plancd-By: ann@example.com"));
    let local = repo.plancd(&["resume", "p", "--local"]);
    local.expect_code(0);
    assert!(local.stdout.contains("recorded in this repository (refs/ai/workflows/p)"), "{}", local.stdout);
    assert!(git_in(origin.path(), &["log", "-1", "--format=%s", "refs/ai/workflows/p"]).starts_with("Suspended"));
}

#[test]
fn an_operation_reads_the_remote_first_so_a_second_approval_elsewhere_is_refused() {
    let repo = single("    requires_approval: true\n", "", "42\n");
    let origin = with_origin(&repo);
    let ctl = controller(origin.path());
    ctl.plancd(&["approve", "p/t"]).expect_code(0);
    let second = repo.plancd(&["approve", "p/t"]);
    second.expect_code(2);
    assert!(second.stderr.contains("approved for its current spec already"), "{}", second.stderr);
    assert_eq!(git_in(origin.path(), &["log", "--format=%s", "refs/ai/tasks/p/t"]).lines().count(), 1);

    // An unreachable remote is an outside failure, and --local is the way out.
    repo.git(&["remote", "set-url", "origin", "file:///nonexistent/plancd-origin"]);
    let unreachable = repo.plancd(&["suspend", "p"]);
    unreachable.expect_code(3);
    assert!(unreachable.stderr.contains("--local"), "{}", unreachable.stderr);
    repo.plancd(&["suspend", "p", "--local"]).expect_code(0);
}
