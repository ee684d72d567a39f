//! The quality figures of a result, measured by plancd in the verifying session: a small Python
//! plan on the process backend (the sandbox root has coverage.py and bandit) whose agent tries
//! every opt-out the work could carry (`# pragma: no cover`, `# nosec`, its own `.coveragerc`
//! and `.bandit`); the published result's coverage and findings count them anyway and show in
//! `plancd status -o json`, `plancd describe`, the pull request (the fake GitHub), `/metrics`
//! and the dashboard's task page. A second task asks for more coverage than its tests reach and
//! fails as `coverage_below_minimum`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::action::TOKEN;
use crate::fake_github::FakeGitHub;
use crate::serve::{http, sample, scrape, start, wait_for};
use crate::util::{Repo, bare, plancd_async, within};

/// The sandbox root with coverage.py and bandit, or `None` (and a visible skip) when it lacks
/// them; with `PLANCD_REQUIRE_CLIENTS=1`, missing tools fail the test instead.
fn root_with_tools() -> Option<PathBuf> {
    let root = PathBuf::from(std::env::var("PLANCD_SANDBOX_ROOT").unwrap_or_else(|_| "/var/cache/plancd/sandbox-root".into()));
    let libs: Vec<PathBuf> = ["usr/local/lib", "usr/lib"]
        .iter()
        .flat_map(|l| std::fs::read_dir(root.join(l)).into_iter().flatten().flatten())
        .flat_map(|e| ["dist-packages", "site-packages"].map(|d| e.path().join(d)))
        .collect();
    let missing: Vec<&str> =
        ["coverage", "bandit"].into_iter().filter(|m| !libs.iter().any(|l| l.join(m).join("__init__.py").exists())).collect();
    if missing.is_empty() {
        return Some(root);
    }
    let why = format!("the sandbox root {} lacks {missing:?} (sandbox/images/build.sh adds them)", root.display());
    if std::env::var("PLANCD_REQUIRE_CLIENTS").as_deref() == Ok("1") {
        panic!("PLANCD_REQUIRE_CLIENTS=1 but {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// The coder: one module with a tested function, an untested one marked `# pragma: no cover`,
/// and a shell call marked `# nosec`; plus configuration that would hide both, were it read.
const AGENT: &str = r#"import json, os, pathlib

task = json.load(open(os.environ["PLANCD_TASK"]))
name = {"calc": "mathx", "strict": "strictx"}[task["task_id"]]
pathlib.Path(name + ".py").write_text(
    "import subprocess\n"
    "\n"
    "\n"
    "def add(a, b):\n"
    "    return a + b\n"
    "\n"
    "\n"
    "def unused(x):  # pragma: no cover\n"
    "    if x:\n"
    "        return 1\n"
    "    return 2\n"
    "\n"
    "\n"
    "def shell(cmd):\n"
    "    return subprocess.call(cmd, shell=True)  # nosec\n"
)
pathlib.Path(".coveragerc").write_text("[run]\nomit = *\n")
pathlib.Path(".bandit").write_text("[bandit]\nskips = B404,B602\n")
"#;

fn test_file(module: &str) -> String {
    format!("from {module} import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
}

fn project(fake: &FakeGitHub, root: &std::path::Path, origin: &std::path::Path) -> Repo {
    let repo = Repo::new();
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\nmax_branch_depth: 0\nsandbox:\n  root: {}\nroles:\n  coder:\n    command: [\"python3\", \"agents/coder.py\"]\nforge:\n  github: {{ repo: acme/widgets, token_env: GITHUB_TOKEN, api_url: \"{}\" }}\n",
            root.display(),
            fake.api_url()
        ),
    );
    repo.write("agents/coder.py", AGENT);
    repo.write("tests/test_mathx.py", &test_file("mathx"));
    repo.write("tests/test_strictx.py", &test_file("strictx"));
    let task = |id: &str, module: &str, extra: &str| {
        format!(
            "  - id: {id}\n    title: Write {module}\n    agent_role: coder\n    max_attempts: 1\n    outputs: [{module}.py]\n    acceptance_criteria:\n      tests:\n        - cmd: python3 -m pytest -q -p no:cacheprovider tests/test_{module}.py\n          timeout_seconds: 120\n      files: [tests/test_{module}.py]\n{extra}"
        )
    };
    repo.write(
        "plans/q.yaml",
        &format!(
            "todo_list_id: q\ntitle: Quality\ntasks:\n{}{}",
            task("calc", "mathx", ""),
            task("strict", "strictx", "      coverage_min: 90\n")
        ),
    );
    repo.commit("A Python plan");
    repo.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_results_coverage_and_bandit_findings_are_measured_by_plancd_and_shown_everywhere() {
    let Some(root) = root_with_tools() else { return };
    within(600, async {
        let fake = FakeGitHub::start("", TOKEN).await;
        let origin = bare();
        let repo = project(&fake, &root, origin.path());
        let env = [("GITHUB_TOKEN", TOKEN)];
        let run = plancd_async(repo.path(), &["reconcile"], &env).await;
        assert_eq!(run.code, Some(1), "the strict task fails: {}", run.all());

        // The record: typed figures, the work's opt-outs ignored.
        let status: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/q/calc:status.json"])).unwrap();
        assert_eq!(status["phase"], "Succeeded", "{status}");
        let quality = &status["tests"]["quality"];
        let coverage = &quality["coverage"];
        assert_eq!(coverage["tool"], "coverage_py", "{quality}");
        // 9 statements, 5 run: `# pragma: no cover` and the work's `.coveragerc` count for nothing.
        assert_eq!((coverage["covered_lines"].as_u64(), coverage["statements"].as_u64()), (Some(5), Some(9)), "{quality}");
        let percent = coverage["percent"].as_f64().unwrap();
        assert!((percent - 55.56).abs() < 0.01, "{quality}");
        assert_eq!((coverage["commands_measured"].as_u64(), coverage["commands"].as_u64()), (Some(1), Some(1)), "{quality}");
        let security = &quality["security"];
        assert_eq!(security["tool"], "bandit", "{quality}");
        // `# nosec` and the work's `.bandit` are ignored too; the tests are not scanned.
        assert_eq!(security["counts"], serde_json::json!({"high": 1, "medium": 0, "low": 1}), "{quality}");
        assert_eq!(security["findings"][0]["rule"], "B602", "{quality}");
        assert_eq!(security["findings"][0]["path"], "mathx.py", "{quality}");
        assert_eq!(security["findings"][0]["severity"], "high", "{quality}");
        let log = repo.git(&["show", "refs/ai/tasks/q/calc:attempts/1/tests.log"]);
        assert!(log.contains("# under plancd's coverage measurement"), "{log}");

        // A minimum the tests do not reach fails the work, typed.
        let strict: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/q/strict:status.json"])).unwrap();
        assert_eq!(strict["failure_type"], "coverage_below_minimum", "{strict}");
        assert!(strict["message"].as_str().unwrap().contains("below the task's minimum of 90%"), "{strict}");
        assert!(strict["tests"]["quality"]["coverage"]["percent"].as_f64().unwrap() < 90.0, "{strict}");
        assert!(repo.git(&["branch", "--list", "ai/generated/q/strict"]).trim().is_empty(), "nothing published");

        // status -o json and the table.
        let shown = plancd_async(repo.path(), &["status", "-o", "json"], &[]).await;
        let report: Value = serde_json::from_str(&shown.stdout).unwrap_or_else(|e| panic!("{e}: {}", shown.all()));
        let row = report["tasks"].as_array().unwrap().iter().find(|r| r["task"] == "calc").unwrap().clone();
        assert_eq!(row["quality"], *quality, "{row}");
        let table = plancd_async(repo.path(), &["status"], &[]).await;
        assert!(table.stdout.contains("q/calc: coverage 55.6%, 2 security findings (1 high, 1 low)"), "{}", table.all());

        // describe.
        let described = plancd_async(repo.path(), &["describe", "q/calc"], &[]).await;
        let text = &described.stdout;
        assert!(
            text.contains("Quality:\n  Coverage:     55.6% (5 of 9 statements in 1 file(s); 1 of 1 test command(s) measured)"),
            "{text}"
        );
        assert!(text.contains("  Security:     2 security findings (1 high, 1 low)"), "{text}");
        assert!(text.contains("high   B602  mathx.py:15"), "{text}");

        // The pull request.
        let body = fake.with(|s| s.pulls.iter().map(|p| p["body"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>().join("\n"));
        assert!(body.contains("### Quality"), "{body}");
        assert!(body.contains("| coverage | 55.6% (5 of 9 statements, 1 file(s); 1 of 1 test command(s) measured) |"), "{body}");
        assert!(body.contains("| security | 2 security findings (1 high, 1 low) (bandit,"), "{body}");
        assert!(body.contains("| high | `B602` | `mathx.py:15` |"), "{body}");

        // /metrics and the dashboard, from a controller over the same refs.
        let dir = repo;
        tokio::task::spawn_blocking(move || {
            let c = start(&dir, &[("GITHUB_TOKEN", TOKEN)]);
            let wf = [("workflow", "q")];
            let coverage = || sample(&scrape(&c), "plancd_workflow_test_coverage_percent", &wf).unwrap_or(0.0);
            wait_for(Duration::from_secs(120), || coverage() > 0.0);
            let m = scrape(&c);
            assert!((sample(&m, "plancd_workflow_test_coverage_percent", &wf).unwrap() - 55.56).abs() < 0.01, "{m}");
            assert_eq!(sample(&m, "plancd_workflow_coverage_measured_results", &wf), Some(1.0), "only the published result: {m}");
            let findings = |severity: &str| sample(&m, "plancd_workflow_security_findings", &[wf[0], ("severity", severity)]);
            assert_eq!((findings("high"), findings("medium"), findings("low")), (Some(1.0), Some(0.0), Some(1.0)), "{m}");
            let (code, page) = http(c.port, "GET", "/ui/workflows/q/tasks/calc", &[], b"").unwrap();
            assert_eq!(code, 200, "{page}");
            assert!(page.contains("<h2>Quality</h2>") && page.contains("data-percent=\"55.6\""), "{page}");
            assert!(page.contains("<code>B602</code>"), "{page}");
        })
        .await
        .unwrap();
    })
    .await;
}

/// A node project in a folder of the repository, on the host's process backend: `cd web &&
/// node --test` runs with node's own coverage, reported into plancd's folder, and the figure is
/// recorded without test files.
#[tokio::test]
async fn a_node_test_runs_coverage_is_recorded_from_nodes_own_report() {
    let found = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        // As the guard's node doors: scripts/setup does not install node.
        eprintln!("skipping: `node` is not installed");
        return;
    }
    within(300, async {
        let repo = Repo::new();
        repo.write("plancd.yaml", "branch: main\nroles:\n  coder:\n    command: [\"sh\", \"agents/coder.sh\"]\n");
        repo.write(
            "agents/coder.sh",
            "mkdir -p web && cat > web/lib.js <<'EOF'\nfunction add(a, b) { return a + b; }\nfunction unused(x) {\n  if (x) { return 1; }\n  return 2;\n}\nmodule.exports = { add, unused };\nEOF\n",
        );
        repo.write(
            "web/test/lib.test.js",
            "const test = require('node:test');\nconst assert = require('node:assert');\nconst { add } = require('../lib.js');\ntest('add', () => { assert.strictEqual(add(1, 2), 3); });\n",
        );
        repo.write(
            "plans/n.yaml",
            "todo_list_id: n\ntitle: Node\ntasks:\n  - id: lib\n    title: Write lib.js\n    agent_role: coder\n    max_attempts: 1\n    outputs: [web/lib.js]\n    acceptance_criteria:\n      tests:\n        - cmd: cd web && node --test test/\n          timeout_seconds: 120\n      files: [web/test/lib.test.js]\n",
        );
        repo.commit("A node plan");
        let run = plancd_async(repo.path(), &["reconcile"], &[]).await;
        run.expect_code(0);
        let status: Value = serde_json::from_str(&repo.git(&["show", "refs/ai/tasks/n/lib:status.json"])).unwrap();
        let coverage = &status["tests"]["quality"]["coverage"];
        assert_eq!(coverage["tool"], "node_test", "{status}");
        assert_eq!(coverage["files"], 1, "lib.js alone, the test file left out: {status}");
        let percent = coverage["percent"].as_f64().unwrap();
        assert!(percent > 0.0 && percent < 100.0, "`unused` is not run: {status}");
        assert_eq!(status["tests"]["quality"]["unmeasured"][0]["reason"], "nothing_to_scan", "no Python for bandit: {status}");
        let described = plancd_async(repo.path(), &["describe", "n/lib"], &[]).await;
        assert!(described.stdout.contains(&format!("  Coverage:     {percent:.1}% (")), "{}", described.all());
    })
    .await;
}
