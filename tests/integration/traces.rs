//! Traces over OTLP/HTTP: `plancd reconcile` sends its pass, attempt and step spans to the
//! collector the standard `OTEL_*` variables name, with the configured header, and a collector
//! that refuses them, is not there or asks for what plancd does not speak never fails a command.

#[cfg(feature = "otlp")]
mod export;

use crate::util::{Repo, plancd_env};

/// What a collector's client would put in `OTEL_EXPORTER_OTLP_HEADERS`.
const TOKEN: &str = "otlp-token-4d1f9c";

/// One plan, `traced`, of one task `a` that a command agent does and a test checks.
fn repo() -> Repo {
    let repo = Repo::new();
    repo.write("plancd.yaml", "branch: main\nroles:\n  coder: { command: [\"sh\", \"agents/write.sh\"] }\n");
    repo.write("agents/write.sh", "#!/bin/sh\nset -e\nmkdir -p out\necho done > out/a.txt\n");
    repo.write(
        "plans/traced.yaml",
        "todo_list_id: traced\ntitle: Traced\ntasks:\n  - id: a\n    title: Task a\n    agent_role: coder\n    outputs: [out/a.txt]\n    acceptance_criteria:\n      tests:\n        - cmd: grep -q done out/a.txt\n          timeout_seconds: 30\n",
    );
    repo.commit("Add the plan");
    repo
}

#[test]
fn a_collector_asking_for_grpc_is_one_warning_and_the_command_goes_on() {
    let repo = repo();
    let header = format!("authorization=Bearer {TOKEN}");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_HEADERS", header.as_str()),
    ];
    let run = plancd_env(repo.path(), &["validate"], &env);
    run.expect_code(0);
    assert_eq!(run.stderr.matches("traces are not exported").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported"), "{}", run.stderr);
    assert!(!run.all().contains(TOKEN), "the header's value is in plancd's output");
}

#[cfg(not(feature = "otlp"))]
#[test]
fn a_named_collector_in_a_build_without_the_otlp_feature_is_one_warning() {
    let repo = repo();
    let run = plancd_env(repo.path(), &["validate"], &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")]);
    run.expect_code(0);
    assert_eq!(run.stderr.matches("traces are not exported").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("built without the `otlp` feature"), "{}", run.stderr);
}
