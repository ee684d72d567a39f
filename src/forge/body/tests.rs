//! Golden tests of the pull request body.

use super::*;

fn facts() -> PrFacts {
    PrFacts {
        workflow: "sma-crossover".into(),
        task: "t2_indicators".into(),
        title: "Implement the SMA indicator".into(),
        description: "Write `indicators.py` with `sma(prices, window)`.\n\nIt returns a list | of floats.".into(),
        branch: "ai/generated/sma-crossover/t2_indicators".into(),
        tag: "ai/sma-crossover/t2_indicators/1".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        attempt: 1,
        tests: vec![
            TestLine {
                name: "test 1".into(),
                cmd: "python3 -m unittest -v tests/test_sma.py".into(),
                passed: true,
                outcome: "exit 0".into(),
                seconds: 0.42,
            },
            TestLine {
                name: "test 2".into(),
                cmd: "grep -q '`sma`' indicators.py".into(),
                passed: true,
                outcome: "exit 0".into(),
                seconds: 0.01,
            },
        ],
        pinned_files_changed: vec!["tests/test_sma.py".into()],
        files: vec!["indicators.py".into(), "requirements.txt".into()],
        attempts: vec![
            AttemptLine {
                n: 1,
                outcome: "Debugging (BranchTodoOpened)".into(),
                message: "1 of 1 acceptance test(s) failed; t2_indicators_branch_01 (implementation_bug) opened for the coder".into(),
            },
            AttemptLine { n: 1, outcome: "Succeeded".into(), message: "1 acceptance test(s) passed after t2_indicators_branch_01".into() },
        ],
        branch_todos: vec![BranchLine {
            id: "t2_indicators_branch_01".into(),
            role: "coder".into(),
            failure_type: "implementation_bug".into(),
            phase: "Succeeded".into(),
            attempts: 1,
        }],
        provenance: vec![
            ("agent".into(), "coder (fixed by t2_indicators_branch_01: coder: command python3 agents/coder.py)".into()),
            ("model".into(), "scripted".into()),
            ("prompt hash".into(), "none".into()),
            ("spec hash".into(), "a".repeat(64)),
            ("cost".into(), "$0.0042 (1,500 tokens)".into()),
        ],
        diagram: "flowchart TD\n  a --> b\n  class b current\n".into(),
        network: None,
        quality: None,
    }
}

#[test]
fn blocked_network_requests_are_a_warning_naming_each_host() {
    use crate::state::{Egress, NetworkUse};
    let mut f = facts();
    let requests = [(Egress::Used, "pypi.org", 443), (Egress::Blocked, "evil.example", 443), (Egress::Blocked, "evil.example", 443)];
    f.network = Some(NetworkUse::tally(2, &["pypi.org".to_owned()], requests));
    let body = render(&f);
    let section = "### Blocked network requests\n\n> [!WARNING]\n> The agent's sandbox made 2 request(s) outside its role's `network.allow` in plancd.yaml; plancd's egress proxy refused them. If the work needs one of these hosts, add it to the allowlist.\n\n| host | port | requests |\n|---|---|---|\n| `evil.example` | 443 | 2 |\n\nNetwork of attempt 2: allowed `pypi.org`; used: pypi.org:443 ×1.\n";
    assert!(body.contains(section), "{body}");
    // Nothing refused: no warning, the network still said.
    f.network = Some(NetworkUse::tally(2, &["pypi.org".to_owned()], [(Egress::Used, "pypi.org", 443)]));
    let body = render(&f);
    assert!(
        !body.contains("Blocked network requests") && body.contains("Network of attempt 2: allowed `pypi.org`; used: pypi.org:443 ×1."),
        "{body}"
    );
    // No network: nothing said.
    assert!(!render(&facts()).contains("Network of attempt"));
}

#[test]
fn the_body_shows_the_task_its_tests_attempts_provenance_and_diagram() {
    let f = facts();
    insta::assert_snapshot!(title(&f), @"plancd: Implement the SMA indicator (sma-crossover/t2_indicators)");
    insta::assert_snapshot!(render(&f));
}

#[test]
fn long_parts_are_cut_and_the_body_says_so() {
    let mut f = facts();
    f.description = "word ".repeat(30_000);
    f.tests = (0..500)
        .map(|i| TestLine { name: format!("test {i}"), cmd: "x".repeat(400), passed: i % 2 == 0, outcome: "exit 1".into(), seconds: 1.0 })
        .collect();
    f.attempts = (0..300).map(|n| AttemptLine { n, outcome: "Failed".into(), message: "y".repeat(1000) }).collect();
    f.files = (0..5000).map(|i| format!("src/file_{i}.py")).collect();
    f.diagram = "flowchart TD\n".to_owned() + &"  n_a --> n_b\n".repeat(5000);
    let body = render(&f);
    assert!(body.chars().count() <= LIMIT, "{} characters", body.chars().count());
    let notes: Vec<&str> = body.lines().filter(|l| l.starts_with("_Shortened") || l.starts_with("…and")).collect();
    insta::assert_snapshot!(notes.join("\n"));
}

#[test]
fn even_a_body_of_only_huge_cells_stays_under_the_limit() {
    let mut f = facts();
    f.provenance = (0..40).map(|i| (format!("k{i}"), "z".repeat(100_000))).collect();
    f.branch_todos = (0..500)
        .map(|i| BranchLine {
            id: format!("b{i}{}", "q".repeat(5000)),
            role: "r".repeat(5000),
            failure_type: "f".into(),
            phase: "p".into(),
            attempts: 1,
        })
        .collect();
    f.pinned_files_changed = (0..1000).map(|i| format!("{i}{}", "p".repeat(3000))).collect();
    f.description = "d".repeat(200_000);
    let body = render(&f);
    assert!(body.chars().count() <= LIMIT, "{} characters", body.chars().count());
}

#[test]
fn numbers_are_grouped_and_cells_escaped() {
    assert_eq!(group(65536), "65,536");
    assert_eq!(group(999), "999");
    assert_eq!(cell("a | b\nc <d>", 100), "a \\| b c &lt;d&gt;");
    assert_eq!(code("echo `x`"), "`` echo `x` ``");
}

/// A result's measured figures: coverage, security findings with the most severe listed.
fn measured() -> crate::state::Quality {
    use crate::state::quality::*;
    Quality {
        coverage: Some(Coverage {
            tool: CoverageTool::CoveragePy,
            percent: 87.5,
            covered_lines: 7,
            statements: 8,
            files: 1,
            commands_measured: 1,
            commands: 2,
        }),
        security: Some(SecurityScan {
            tool: SecurityTool::Bandit,
            counts: SeverityCounts { high: 1, medium: 0, low: 0 },
            lines_scanned: 12,
            findings: vec![Finding {
                rule: "B602".into(),
                rule_name: "subprocess_popen_with_shell_equals_true".into(),
                severity: Severity::High,
                confidence: Severity::High,
                path: "indicators.py".into(),
                line: 9,
                text: "subprocess call with shell=True | identified".into(),
            }],
        }),
        unmeasured: Vec::new(),
    }
}

#[test]
fn the_quality_section_shows_coverage_and_each_security_finding() {
    let mut f = facts();
    f.quality = Some(measured());
    let body = render(&f);
    let section = "### Quality\n\nMeasured by plancd in the session that verified this result, under its own settings.\n\n| | |\n|---|---|\n| coverage | 87.5% (7 of 8 statements, 1 file(s); 1 of 2 test command(s) measured) |\n| security | 1 security finding (1 high) (bandit, 12 line(s)) |\n\n| severity | rule | where | finding |\n|---|---|---|---|\n| high | `B602` | `indicators.py:9` | subprocess call with shell=True \\| identified |\n";
    assert!(body.contains(section), "{body}");
    assert!(body.find("### Quality").unwrap() > body.find("### Acceptance tests").unwrap(), "after the tests that were measured");
    // Not measured: said, with why.
    let mut q = crate::state::Quality::default();
    q.unmeasured.push(crate::state::quality::Unmeasured {
        figure: crate::state::quality::Figure::Coverage,
        reason: crate::state::quality::UnmeasuredReason::ToolMissing,
        detail: "No module named coverage".into(),
    });
    f.quality = Some(q);
    let body = render(&f);
    assert!(body.contains("| coverage | not measured |"), "{body}");
    assert!(
        body.contains(
            "_coverage not measured: the sandbox lacks the tool (add it to environment.setup in plancd.yaml): No module named coverage_"
        ),
        "{body}"
    );
    // None recorded: no section.
    assert!(!render(&facts()).contains("### Quality"));
}
