//! Test reports written inside a sandbox, read defensively: JUnit XML (pytest `--junitxml`,
//! cargo2junit, go-junit-report, jest-junit) and pytest-json-report, into one [`TestReport`].
//!
//! What runs inside can forge its report, so a report is evidence, never the verdict:
//! [`reconcile`] sets it against the exit code plancd observed and flags a report that claims
//! success against a failing exit. Parsing is bounded (input size, number of tests, text
//! lengths) and expands no entities but XML's five and character references, so a crafted
//! file cannot exhaust memory.

use quick_xml::events::{BytesStart, Event};
use serde::Serialize;
use serde_json::Value;

use crate::ExecOutcome;

/// Largest report read.
pub const MAX_REPORT_BYTES: usize = 32 << 20;
/// Most tests kept; the rest are counted only.
pub const MAX_CASES: usize = 100_000;
/// Longest message or traceback kept, in bytes.
pub const MAX_TEXT: usize = 64 << 10;

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It passed.
    Passed,
    /// An assertion failed.
    Failed,
    /// It could not run (setup, import, crash).
    Error,
    /// It was skipped (or an expected failure).
    Skipped,
}

/// One test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestCase {
    /// The test's name.
    pub name: String,
    /// Its class, module or package, when the format names one.
    pub classname: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Seconds, when reported.
    pub duration: Option<f64>,
    /// The failure's or skip's one-line message.
    pub message: Option<String>,
    /// The failure's traceback or output.
    pub traceback: Option<String>,
}

/// Which format a report was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// JUnit XML.
    Junit,
    /// pytest-json-report.
    PytestJson,
}

/// A test report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestReport {
    /// The format it came from.
    pub format: Format,
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that errored.
    pub errors: usize,
    /// Tests skipped.
    pub skipped: usize,
    /// The tests, up to [`MAX_CASES`].
    pub cases: Vec<TestCase>,
}

impl TestReport {
    fn new(format: Format) -> TestReport {
        TestReport { format, passed: 0, failed: 0, errors: 0, skipped: 0, cases: Vec::new() }
    }

    fn add(&mut self, case: TestCase) {
        match case.outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Error => self.errors += 1,
            Outcome::Skipped => self.skipped += 1,
        }
        if self.cases.len() < MAX_CASES {
            self.cases.push(case);
        }
    }

    /// Every test counted.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.errors + self.skipped
    }

    /// Whether the report itself says all went well (something ran, nothing failed).
    pub fn claims_success(&self) -> bool {
        self.failed == 0 && self.errors == 0 && self.passed > 0
    }
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Too large to read.
    #[error("test report is {0} bytes, more than the {MAX_REPORT_BYTES} read")]
    TooLarge(usize),
    /// Malformed XML.
    #[error("test report is not well-formed XML: {0}")]
    Xml(String),
    /// Malformed JSON or not pytest-json-report's shape.
    #[error("test report is not a pytest JSON report: {0}")]
    Json(String),
    /// Neither XML nor JSON.
    #[error("test report is neither JUnit XML nor pytest JSON")]
    Unknown,
}

/// Reads a report in either format, told apart by its first character.
pub fn parse(bytes: &[u8]) -> Result<TestReport, ReportError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace() && **b != 0xef && **b != 0xbb && **b != 0xbf) {
        Some(b'<') => parse_junit(bytes),
        Some(b'{') => parse_pytest_json(bytes),
        _ => Err(ReportError::Unknown),
    }
}

fn cap(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[truncated]");
    }
    text
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let a = e.attributes().flatten().find(|a| a.key.local_name().as_ref() == name)?;
    let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map(|v| v.into_owned());
    Some(cap(value.unwrap_or_else(|_| a.value.clone().into_owned())))
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

/// The test being read and the text inside its failure, error or skip element.
struct Open {
    case: TestCase,
    in_detail: bool,
    text: String,
}

/// Reads JUnit XML in the shapes pytest, cargo2junit, go-junit-report and jest-junit write.
pub fn parse_junit(bytes: &[u8]) -> Result<TestReport, ReportError> {
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge(bytes.len()));
    }
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut report = TestReport::new(Format::Junit);
    let mut open: Option<Open> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| ReportError::Xml(format!("at byte {}: {e}", reader.buffer_position())))?;
        let is_empty = matches!(event, Event::Empty(_));
        match event {
            Event::Eof => break,
            Event::Start(e) if e.local_name().as_ref() == "testcase" => {
                open = Some(Open { case: new_case(&e), in_detail: false, text: String::new() })
            }
            Event::Empty(e) if e.local_name().as_ref() == "testcase" => report.add(new_case(&e)),
            Event::Start(e) | Event::Empty(e) => {
                if let Some(o) = open.as_mut() {
                    o.in_detail = detail(&mut o.case, &e) && !is_empty;
                }
            }
            Event::Text(t) => push_text(&mut open, &t.xml10_content()),
            Event::CData(t) => push_text(&mut open, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let ch = r.resolve_char_ref().ok().flatten().or_else(|| predefined(&r));
                push_text(&mut open, &ch.map_or_else(|| format!("&{};", &*r), String::from));
            }
            Event::End(e) if e.local_name().as_ref() == "testcase" => {
                if let Some(mut o) = open.take() {
                    if !o.text.trim().is_empty() && o.case.outcome != Outcome::Passed {
                        o.case.traceback = Some(cap(o.text));
                    }
                    report.add(o.case);
                }
            }
            Event::End(_) => {
                if let Some(o) = open.as_mut() {
                    o.in_detail = false;
                }
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(report)
}

fn new_case(e: &BytesStart<'_>) -> TestCase {
    TestCase {
        name: attr(e, "name").unwrap_or_default(),
        classname: attr(e, "classname").filter(|c| !c.is_empty()),
        outcome: Outcome::Passed,
        duration: attr(e, "time").and_then(|t| t.replace(',', "").trim().parse().ok()),
        message: None,
        traceback: None,
    }
}

/// Applies a child of a testcase; returns whether its text is the failure's detail.
fn detail(case: &mut TestCase, e: &BytesStart<'_>) -> bool {
    let outcome = match e.local_name().as_ref() {
        "failure" => Outcome::Failed,
        "error" => Outcome::Error,
        "skipped" => Outcome::Skipped,
        _ => return false,
    };
    // A failure outranks a skip; an error outranks a failure.
    let rank = |o: Outcome| match o {
        Outcome::Passed => 0,
        Outcome::Skipped => 1,
        Outcome::Failed => 2,
        Outcome::Error => 3,
    };
    if rank(outcome) >= rank(case.outcome) {
        case.outcome = outcome;
        case.message = attr(e, "message").filter(|m| !m.is_empty()).or(case.message.take());
    }
    true
}

fn push_text(open: &mut Option<Open>, text: &str) {
    if let Some(o) = open.as_mut().filter(|o| o.in_detail && o.text.len() < MAX_TEXT) {
        o.text.push_str(text);
    }
}

/// Reads a pytest-json-report file (`pytest --json-report`).
pub fn parse_pytest_json(bytes: &[u8]) -> Result<TestReport, ReportError> {
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge(bytes.len()));
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| ReportError::Json(e.to_string()))?;
    let tests = doc.get("tests").and_then(Value::as_array).ok_or_else(|| ReportError::Json("no `tests` list".into()))?;
    let mut report = TestReport::new(Format::PytestJson);
    for test in tests {
        let nodeid = test.get("nodeid").and_then(Value::as_str).unwrap_or_default();
        let (classname, name) = match nodeid.rsplit_once("::") {
            Some((class, name)) => (Some(cap(class.to_owned())), cap(name.to_owned())),
            None => (None, cap(nodeid.to_owned())),
        };
        let outcome = match test.get("outcome").and_then(Value::as_str) {
            Some("passed" | "xpassed") => Outcome::Passed,
            Some("skipped" | "xfailed") => Outcome::Skipped,
            Some("failed") => Outcome::Failed,
            _ => Outcome::Error,
        };
        let stages = ["setup", "call", "teardown"].map(|s| test.get(s));
        let duration: f64 = stages.iter().flatten().filter_map(|s| s.get("duration").and_then(Value::as_f64)).sum();
        let failing = stages.iter().flatten().find(|s| s.get("outcome").and_then(Value::as_str).is_some_and(|o| o != "passed"));
        let text = |key: &str| failing.and_then(|s| s.get(key)).and_then(Value::as_str).map(|t| cap(t.to_owned()));
        let message = failing.and_then(|s| s.pointer("/crash/message")).and_then(Value::as_str).map(|t| cap(t.to_owned()));
        report.add(TestCase { name, classname, outcome, duration: Some(duration), message, traceback: text("longrepr") });
    }
    Ok(report)
}

/// How a report and the observed exit code relate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Consistency {
    /// Both say the same.
    Consistent,
    /// No report to compare.
    NoReport,
    /// The report claims success, the exit code says failure: treat the report as forged.
    Forged {
        /// Why.
        reason: String,
    },
    /// They disagree the other way, or the report is empty.
    Inconsistent {
        /// Why.
        reason: String,
    },
}

/// The verdict on a test run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the tests passed: the command succeeded and no report says otherwise.
    pub passed: bool,
    /// What the report's word is worth.
    pub consistency: Consistency,
}

/// Sets a report against what plancd observed. The exit code decides; a report can only make
/// a success a failure, never the reverse.
pub fn reconcile(report: Option<&TestReport>, outcome: &ExecOutcome) -> Verdict {
    let ran_ok = outcome.success();
    let Some(report) = report else { return Verdict { passed: ran_ok, consistency: Consistency::NoReport } };
    let consistency = match (ran_ok, report.claims_success()) {
        (true, true) | (false, false) if report.total() > 0 => Consistency::Consistent,
        (false, true) => {
            Consistency::Forged { reason: format!("the report lists {} passed and none failed, but the command {outcome}", report.passed) }
        }
        (true, false) if report.total() == 0 => {
            Consistency::Inconsistent { reason: "the command succeeded but the report lists no tests".into() }
        }
        (true, false) => Consistency::Inconsistent {
            reason: format!("the command exited 0 but the report lists {} failed and {} errors", report.failed, report.errors),
        },
        _ => Consistency::Inconsistent { reason: "the command failed and the report lists no tests".into() },
    };
    Verdict { passed: ran_ok && report.failed == 0 && report.errors == 0, consistency }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
