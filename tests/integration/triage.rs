//! Triage accuracy on a labelled corpus of real failure outputs (tests/data/triage: broken code
//! run in the sandbox; `generate.sh` there makes it again), and the `plancd triage` command.

use std::collections::BTreeMap;

use plancd::triage::{Diagnostics, Triage};

use crate::util::{plancd_in, project_root};

struct Case {
    name: String,
    expected: String,
    exit_code: Option<i32>,
    duration: Option<f64>,
    timeout: Option<f64>,
    rerun_passed: bool,
    /// The batch the case was added in (`seed-table`: written and labelled by the seed's table
    /// before the rules were changed to hold it); empty for the first corpus.
    batch: String,
}

/// The batch of cases written before the rules were changed to hold the seed's table.
const SEED_TABLE: &str = "seed-table";

fn corpus() -> Vec<Case> {
    let labels = std::fs::read_to_string(project_root().join("tests/data/triage/labels.tsv")).unwrap();
    labels
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.trim().parse::<f64>().ok());
            Case {
                name: f[0].to_owned(),
                expected: f[1].to_owned(),
                exit_code: f.get(2).and_then(|v| v.trim().parse().ok()),
                duration: num(3),
                timeout: num(4),
                rerun_passed: f.get(5).is_some_and(|v| v.trim() == "true"),
                batch: f.get(7).map(|v| v.trim().to_owned()).unwrap_or_default(),
            }
        })
        .collect()
}

#[test]
fn triage_is_right_on_at_least_95_percent_of_real_failures() {
    let cases = corpus();
    assert!(cases.len() >= 100, "the corpus has {} cases", cases.len());
    let triage = Triage::default();
    let mut wrong = Vec::new();
    let mut per_type: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut batch = (0, 0);
    for case in &cases {
        let log = std::fs::read(project_root().join(format!("tests/data/triage/cases/{}.log", case.name))).unwrap();
        let output = String::from_utf8_lossy(&log);
        // What the engine knows: a killed command has no exit code and hit its deadline.
        let got = triage.classify(&Diagnostics {
            output: &output,
            exit_code: case.exit_code,
            timed_out: case.exit_code.is_none() && case.timeout.is_some(),
            duration: case.duration,
            timeout: case.timeout,
            rerun_passed: case.rerun_passed,
            ..Diagnostics::default()
        });
        let entry = per_type.entry(case.expected.as_str()).or_default();
        entry.1 += 1;
        let right = got.failure_type == case.expected;
        if case.batch == SEED_TABLE {
            batch = (batch.0 + usize::from(right), batch.1 + 1);
        }
        if right {
            entry.0 += 1;
        } else {
            wrong
                .push(format!("{}: expected {}, got {} ({}; {:?})", case.name, case.expected, got.failure_type, got.summary, got.evidence));
        }
    }
    let right = cases.len() - wrong.len();
    let accuracy = right as f64 / cases.len() as f64 * 100.0;
    eprintln!("triage accuracy: {right}/{} = {accuracy:.1}%", cases.len());
    let batch_accuracy = batch.0 as f64 / batch.1.max(1) as f64 * 100.0;
    eprintln!(
        "triage accuracy on the cases added before the rules changed (batch {SEED_TABLE}): {}/{} = {batch_accuracy:.1}%",
        batch.0, batch.1
    );
    for (t, (ok, all)) in &per_type {
        eprintln!("  {t:<20} {ok}/{all}");
    }
    for w in &wrong {
        eprintln!("  wrong: {w}");
    }
    assert!(accuracy >= 95.0, "accuracy {accuracy:.1}% is below 95%:\n{}", wrong.join("\n"));
    assert!(batch.1 >= 10, "the {SEED_TABLE} batch has {} cases", batch.1);
    assert!(batch_accuracy >= 90.0, "accuracy on the {SEED_TABLE} batch {batch_accuracy:.1}% is below 90%:\n{}", wrong.join("\n"));
}

#[test]
fn the_triage_command_reads_a_log_and_says_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fail.log");
    std::fs::write(
        &log,
        "Traceback (most recent call last):\n  File \"t.py\", line 1\n    import yaml\nModuleNotFoundError: No module named 'yaml'\n",
    )
    .unwrap();
    let run = plancd_in(dir.path(), &["triage", "fail.log", "--exit-code", "1", "-o", "json"]);
    run.expect_code(0);
    let c: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (c["failure_type"].as_str(), c["target_agent"].as_str(), c["auto_fixable"].as_bool()),
        (Some("missing_dependency"), Some("coder"), Some(true))
    );
    assert_eq!(c["evidence"][0], "ModuleNotFoundError: No module named 'yaml'");
    let timed = plancd_in(dir.path(), &["triage", "fail.log", "--duration", "31", "--timeout", "30"]);
    assert!(timed.stdout.starts_with("failure_type: timeout\ntarget_agent: tester\n"), "{}", timed.stdout);
    // Patterns from the repository's plancd.yaml come first.
    std::fs::write(dir.path().join("plancd.yaml"), "failure_patterns:\n  missing_dependency: { target_agent: debugger }\n").unwrap();
    let routed = plancd_in(dir.path(), &["triage", "fail.log"]);
    assert!(routed.stdout.contains("target_agent: debugger"), "{}", routed.stdout);
}
