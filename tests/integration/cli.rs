//! The command line itself: help on every command, completions, graph output, exit codes.

use crate::util::{plancd, plancd_in, project_root};

#[test]
fn every_command_has_help() {
    let top = plancd(&["--help"]);
    top.expect_code(0);
    for verb in ["validate", "init", "graph", "completions"] {
        assert!(top.stdout.contains(verb), "top-level help lists {verb}");
        let run = plancd(&[verb, "--help"]);
        run.expect_code(0);
        assert!(run.stdout.contains("Usage: plancd"), "{verb} --help:\n{}", run.stdout);
    }
}

#[test]
fn bad_arguments_exit_2() {
    plancd(&["validate", "-o", "yaml-please"]).no_panic().expect_code(2);
    plancd(&["no-such-verb"]).no_panic().expect_code(2);
    let run = plancd(&["validate", "does/not/exist.yaml"]);
    run.no_panic().expect_code(2);
    assert!(run.stderr.contains("`does/not/exist.yaml` does not exist"), "{}", run.stderr);
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [("bash", "_plancd()"), ("zsh", "#compdef plancd"), ("fish", "complete -c plancd")] {
        let run = plancd(&["completions", shell]);
        run.expect_code(0);
        assert!(run.stdout.contains(marker), "{shell}: {}", &run.stdout[..run.stdout.len().min(200)]);
        assert!(run.stdout.contains("validate"));
    }
}

#[test]
fn graph_draws_mermaid_and_dot() {
    let dir = project_root().join("examples/sma-crossover");
    let run = plancd_in(&dir, &["graph", "sma-crossover"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("flowchart TD\n"));
    assert!(run.stdout.contains("n_sma_2d_crossover__t1_contract --> n_sma_2d_crossover__t2_indicators"), "{}", run.stdout);
    let run = plancd_in(&dir, &["graph", "-o", "dot"]);
    run.expect_code(0);
    assert!(run.stdout.contains("\"sma-crossover/t2_indicators\" -> \"sma-crossover/t3_strategy\";"), "{}", run.stdout);
    let run = plancd_in(&dir, &["graph", "nope"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no workflow `nope`; workflows here: sma-crossover"), "{}", run.stderr);
}

#[test]
fn the_repo_flag_works_like_git_dash_c() {
    let run = plancd(&["-C", "examples/hello", "validate"]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), "valid: 1 plan, 1 config");
}

#[test]
fn warnings_do_not_fail_validation() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plans")).unwrap();
    std::fs::write(dir.path().join("plancd.yaml"), "branch: main\nroles:\n  coder: { command: [agent] }\n").unwrap();
    std::fs::write(dir.path().join("plans/p.yaml"), "todo_list_id: w\ntitle: W\ntasks:\n  - {id: a, title: A, agent_role: coder}\n")
        .unwrap();
    let run = plancd_in(dir.path(), &["validate"]);
    run.expect_code(0);
    assert!(run.stdout.contains("plans/p.yaml:4:10: warning[no-acceptance-tests]"), "{}", run.stdout);
    assert!(run.stdout.contains("valid: 1 plan, 1 config, 1 warning"), "{}", run.stdout);
}

#[test]
fn two_plans_with_one_workflow_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plans")).unwrap();
    let plan =
        "todo_list_id: same\ntitle: W\ntasks:\n  - {id: a, title: A, agent_role: coder, acceptance_criteria: {tests: [{cmd: 'true'}]}}\n";
    std::fs::write(dir.path().join("plans/a.yaml"), plan).unwrap();
    std::fs::write(dir.path().join("plans/b.yaml"), plan).unwrap();
    std::fs::write(dir.path().join("plancd.yaml"), "roles: { coder: { command: [agent] } }\n").unwrap();
    let run = plancd_in(dir.path(), &["validate"]);
    run.expect_code(2);
    assert!(
        run.stdout.contains("plans/b.yaml:1:15: error[duplicate-workflow]: todo_list_id: workflow id `same` is also used by plans/a.yaml"),
        "{}",
        run.stdout
    );
}
