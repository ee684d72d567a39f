//! Three `plancd reconcile` processes on one repository, over and over: no agent starts twice.
//! Launches are counted outside plancd, by a wrapper around bubblewrap that logs each agent it
//! starts (task and watched commit) to a file outside the repository.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Instant;

use crate::util::{Repo, plancd_command};

const TASKS: usize = 60;
const PROCESSES: usize = 3;

/// Logs `<task> <plan commit>` for each launch of `agent.sh` (read from the session's task
/// file, bound at /run/plancd), then runs the real bubblewrap. Commands run as an unprivileged
/// user when plancd is root, so the log is open to all.
const BWRAP_WRAPPER: &str = r#"#!/bin/sh
meta=""; prev=""; prev2=""; agent=0
for a in "$@"; do
  if [ "$a" = "/run/plancd" ] && [ "$prev2" = "--ro-bind" ]; then meta="$prev"; fi
  if [ "$a" = "agent.sh" ]; then agent=1; fi
  prev2="$prev"; prev="$a"
done
if [ "$agent" = 1 ] && [ -n "$meta" ]; then
  task=$(/usr/bin/sed -n 's/^  "task_id": "\([^"]*\)".*/\1/p' "$meta/task.json")
  commit=$(/usr/bin/sed -n 's/^  "plan_commit": "\([^"]*\)".*/\1/p' "$meta/task.json")
  echo "$task $commit" >> "@LOG@"
fi
exec @BWRAP@ "$@"
"#;

const AGENT: &str = "#!/bin/sh\nsleep 0.05\nmkdir -p out && echo \"$PLANCD_TASK_ID\" > \"out/$PLANCD_TASK_ID.txt\"\n";

/// Sixty tasks with no dependencies: all ready at once. `round` is in every description, so
/// each round changes every task's spec.
fn plan(round: usize) -> String {
    let mut out = String::from("todo_list_id: wide\ntitle: Sixty at once\ntasks:\n");
    for i in 0..TASKS {
        out.push_str(&format!(
            "  - id: t{i:02}\n    title: Task {i}\n    description: round {round}\n    agent_role: coder\n    outputs: [out/t{i:02}.txt]\n    acceptance_criteria:\n      tests: [{{cmd: \"test -s out/t{i:02}.txt\"}}]\n"
        ));
    }
    out
}

fn real_bwrap() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .chain([Path::new("/usr/bin/bwrap").to_path_buf()])
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

fn spawn(repo: &Repo, path_var: &str, n: usize) -> Child {
    plancd_command(repo.path(), &["reconcile"], &[("PATH", path_var), ("PLANCD_HOST", &format!("proc-{n}"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn three_reconciles_of_sixty_ready_tasks_never_start_an_agent_twice() {
    let Some(bwrap) = real_bwrap() else {
        eprintln!("SKIPPED: no bubblewrap here");
        return;
    };
    let rounds: usize = std::env::var("PLANCD_STRESS_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = outside.path().join("launches.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let bin = outside.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let wrapper = bin.join("bwrap");
    std::fs::write(&wrapper, BWRAP_WRAPPER.replace("@LOG@", &log.display().to_string()).replace("@BWRAP@", &bwrap)).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path_var = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nconcurrency: 4\nroles:\n  coder: { command: [\"sh\", \"agent.sh\"] }\n");
    repo.write("agent.sh", AGENT);
    let started = Instant::now();
    let mut commits = Vec::new();
    for round in 0..rounds {
        repo.write("plans/wide.yaml", &plan(round));
        commits.push(repo.commit(&format!("Round {round}")));
        let runs: Vec<Child> = (0..PROCESSES).map(|n| spawn(&repo, &path_var, n)).collect();
        for out in runs.into_iter().map(|c| c.wait_with_output().unwrap()) {
            assert_eq!(
                out.status.code(),
                Some(0),
                "round {round}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let subjects = repo.git(&["for-each-ref", "--format=%(contents:subject)", "refs/ai/tasks/wide/"]);
        assert_eq!(subjects.lines().filter(|l| l.starts_with("Succeeded ")).count(), TASKS, "round {round}:\n{subjects}");
    }
    let elapsed = started.elapsed();

    let mut starts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let (task, commit) = line.split_once(' ').unwrap_or((line, ""));
        *starts.entry((task.to_owned(), commit.to_owned())).or_default() += 1;
    }
    let doubles: Vec<_> = starts.iter().filter(|(_, n)| **n > 1).collect();
    let total: usize = starts.values().sum();
    println!(
        "stress: {rounds} round(s) x {TASKS} tasks x {PROCESSES} processes in {:.1}s: {total} agent start(s) for {} (task, spec), {} double start(s)",
        elapsed.as_secs_f64(),
        starts.len(),
        doubles.len()
    );
    assert!(commits.iter().all(|c| starts.keys().filter(|(_, commit)| commit == c).count() == TASKS), "every task started in every round");
    assert_eq!(starts.len(), rounds * TASKS);
    assert!(doubles.is_empty(), "agents started twice: {doubles:?}");
}
