//! Every example repository validates, and every plan-like file in `examples/` is checked.

use crate::util::{plancd, plancd_in, project_root};

fn example_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(project_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("plancd.yaml").is_file())
        .map(|e| format!("examples/{}", e.file_name().to_string_lossy()))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn the_seed_examples_exist() {
    let dirs = example_dirs();
    for name in ["examples/hello", "examples/momentum", "examples/sma-crossover"] {
        assert!(dirs.iter().any(|d| d == name), "{name} missing from {dirs:?}");
    }
}

#[test]
fn every_example_repository_is_valid() {
    for dir in example_dirs() {
        let run = plancd(&["validate", &dir, "-o", "json"]);
        run.expect_code(0);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let files = report["files"].as_array().unwrap();
        assert!(files.iter().any(|f| f["kind"] == "plan"), "{dir}: no plan checked");
        assert!(files.iter().any(|f| f["kind"] == "config"), "{dir}: no config checked");
        assert_eq!(report["diagnostics"].as_array().unwrap().len(), 0, "{dir}: {}", run.stdout);
    }
}

#[test]
fn every_yaml_and_json_file_in_examples_is_valid_on_its_own() {
    // Each file checked by itself, classified by its content, against its repository.
    let mut checked = 0;
    for dir in example_dirs() {
        for entry in walk(&project_root().join(&dir)) {
            let rel = entry.strip_prefix(project_root()).unwrap().to_string_lossy().into_owned();
            if !(rel.ends_with(".yaml") || rel.ends_with(".yml") || rel.ends_with(".json")) {
                continue;
            }
            plancd(&["validate", &rel]).expect_code(0);
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} files checked");
}

#[test]
fn every_example_names_its_schema_for_editors() {
    for dir in example_dirs() {
        for entry in walk(&project_root().join(&dir)) {
            let name = entry.to_string_lossy();
            if name.ends_with(".yaml") {
                let text = std::fs::read_to_string(&entry).unwrap();
                let first = text.lines().next().unwrap_or_default();
                assert!(first.starts_with("# yaml-language-server: $schema="), "{name}: first line is {first:?}");
                let schema = first.split('=').nth(1).unwrap();
                assert!(entry.parent().unwrap().join(schema).is_file(), "{name}: {schema} does not exist");
            }
        }
    }
}

#[test]
fn validate_with_no_path_checks_the_repository_around_the_current_directory() {
    let run = plancd_in(&project_root().join("examples/momentum/plans"), &["validate"]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), "valid: 1 plan, 1 contract, 1 config");
}

#[test]
fn the_hello_example_reconciles_offline_with_its_scripted_model() {
    let repo = crate::util::Repo::new();
    let status = std::process::Command::new("cp").arg("-a").arg(project_root().join("examples/hello/.")).arg(repo.path()).status().unwrap();
    assert!(status.success());
    repo.commit("the hello example");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stdout.contains("1/1 tasks satisfied"), "{}", run.stdout);
    assert_eq!(repo.git(&["show", "ai/generated/hello/greet:hello.py"]), "print(\"hello, world\")\n");
    let model = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-Model,valueonly)", "ai/generated/hello/greet"]);
    assert_eq!(model.trim(), "scripted");
}

#[test]
fn the_momentum_example_reconciles_offline_end_to_end() {
    let repo = crate::util::Repo::new();
    let status =
        std::process::Command::new("cp").arg("-a").arg(project_root().join("examples/momentum/.")).arg(repo.path()).status().unwrap();
    assert!(status.success());
    repo.commit("the momentum example");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stdout.contains("4/4 tasks satisfied, 4 attempt(s) run"), "{}\n{}", run.stdout, run.stderr);
    // Each result holds its task's work on top of its dependencies' results.
    let files = repo.git(&["ls-tree", "-r", "--name-only", "ai/generated/momentum/t4_review"]);
    for file in ["strategy/rsi.py", "strategy/momentum.py", "strategy/momentum_strategy.py", "tests/test_momentum_review.py"] {
        assert!(files.lines().any(|f| f == file), "{file} missing from the review's result:\n{files}");
    }
    for task in ["t1_rsi", "t2_momentum", "t3_strategy", "t4_review"] {
        let model = repo.git(&["log", "-1", "--format=%(trailers:key=Plancd-Model,valueonly)", &format!("ai/generated/momentum/{task}")]);
        assert_eq!(model.trim(), "scripted", "{task}");
        assert!(repo.git(&["tag", "--list", &format!("ai/momentum/{task}/1")]).contains(task), "{task} has no tag");
    }
    // The pinned tests and the review's own all pass on the last result.
    let message = repo.git(&["log", "-1", "--format=%s", "refs/ai/tasks/momentum/t4_review"]);
    assert!(message.starts_with("Succeeded"), "{message}");
    // A second pass has nothing to do.
    let again = repo.plancd(&["reconcile"]);
    again.expect_code(0);
    assert!(again.stdout.contains("4/4 tasks satisfied, 0 attempt(s) run"), "{}", again.stdout);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
