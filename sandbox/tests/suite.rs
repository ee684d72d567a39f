//! The adversarial suite on every backend: every attack must be contained.

use std::time::Duration;

use plancd_sandbox::attacks::{SuiteOptions, SuiteReport, run_suite};

use crate::util::{docker, process, run};

fn print(report: &SuiteReport) {
    for case in &report.cases {
        eprintln!("{} {:<24} {:>6.2}s  {}", if case.contained { "ok  " } else { "FAIL" }, case.name, case.seconds, case.detail);
    }
    eprintln!("{}: {}/{} attacks contained (suite {})", report.backend, report.contained(), report.total(), report.version);
}

fn only() -> Vec<String> {
    std::env::var("PLANCD_SUITE_ONLY").map(|s| s.split(',').map(str::to_owned).collect()).unwrap_or_default()
}

#[test]
fn every_attack_is_contained_by_the_process_backend() {
    run(Duration::from_secs(900), async {
        let sandbox = process();
        let options = SuiteOptions { owner: "suite-tests".into(), only: only(), ..SuiteOptions::default() };
        let report = run_suite(&sandbox, &options).await;
        print(&report);
        assert!(report.total() >= 30 || !options.only.is_empty());
        assert!(report.all_contained(), "{}/{} contained", report.contained(), report.total());
    });
}

#[test]
fn every_attack_is_contained_by_the_docker_backend() {
    run(Duration::from_secs(1500), async {
        let Some(sandbox) = docker().await else { return };
        let options = SuiteOptions {
            owner: format!("suite-tests-{}", std::process::id()),
            image: Some(plancd_sandbox::docker::DEFAULT_IMAGE.into()),
            only: only(),
            ..SuiteOptions::default()
        };
        let report = run_suite(&sandbox, &options).await;
        print(&report);
        assert!(report.total() >= 30 || !options.only.is_empty());
        assert!(report.all_contained(), "{}/{} contained", report.contained(), report.total());
    });
}
