//! The quality figures of the work, measured in the verifying session (see [`crate::quality`]
//! for why they can be trusted): before the acceptance tests, plancd's configuration in a fresh
//! folder and the Python test commands put under coverage.py; after the verdict passed, the
//! coverage report and a bandit scan, read into the result's [`Quality`].

use std::time::Duration;

use plancd_sandbox::{ExecOutcome, ExecRequest, Session};

use super::PassContext;
use super::steps::{Logs, Stop, output_of};
use crate::quality::{self, Measurement};
use crate::spec::AcceptanceTest;
use crate::state::quality::{Coverage, CoverageTool, Figure, Quality, SecurityScan, Unmeasured, UnmeasuredReason};

/// How long a report (coverage's JSON, the bandit scan) may take.
const REPORT_SECONDS: u64 = 300;

/// The measurement an attempt's verifying session makes.
pub(super) struct Plan {
    measurement: Measurement,
    /// Per acceptance command: what runs instead (under coverage), or `None` (as written).
    pub run_as: Vec<Option<String>>,
    /// The tool measuring coverage and its program (the first measured command's): the report's.
    coverage: Option<(CoverageTool, String)>,
    security: bool,
    /// The figures not measured already known, with why.
    unmeasured: Vec<Unmeasured>,
    log: Vec<u8>,
}

fn unmeasured(figure: Figure, reason: UnmeasuredReason, detail: impl Into<String>) -> Unmeasured {
    Unmeasured { figure, reason, detail: detail.into() }
}

/// Decides what is measured and prepares it in `session` (the configuration written, the tool
/// checked): no coverage where no command is a test run plancd can measure or the sandbox lacks
/// the tool. Only the commands of the first measured command's tool are measured.
pub(super) async fn prepare(cx: &PassContext, session: &dyn Session, tests: &[AcceptanceTest]) -> Result<Plan, Stop> {
    let config = cx.snapshot.config.quality;
    let measurement = Measurement::new(plancd_sandbox::WORKSPACE, &format!("{:016x}", fastrand::u64(..)));
    let mut plan = Plan {
        run_as: vec![None; tests.len()],
        coverage: None,
        security: config.security,
        unmeasured: Vec::new(),
        log: Vec::new(),
        measurement,
    };
    if !config.security {
        plan.unmeasured.push(unmeasured(Figure::Security, UnmeasuredReason::Disabled, ""));
    }
    if !config.coverage {
        plan.unmeasured.push(unmeasured(Figure::Coverage, UnmeasuredReason::Disabled, ""));
        return Ok(plan);
    }
    let wrapped: Vec<Option<quality::Wrapped>> = tests.iter().enumerate().map(|(i, t)| plan.measurement.wrap(&t.cmd, i)).collect();
    let Some((tool, program)) = wrapped.iter().flatten().next().map(|w| (w.tool, w.program.clone())) else {
        plan.unmeasured.push(unmeasured(Figure::Coverage, UnmeasuredReason::NoMeasurableCommand, ""));
        return Ok(plan);
    };
    let (script, label) = match tool {
        CoverageTool::CoveragePy => (
            plan.measurement.setup_script(plancd_sandbox::WORKSPACE, &program),
            format!("{program} -I -c 'import coverage'  # plancd's coverage configuration written"),
        ),
        CoverageTool::NodeTest => (plan.measurement.node_setup_script(), "mkdir  # plancd's coverage folder".to_owned()),
    };
    let o = session.exec(&ExecRequest::shell(&script, Duration::from_secs(60))).await?;
    cx.emit(crate::reconcile::Event::Exec { kind: "measure", duration: o.duration });
    Logs::command(&mut plan.log, &label, &o);
    if !o.success() {
        let output = String::from_utf8_lossy(&output_of(&o)).into_owned();
        let reason = if quality::tool_missing(&output) { UnmeasuredReason::ToolMissing } else { UnmeasuredReason::ReportUnreadable };
        plan.unmeasured.push(unmeasured(Figure::Coverage, reason, last_line(&output)));
        return Ok(plan);
    }
    plan.run_as = wrapped.into_iter().map(|w| w.filter(|w| w.tool == tool).map(|w| w.cmd)).collect();
    plan.coverage = Some((tool, program));
    Ok(plan)
}

/// After the verdict passed: the coverage report and the security scan, read into the figures.
/// A tool that fails is noted as such; it never fails the attempt.
pub(super) async fn finish(
    cx: &PassContext,
    mut plan: Plan,
    session: &dyn Session,
    has_python: bool,
    logs: &mut Logs,
) -> Result<Quality, Stop> {
    let mut q = Quality { unmeasured: std::mem::take(&mut plan.unmeasured), ..Quality::default() };
    if let Some((tool, program)) = plan.coverage.clone() {
        match coverage_of(cx, &mut plan, session, tool, &program).await? {
            Ok(c) => q.coverage = Some(c),
            Err(u) => q.unmeasured.push(u),
        }
    }
    if plan.security && !has_python {
        q.unmeasured.push(unmeasured(Figure::Security, UnmeasuredReason::NothingToScan, "no Python file in the work"));
    } else if plan.security {
        match security_of(cx, &mut plan, session).await? {
            Ok(s) => q.security = Some(s),
            Err(u) => q.unmeasured.push(u),
        }
    }
    if !plan.log.is_empty() {
        logs.add("quality.log", plan.log);
    }
    Ok(q)
}

/// The measured commands' coverage, from `tool`'s report.
async fn coverage_of(
    cx: &PassContext,
    plan: &mut Plan,
    session: &dyn Session,
    tool: CoverageTool,
    program: &str,
) -> Result<Result<Coverage, Unmeasured>, Stop> {
    let commands = plan.run_as.len() as u32;
    let measured = plan.run_as.iter().flatten().count() as u32;
    let script = match tool {
        CoverageTool::CoveragePy => plan.measurement.coverage_report_script(program),
        CoverageTool::NodeTest => plan.measurement.node_report_script(),
    };
    let o = report(cx, session, &script, &mut plan.log).await?;
    let parsed = match tool {
        CoverageTool::CoveragePy => quality::parse_coverage(&o.stdout, measured, commands),
        CoverageTool::NodeTest => quality::parse_lcov(&o.stdout, measured, commands, tool),
    };
    Ok(match parsed {
        Ok(c) if o.success() => Ok(c),
        Ok(_) => Err(unmeasured(Figure::Coverage, UnmeasuredReason::ReportUnreadable, o.to_string())),
        Err(e) => Err(unmeasured(Figure::Coverage, UnmeasuredReason::ReportUnreadable, failure(&o, &e))),
    })
}

/// Bandit's scan of the work, with the measured Python (or `python3`).
async fn security_of(cx: &PassContext, plan: &mut Plan, session: &dyn Session) -> Result<Result<SecurityScan, Unmeasured>, Stop> {
    let python = match &plan.coverage {
        Some((CoverageTool::CoveragePy, program)) => program.clone(),
        _ => "python3".to_owned(),
    };
    let o = report(cx, session, &plan.measurement.bandit_script(&python), &mut plan.log).await?;
    // Bandit exits 1 when it found something: the report decides, not the exit code.
    Ok(match quality::parse_bandit(&o.stdout) {
        Ok(s) if !o.timed_out => Ok(s),
        Ok(_) => Err(unmeasured(Figure::Security, UnmeasuredReason::ReportUnreadable, o.to_string())),
        Err(e) => {
            let output = String::from_utf8_lossy(&output_of(&o)).into_owned();
            let reason = if quality::tool_missing(&output) { UnmeasuredReason::ToolMissing } else { UnmeasuredReason::ReportUnreadable };
            Err(unmeasured(Figure::Security, reason, failure(&o, &e)))
        }
    })
}

/// Runs a report command; its log keeps the outcome and what it printed on stderr (the report
/// itself, on stdout, is read into the record).
async fn report(cx: &PassContext, session: &dyn Session, script: &str, log: &mut Vec<u8>) -> Result<ExecOutcome, Stop> {
    let request = ExecRequest { output_limit: quality::REPORT_LIMIT, ..ExecRequest::shell(script, Duration::from_secs(REPORT_SECONDS)) };
    let o = session.exec(&request).await?;
    cx.emit(crate::reconcile::Event::Exec { kind: "measure", duration: o.duration });
    log.extend_from_slice(format!("$ {script}\n").as_bytes());
    log.extend_from_slice(plancd_sandbox::escape::output(&o.stderr).as_bytes());
    log.extend_from_slice(format!("-> {o} ({} bytes of report)\n\n", o.stdout.len()).as_bytes());
    Ok(o)
}

fn failure(o: &ExecOutcome, e: &quality::ReportError) -> String {
    let output = String::from_utf8_lossy(&output_of(o)).into_owned();
    let line = last_line(&output);
    if line.is_empty() { format!("{o}: {e}") } else { format!("{o}: {line}") }
}

/// The last non-empty line (where a Python traceback names its error), at most 200 characters.
fn last_line(text: &str) -> String {
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default().chars().take(200).collect()
}
