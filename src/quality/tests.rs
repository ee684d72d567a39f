use super::*;

const COVERAGE: &[u8] = include_bytes!("../../tests/data/quality/coverage-7.17.json");
const BANDIT: &[u8] = include_bytes!("../../tests/data/quality/bandit-1.9.json");

fn m() -> Measurement {
    Measurement::new("/workspace", "t1")
}

#[test]
fn python_test_commands_are_wrapped_under_coverage_and_others_run_as_written() {
    let run = "-m coverage run --rcfile=/workspace/.plancd-quality-t1/coveragerc --data-file=/workspace/.plancd-quality-t1/coverage.data --append";
    let rows: &[(&str, &str, Option<String>)] = &[
        ("python -m pytest", "python3 -m pytest -q tests/test_a.py", Some(format!("python3 {run} -m pytest -q tests/test_a.py"))),
        ("no arguments", "python3 -m pytest", Some(format!("python3 {run} -m pytest"))),
        ("unittest", "python -m unittest discover -s tests", Some(format!("python {run} -m unittest discover -s tests"))),
        ("versioned python", "python3.11 -m pytest", Some(format!("python3.11 {run} -m pytest"))),
        ("venv python", "/env/bin/python -m pytest -x", Some(format!("/env/bin/python {run} -m pytest -x"))),
        ("a script", "python3 run_tests.py --fast", Some(format!("python3 {run} run_tests.py --fast"))),
        ("assignments kept", "PYTHONPATH=src python3 -m pytest", Some(format!("PYTHONPATH=src python3 {run} -m pytest"))),
        ("bare pytest runs its own script", "pytest -q tests", Some(format!("python3 {run} \"$(command -v pytest)\" -q tests"))),
        (
            "the rest is kept as written",
            "python3 -m pytest -k 'a or b' && echo done",
            Some(format!("python3 {run} -m pytest -k 'a or b' && echo done")),
        ),
        ("another module", "python3 -m mypy .", None),
        ("pytest-cov measures itself", "python3 -m pytest --cov=src", None),
        ("bare pytest with pytest-cov", "pytest --cov", None),
        ("python -c", "python3 -c 'print(1)'", None),
        ("not python", "cargo test", None),
        ("a cd first", "cd sub && python3 -m pytest", Some(format!("cd sub && python3 {run} -m pytest"))),
        ("a cd with assignments", "cd pkg/a &&  X=1 pytest -q", Some(format!("cd pkg/a && X=1 python3 {run} \"$(command -v pytest)\" -q"))),
        ("a cd to a quoted folder", "cd 'my dir' && python3 -m pytest", None),
        ("a cd to a variable", "cd $HOME && python3 -m pytest", None),
        ("a cd that may fail on", "cd sub; python3 -m pytest", None),
        ("a cd then a command plancd does not measure", "cd sub && cargo test", None),
        ("an assignment with a substitution", "X=$(pwd) python3 -m pytest", None),
        (
            "node --test",
            "node --test test/",
            Some("node --test --experimental-test-coverage --test-reporter=tap --test-reporter-destination=stdout --test-reporter=lcov --test-reporter-destination=/workspace/.plancd-quality-t1/lcov-0.info test/".to_owned()),
        ),
        ("node without --test", "node app.js", None),
        ("node with its own reporter", "node --test --test-reporter=spec test/", None),
        ("empty", "", None),
    ];
    for (name, cmd, want) in rows {
        assert_eq!(m().wrap(cmd, 0).map(|w| w.cmd), *want, "{name}");
    }
    let venv = m().wrap("/env/bin/python -m pytest", 0).unwrap();
    assert_eq!((venv.tool, venv.program.as_str()), (CoverageTool::CoveragePy, "/env/bin/python"));
    let inner = m().wrap("cd web && node --test", 1).unwrap();
    assert_eq!((inner.tool, inner.cmd.starts_with("cd web && node --test")), (CoverageTool::NodeTest, true), "{}", inner.cmd);
    let node = m().wrap("node --test", 3).unwrap();
    assert_eq!(node.tool, CoverageTool::NodeTest);
    assert!(node.cmd.ends_with("/lcov-3.info"), "one report per command: {}", node.cmd);
}

#[test]
fn plancds_coverage_configuration_ignores_the_works_opt_outs() {
    let rc = m().coverage_rc("/workspace");
    assert!(rc.contains("source = /workspace\n"), "{rc}");
    assert!(rc.contains("    /workspace/.plancd-quality-t1/*\n"), "plancd's own folder is left out: {rc}");
    assert!(rc.contains("    */test_*.py\n"), "test files are not the code: {rc}");
    // A pattern that matches nothing replaces the default `pragma: no cover` exclusion.
    assert!(rc.contains("exclude_lines =\n    (?!)\n"), "{rc}");
    let setup = m().setup_script("/workspace", "python3");
    assert!(setup.starts_with("rm -rf '/workspace/.plancd-quality-t1' && mkdir -p"), "a pre-seeded folder is emptied: {setup}");
    assert!(setup.ends_with("python3 -I -c 'import coverage'"), "{setup}");
    let bandit = m().bandit_script("python3");
    for part in
        ["python3 -I -m bandit", "--ignore-nosec", "--ini '/workspace/.plancd-quality-t1/bandit.ini'", "./.plancd-quality-t1", "-f json"]
    {
        assert!(bandit.contains(part), "{part} in {bandit}");
    }
}

#[test]
fn coverage_py_json_reports_are_read() {
    let c = parse_coverage(COVERAGE, 1, 2).unwrap();
    assert_eq!((c.covered_lines, c.statements, c.files), (5, 9, 1));
    assert!((c.percent - 55.555).abs() < 0.01, "{}", c.percent);
    assert_eq!((c.commands_measured, c.commands), (1, 2));
    assert_eq!(c.tool, CoverageTool::CoveragePy);
}

#[test]
fn coverage_reports_that_cannot_be_trusted_are_refused() {
    let rows: &[(&str, &[u8], ReportError)] = &[
        ("not json", b"No data to report.", ReportError::NotJson(String::new())),
        ("no totals", br#"{"files": {}}"#, ReportError::Missing("totals")),
        (
            "more covered than there is",
            br#"{"totals": {"covered_lines": 5, "num_statements": 2}}"#,
            ReportError::Missing("consistent totals"),
        ),
    ];
    for (name, report, want) in rows {
        let got = parse_coverage(report, 1, 1).unwrap_err();
        match (want, &got) {
            (ReportError::NotJson(_), ReportError::NotJson(_)) => {}
            _ => assert_eq!(&got, want, "{name}"),
        }
    }
    let empty = parse_coverage(br#"{"totals": {"covered_lines": 0, "num_statements": 0}, "files": {}}"#, 1, 1).unwrap();
    assert_eq!(empty.percent, 100.0, "no statements: nothing uncovered");
}

#[test]
fn bandit_json_reports_are_counted_by_severity_most_severe_first() {
    let s = parse_bandit(BANDIT).unwrap();
    assert_eq!(s.counts, SeverityCounts { high: 1, medium: 0, low: 1 });
    assert_eq!(s.lines_scanned, 9);
    assert_eq!(s.findings.len(), 2);
    let first = &s.findings[0];
    assert_eq!((first.rule.as_str(), first.severity, first.path.as_str(), first.line), ("B602", Severity::High, "mod.py", 9));
    assert_eq!(first.confidence, Severity::High);
    assert_eq!(s.summary(), "2 security findings (1 high, 1 low)");
}

#[test]
fn bandit_reports_list_at_most_the_cap_but_count_everything() {
    let issue = |sev: &str| {
        format!(
            r#"{{"test_id": "B101", "issue_severity": "{sev}", "issue_confidence": "HIGH", "filename": "./a.py", "line_number": 1, "issue_text": "t"}}"#
        )
    };
    let results: Vec<String> = (0..120).map(|i| issue(if i % 3 == 0 { "MEDIUM" } else { "LOW" })).collect();
    let report = format!(r#"{{"results": [{}], "metrics": {{}}}}"#, results.join(","));
    let s = parse_bandit(report.as_bytes()).unwrap();
    assert_eq!(s.counts.total(), 120);
    assert_eq!(s.counts.medium, 40);
    assert_eq!(s.findings.len(), FINDINGS_LISTED);
    assert!(s.findings.iter().take(40).all(|f| f.severity == Severity::Medium), "the most severe are the ones listed");
    assert_eq!(parse_bandit(br#"{"results": [], "metrics": {}}"#).unwrap().summary(), "no security findings");
    assert_eq!(parse_bandit(br#"{"errors": []}"#).unwrap_err(), ReportError::Missing("results"));
    assert!(matches!(parse_bandit(b"").unwrap_err(), ReportError::NotJson(_)));
}

#[test]
fn the_python_preset_gates_lint_types_and_security_under_plancds_settings() {
    let checks = CheckPreset::Python.checks(&[Role::Coder, Role::Debugger], Some(90));
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["lint", "types", "security"]);
    assert!(checks.iter().all(|c| c.roles == [Role::Coder, Role::Debugger] && c.timeout_seconds == Some(90)));
    assert!(checks[0].cmd.starts_with("python3 -I -m flake8 --isolated"), "the work's flake8 settings are not read");
    assert!(checks[1].cmd.starts_with("python3 -I -m mypy --config-file= "), "nor its mypy settings");
    assert!(checks[2].cmd.contains("--ignore-nosec") && checks[2].cmd.contains("--ini /dev/null"), "nor its bandit settings or opt-outs");
    assert!(checks[2].cmd.contains(" -ll "), "medium severity and above fails the gate");
}

#[test]
fn tool_failures_say_whether_the_tool_is_missing() {
    assert!(tool_missing("/usr/bin/python3: No module named bandit\n"));
    assert!(!tool_missing("Traceback (most recent call last):\n  ValueError\n"));
}

#[test]
fn node_lcov_reports_are_merged_over_commands_without_test_files() {
    // As node 20's `--test-reporter=lcov` writes it (two commands, the same file in both).
    let first = "TN:\nSF:lib.js\nFN:1,add\nFNDA:1,add\nDA:1,1\nDA:2,0\nDA:3,0\nDA:6,1\nLH:2\nLF:4\nend_of_record\nSF:test/lib.test.js\nDA:1,1\nDA:2,1\nLH:2\nLF:2\nend_of_record\n";
    let second = "TN:\nSF:/workspace/lib.js\nDA:1,1\nDA:2,1\nDA:3,0\nDA:6,1\nend_of_record\nSF:node_modules/dep/index.js\nDA:1,0\nend_of_record\nSF:src/util.spec.js\nDA:1,1\nend_of_record\n";
    let c = parse_lcov(format!("{first}{second}").as_bytes(), 2, 2, CoverageTool::NodeTest).unwrap();
    assert_eq!((c.covered_lines, c.statements, c.files), (3, 4, 1), "line 2 hit by the second run; tests and dependencies left out");
    assert_eq!(c.percent, 75.0);
    assert_eq!(c.tool, CoverageTool::NodeTest);
    assert_eq!(parse_lcov(b"", 1, 1, CoverageTool::NodeTest).unwrap_err(), ReportError::Missing("source file records"));
    assert_eq!(parse_lcov(b"SF:a.js\nDA:x,1\n", 1, 1, CoverageTool::NodeTest).unwrap_err(), ReportError::Missing("well-formed DA lines"));
}
