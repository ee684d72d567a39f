//! Real pytest runs in both backends, their reports read back and set against the exit code.

use std::time::Duration;

use plancd_sandbox::report::{Consistency, parse, reconcile};
use plancd_sandbox::{CopyOutLimits, ExecRequest, FileEntry, Sandbox, Session};

use crate::util::{docker, process, run, small_spec};

const TESTS: &str = "import pytest\n\ndef test_ok():\n    assert 1 + 1 == 2\n\ndef test_bad():\n    assert 1 + 1 == 3\n\n@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n";

/// Runs pytest with both report formats, then forges a passing report and runs `false`.
async fn pytest_round(session: &dyn Session) {
    session.put_files(&[FileEntry::new("test_calc.py", TESTS)]).await.expect("the sandbox works");
    let cmd = [
        "python3",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--junitxml=junit.xml",
        "--json-report",
        "--json-report-file=report.json",
    ];
    let out = session.exec(&ExecRequest::new(cmd, Duration::from_secs(120))).await.expect("the sandbox works");
    assert_eq!(out.exit_code, Some(1), "{out:?}");
    let files = session.get_files(&CopyOutLimits::default()).await.expect("the sandbox works");
    for name in ["junit.xml", "report.json"] {
        let file = files.files.iter().find(|f| f.path == name).unwrap_or_else(|| panic!("{name} copied out"));
        let report = parse(&file.data).expect("a readable report");
        assert_eq!((report.passed, report.failed, report.skipped), (1, 1, 1), "{name}");
        let bad = report.cases.iter().find(|c| c.name == "test_bad").expect("test_bad is reported");
        assert!(bad.traceback.as_deref().unwrap_or_default().contains("assert 1 + 1 == 3") || bad.message.is_some(), "{bad:?}");
        let verdict = reconcile(Some(&report), &out);
        assert!(!verdict.passed);
        assert_eq!(verdict.consistency, Consistency::Consistent);
    }
    let forged = "<testsuite><testcase name=\"test_ok\"/><testcase name=\"test_bad\"/></testsuite>";
    session.put_files(&[FileEntry::new("junit.xml", forged)]).await.expect("the sandbox works");
    let lied = session.exec(&ExecRequest::new(["false"], Duration::from_secs(10))).await.expect("the sandbox works");
    let copied = session.get_files(&CopyOutLimits::default()).await.expect("the sandbox works");
    let report =
        parse(&copied.files.iter().find(|f| f.path == "junit.xml").expect("junit.xml copied out").data).expect("a readable report");
    let verdict = reconcile(Some(&report), &lied);
    assert!(!verdict.passed);
    assert!(matches!(verdict.consistency, Consistency::Forged { .. }), "{verdict:?}");
}

#[test]
fn pytest_reports_from_docker_are_read_and_reconciled() {
    run(Duration::from_secs(300), async {
        let Some(sandbox) = docker().await else { return };
        let session = sandbox.create(&small_spec()).await.unwrap();
        pytest_round(&*session).await;
        session.destroy().await.unwrap();
    });
}

#[test]
fn pytest_reports_from_the_process_backend_on_the_image_root_are_read() {
    let root = std::path::PathBuf::from(std::env::var("PLANCD_SANDBOX_ROOT").unwrap_or_else(|_| "/var/cache/plancd/sandbox-root".into()));
    if !root.join("usr/bin/python3").exists() {
        if std::env::var("PLANCD_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("PLANCD_REQUIRE_DOCKER=1 but {} was not built (sandbox/images/build.sh)", root.display());
        }
        eprintln!("skipping: no sandbox root at {} (sandbox/images/build.sh builds it)", root.display());
        return;
    }
    run(Duration::from_secs(300), async {
        let sandbox = process();
        let session = sandbox.create(&plancd_sandbox::SessionSpec { root: Some(root), ..small_spec() }).await.unwrap();
        pytest_round(&*session).await;
        session.destroy().await.unwrap();
    });
}
