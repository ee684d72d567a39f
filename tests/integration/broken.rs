//! The broken-plan corpus: every file is refused with exit 2, a `file:line:column` and a
//! message that says what is wrong, and nothing panics.

use crate::util::{plancd, plancd_in, project_root};

/// File, expected `line:column`, a fragment of the expected message.
const CASES: &[(&str, &str, &str)] = &[
    ("alias-bomb.yaml", "6:29", "document expands to more than 1000000 values"),
    ("bad-branch-reason.yaml", "15:20", "tasks[1].branch_reason: `gremlins` is not one of"),
    ("complex-key.yaml", "9:7", "a mapping key must be a plain value"),
    ("contract-outside-repo.yaml", "9:15", "tasks[0].contract: contract path `../../secrets.yaml` leaves the repository"),
    ("cycle.yaml", "9:20", "dependency cycle: a -> c -> b -> a"),
    ("deep-nesting.json", "1:128", "nesting deeper than 128 levels"),
    ("deep-nesting.yaml", "1:", "nesting deeper than 128 levels"),
    ("dependencies-not-a-list.yaml", "14:19", "tasks[1].dependencies: expected a list, found a string `t0`"),
    ("duplicate-dependency.yaml", "14:19", "`t0` appears twice"),
    ("duplicate-id.yaml", "9:9", "task id `t1` is already used by tasks[0] (line 4)"),
    ("duplicate-key.json", "4:3", "duplicate key `todo_list_id` (first defined at line 2)"),
    ("duplicate-key.yaml", "7:5", "tasks[0].title: duplicate key `title` (first defined at line 5)"),
    ("empty-tasks.yaml", "3:8", "tasks: must not be empty"),
    ("empty.yaml", "1:1", "file is empty"),
    ("json-comment.json", "2:3", "invalid JSON"),
    ("malformed-json.json", "5:1", "invalid JSON: trailing comma"),
    ("malformed-yaml.yaml", "6:15", "invalid YAML"),
    ("max-debug-attempts-too-high.yaml", "9:25", "tasks[0].max_debug_attempts: 11 is greater than the maximum of 10"),
    ("missing-contract.yaml", "9:15", "contract `contracts/nope.yaml` does not exist in the repository"),
    ("missing-pinned-test.yaml", "9:15", "pinned test file `tests/test_missing.py` does not exist"),
    ("missing-tasks.yaml", "1:1", "missing required field `tasks`"),
    ("missing-todo-list-id.yaml", "1:1", "missing required field `todo_list_id`"),
    ("multiple-documents.yaml", "9:1", "more than one YAML document"),
    ("non-utf8.yaml", "2:11", "invalid UTF-8 (byte 0xe9)"),
    ("reserved-branch-id.yaml", "4:9", "has the form plancd gives branch todos"),
    ("routing-to-unknown-role.yaml", "10:27", "failure_routing.implementation_bug: `fixer` is not one of"),
    ("routing-unknown-failure-type.yaml", "10:7", "unknown failure type `segfault`"),
    ("scalar-document.yaml", "1:1", "expected a mapping, found a string"),
    ("self-dependency.yaml", "9:20", "task `t1` depends on itself"),
    ("tab-indentation.yaml", "4:9", "invalid YAML"),
    ("task-missing-id.yaml", "4:5", "tasks[0]: missing required field `id`"),
    ("task-missing-role.yaml", "4:5", "tasks[0]: missing required field `agent_role`"),
    ("test-without-cmd.yaml", "9:11", "tasks[0].acceptance_criteria.tests[0]: missing required field `cmd`"),
    ("timeout-not-a-number.yaml", "9:22", "tasks[0].timeout_seconds: expected a whole number, found a string `fast`"),
    ("timeout-zero.yaml", "9:22", "tasks[0].timeout_seconds: 0 is less than the minimum of 1"),
    ("top-level-list.yaml", "1:1", "expected a mapping, found a list"),
    ("unknown-dependency.yaml", "14:20", "tasks[1].dependencies[0]: no task `t3` in this plan"),
    ("unknown-field.yaml", "14:5", "unknown field `dependecies`"),
    ("unknown-role.yaml", "6:17", "`archtect` is not one of"),
    ("unsafe-id-control.yaml", "4:9", "contains the control character U+0009"),
    ("unsafe-id-dotdot.yaml", "4:9", "task id `a..b` contains `..`"),
    ("unsafe-id-lock.yaml", "4:9", "task id `main.lock` ends with `.lock`"),
    ("unsafe-id-slash.yaml", "4:9", "task id `a/b` contains `/`"),
    ("unsafe-id-space.yaml", "4:9", "task id `two words` contains a space"),
    ("unsafe-workflow-id.yaml", "1:15", "workflow id `wf@{1}` contains `@{`"),
    ("unsupported-tag.yaml", "9:18", "unsupported YAML tag `!!python/object:os.system`"),
    ("whitespace-only.yaml", "1:1", "file is empty"),
    ("wrong-type-title.yaml", "2:8", "title: expected a string, found a list"),
    ("yes-is-not-a-boolean.yaml", "9:24", "expected true or false, found a string `yes`"),
];

#[test]
fn every_broken_plan_is_refused_with_its_position_and_reason() {
    let mut failures = Vec::new();
    for (file, pos, fragment) in CASES {
        let path = format!("tests/data/broken/{file}");
        let run = plancd(&["validate", &path]);
        run.no_panic();
        let out = run.all();
        let located = format!("{path}:{pos}");
        if run.code != Some(2) || !out.contains(&located) || !out.contains(fragment) {
            failures.push(format!("{file}: exit {:?}, wanted `{located}` and `{fragment}` in:\n{out}", run.code));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn the_corpus_has_a_case_for_every_file() {
    let dir = project_root().join("tests/data/broken");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "plancd.yaml")
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(f, _, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed, "every corpus file has an expectation, and every expectation a file");
    assert!(CASES.len() >= 30);
}

#[test]
fn a_fifty_megabyte_plan_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plancd.yaml"), "plans: []\n").unwrap();
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    let text = line.repeat(50 * 1024 * 1024 / line.len() + 1);
    std::fs::write(dir.path().join("huge.yaml"), text).unwrap();
    let run = plancd_in(dir.path(), &["validate", "huge.yaml"]);
    run.no_panic().expect_code(2);
    assert!(run.stdout.contains("huge.yaml:1:1: error[syntax]: file is 52428"), "{}", run.stdout);
    assert!(run.stdout.contains("more than the 8388608 bytes a plan file may have"), "{}", run.stdout);
}

#[test]
fn all_errors_of_a_file_are_reported_not_only_the_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plancd.yaml"), "plans: []\nroles:\n  coder: { command: [agent] }\n").unwrap();
    let plan = "todo_list_id: wf\ntitle: Many problems\ntasks:\n  - id: a\n    title: A\n    agent_role: coder\n    dependencies: [a, nope]\n  - id: a\n    title: A again\n    agent_role: coder\n  - id: 'x/y'\n    title: X\n    agent_role: coder\n    contract: contracts/missing.yaml\n";
    std::fs::write(dir.path().join("plan.yaml"), plan).unwrap();
    let run = plancd_in(dir.path(), &["validate", "plan.yaml", "-o", "json"]);
    run.expect_code(2);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let errors: Vec<&serde_json::Value> = report["diagnostics"].as_array().unwrap().iter().filter(|d| d["severity"] == "error").collect();
    let codes: Vec<&str> = errors.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["self-dependency", "unknown-dependency", "duplicate-id", "unsafe-id", "missing-file"], "{}", run.stdout);
    let first = errors[0];
    assert_eq!((first["line"].as_u64(), first["column"].as_u64()), (Some(7), Some(20)));
    assert_eq!(first["field"], "tasks[0].dependencies[0]");
    assert_eq!(report["valid"], false);
}
