//! Report parsing against what each tool writes, hostile reports, and reconciliation.

use super::*;
use std::time::Duration;

const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.05" timestamp="2024-01-01T00:00:00" hostname="h"><testcase classname="test_calc" name="test_add" time="0.001" /><testcase classname="test_calc" name="test_sub" time="0.002"><failure message="assert 1 == 2">def test_sub():
&gt;       assert 1 == 2
E       assert 1 == 2

test_calc.py:5: AssertionError</failure></testcase><testcase classname="test_calc" name="test_skip" time="0.000"><skipped type="pytest.skip" message="not now">test_calc.py:7: not now</skipped></testcase><testcase classname="test_calc" name="test_err" time="0.000"><error message="failed on setup with &quot;fixture 'x' not found&quot;">file test_calc.py, line 9</error></testcase></testsuite></testsuites>"#;

const CARGO2JUNIT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite id="0" name="plancd" package="testsuite/plancd" tests="2" errors="0" failures="1" hostname="localhost" timestamp="2024-01-01T00:00:00Z" time="0"><testcase name="graph::tests::orders" classname="plancd" time="0"/><testcase name="graph::tests::cycles" classname="plancd" time="0"><failure type="cargo test" message="failed graph::tests::cycles"><![CDATA[thread 'graph::tests::cycles' panicked at src/graph.rs:10:5]]></failure></testcase></testsuite></testsuites>"#;

const GO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="1">
	<testsuite name="example.com/calc" tests="2" failures="1" errors="0" id="0" hostname="h" time="0.003" timestamp="2024-01-01T00:00:00Z">
		<properties><property name="go.version" value="go1.22"></property></properties>
		<testcase name="TestAdd" classname="example.com/calc" time="0.000"></testcase>
		<testcase name="TestSub" classname="example.com/calc" time="0.001">
			<failure message="Failed"><![CDATA[    calc_test.go:12: got 1 want 2]]></failure>
		</testcase>
		<system-out><![CDATA[FAIL]]></system-out>
	</testsuite>
</testsuites>"#;

const JEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="2" failures="1" errors="0" time="0.5">
  <testsuite name="sum" errors="0" failures="1" skipped="0" timestamp="2024-01-01T00:00:00" time="0.4" tests="2">
    <testcase classname="sum adds" name="sum adds" time="0.002">
    </testcase>
    <testcase classname="sum subtracts" name="sum subtracts" time="0.003">
      <failure>Error: expect(received).toBe(expected)
    at Object.&lt;anonymous&gt; (sum.test.js:8:20)</failure>
    </testcase>
  </testsuite>
</testsuites>"#;

const PYTEST_JSON: &str = r#"{"created": 1.0, "duration": 0.1, "exitcode": 1, "root": "/workspace",
 "summary": {"passed": 1, "failed": 1, "total": 2, "collected": 2},
 "tests": [
  {"nodeid": "test_calc.py::test_add", "outcome": "passed", "setup": {"duration": 0.001, "outcome": "passed"}, "call": {"duration": 0.002, "outcome": "passed"}, "teardown": {"duration": 0.001, "outcome": "passed"}},
  {"nodeid": "test_calc.py::TestX::test_sub", "outcome": "failed", "setup": {"duration": 0.001, "outcome": "passed"},
   "call": {"duration": 0.01, "outcome": "failed", "crash": {"path": "/workspace/test_calc.py", "lineno": 5, "message": "assert 1 == 2"}, "longrepr": "def test_sub():\n>       assert 1 == 2"},
   "teardown": {"duration": 0.0, "outcome": "passed"}}
 ]}"#;

fn case<'a>(r: &'a TestReport, name: &str) -> &'a TestCase {
    r.cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no test {name}"))
}

#[test]
fn pytest_junit_reports_are_read() {
    let r = parse(PYTEST.as_bytes()).unwrap();
    assert_eq!((r.passed, r.failed, r.errors, r.skipped), (1, 1, 1, 1));
    let sub = case(&r, "test_sub");
    assert_eq!(sub.classname.as_deref(), Some("test_calc"));
    assert_eq!(sub.message.as_deref(), Some("assert 1 == 2"));
    assert!(sub.traceback.as_deref().unwrap().contains(">       assert 1 == 2"));
    assert_eq!(sub.duration, Some(0.002));
    assert_eq!(case(&r, "test_err").message.as_deref(), Some("failed on setup with \"fixture 'x' not found\""));
    assert_eq!(case(&r, "test_skip").outcome, Outcome::Skipped);
}

#[test]
fn cargo_go_and_jest_reports_are_read() {
    for (xml, failing, detail) in [
        (CARGO2JUNIT, "graph::tests::cycles", "panicked at src/graph.rs:10:5"),
        (GO, "TestSub", "got 1 want 2"),
        (JEST, "sum subtracts", "at Object.<anonymous> (sum.test.js:8:20)"),
    ] {
        let r = parse_junit(xml.as_bytes()).unwrap();
        assert_eq!((r.passed, r.failed, r.errors), (1, 1, 0), "{xml}");
        let failed = case(&r, failing);
        assert_eq!(failed.outcome, Outcome::Failed);
        assert!(failed.traceback.as_deref().unwrap_or_default().contains(detail), "{failed:?}");
    }
}

#[test]
fn pytest_json_reports_are_read() {
    let r = parse(PYTEST_JSON.as_bytes()).unwrap();
    assert_eq!(r.format, Format::PytestJson);
    assert_eq!((r.passed, r.failed), (1, 1));
    let sub = case(&r, "test_sub");
    assert_eq!(sub.classname.as_deref(), Some("test_calc.py::TestX"));
    assert_eq!(sub.message.as_deref(), Some("assert 1 == 2"));
    assert!(sub.traceback.as_deref().unwrap().contains("assert 1 == 2"));
    assert!((sub.duration.unwrap() - 0.011).abs() < 1e-9);
}

#[test]
fn hostile_reports_stay_small_and_expand_nothing() {
    let mut bomb = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
        bomb.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&{prev};").repeat(10)));
    }
    bomb.push_str("]><testsuite><testcase name=\"a\"><failure message=\"x\">&lol9;</failure></testcase></testsuite>");
    let r = parse(bomb.as_bytes()).unwrap();
    assert_eq!(r.failed, 1);
    assert_eq!(r.cases[0].traceback.as_deref(), Some("&lol9;"));

    let long = format!("<testsuite><testcase name=\"a\"><failure>{}</failure></testcase></testsuite>", "x".repeat(MAX_TEXT * 3));
    let r = parse(long.as_bytes()).unwrap();
    assert!(r.cases[0].traceback.as_ref().unwrap().len() <= MAX_TEXT + 16);

    assert!(matches!(parse(&vec![b'<'; MAX_REPORT_BYTES + 1]), Err(ReportError::TooLarge(_))));
    assert!(matches!(parse(b"<testsuite><testcase name=\"a\"></testsuite>"), Err(ReportError::Xml(_))));
    assert!(matches!(parse(b"{\"tests\": 3}"), Err(ReportError::Json(_))));
    assert!(matches!(parse(b"plain text"), Err(ReportError::Unknown)));
}

fn exited(code: i32) -> ExecOutcome {
    ExecOutcome { exit_code: Some(code), duration: Duration::from_millis(10), ..Default::default() }
}

#[test]
fn the_exit_code_decides_and_forged_reports_are_flagged() {
    let all_pass = parse_junit(b"<testsuite><testcase name=\"a\"/><testcase name=\"b\"/></testsuite>").unwrap();
    let some_fail = parse_junit(CARGO2JUNIT.as_bytes()).unwrap();

    let forged = reconcile(Some(&all_pass), &exited(1));
    assert!(!forged.passed);
    assert!(matches!(forged.consistency, Consistency::Forged { .. }));

    let honest = reconcile(Some(&all_pass), &exited(0));
    assert!(honest.passed);
    assert_eq!(honest.consistency, Consistency::Consistent);

    let odd = reconcile(Some(&some_fail), &exited(0));
    assert!(!odd.passed);
    assert!(matches!(odd.consistency, Consistency::Inconsistent { .. }));

    assert_eq!(reconcile(Some(&some_fail), &exited(1)), Verdict { passed: false, consistency: Consistency::Consistent });
    assert_eq!(reconcile(None, &exited(0)), Verdict { passed: true, consistency: Consistency::NoReport });
    let timed_out = ExecOutcome { timed_out: true, ..exited(0) };
    assert!(matches!(reconcile(Some(&all_pass), &timed_out).consistency, Consistency::Forged { .. }));
}
