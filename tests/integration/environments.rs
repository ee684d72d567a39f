//! Environments declared in plancd.yaml on a real Python project (an installable package in a
//! src layout, installed editable into `/env`): built once, reused by every later attempt, and
//! environment problems (a failing setup, a missing test runner) reported as `environment`
//! without any agent run or branch todo.

use std::path::PathBuf;

use crate::util::Repo;

const PYPROJECT: &str = "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"calc\"\nversion = \"0.1.0\"\n\n[tool.setuptools.packages.find]\nwhere = [\"src\"]\n";

/// Writes `src/calc/<task>.py` with the function the task's test wants.
const AGENT: &str = r#"import json, os
task = json.load(open(os.environ["PLANCD_TASK"]))["task_id"]
ops = {"mul": "a * b", "sub": "a - b", "power": "a ** b"}
with open(f"src/calc/{task}.py", "w") as f:
    f.write(f"def {task}(a, b):\n    return {ops[task]}\n")
"#;

/// A test that passes only with the package installed (a src layout is not on sys.path) and
/// run by the environment's Python.
/// It also checks that `/env` cannot be written during an attempt.
fn test_of(task: &str, a: i32, b: i32, expected: i32) -> String {
    format!(
        "import errno, sys, unittest\nfrom calc.{task} import {task}\n\n\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.assertEqual(sys.prefix, \"/env\")\n        self.assertEqual({task}({a}, {b}), {expected})\n\n    def test_env_is_read_only(self):\n        with self.assertRaises(OSError) as raised:\n            open(\"/env/written\", \"w\")\n        self.assertEqual(raised.exception.errno, errno.EROFS)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n"
    )
}

fn task(id: &str, deps: &str, cmd: &str) -> String {
    format!(
        "  - id: {id}\n    title: Add {id}\n    agent_role: coder\n    dependencies: [{deps}]\n    outputs: [src/calc/{id}.py]\n    acceptance_criteria:\n      tests:\n        - cmd: {cmd}\n          timeout_seconds: 60\n      files: [tests/test_{id}.py]\n"
    )
}

/// The Python project with `setup` as its environment and `tasks` as its plan.
fn project(setup: &[&str], tasks: &[String]) -> Repo {
    project_on(Backend::Process, setup, tasks)
}

/// The backends the tests run on.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Process,
    Docker,
}

/// The project on `backend`.
fn project_on(backend: Backend, setup: &[&str], tasks: &[String]) -> Repo {
    let repo = Repo::new();
    let mut config = "branch: main\nconcurrency: 2\nroles:\n  coder: { command: [\"python3\", \"agents/write.py\"] }\n".to_owned();
    if backend == Backend::Docker {
        config.push_str("sandbox: { backend: docker }\n");
    }
    if !setup.is_empty() {
        config.push_str("environment:\n  setup:\n");
        for cmd in setup {
            config.push_str(&format!("    - \"{cmd}\"\n"));
        }
        config.push_str("  cache: [pyproject.toml]\n");
    }
    repo.write("plancd.yaml", &config);
    repo.write("agents/write.py", AGENT);
    repo.write("pyproject.toml", PYPROJECT);
    repo.write("src/calc/__init__.py", "def add(a, b):\n    return a + b\n");
    for (id, a, b, r) in [("mul", 6, 7, 42), ("sub", 9, 4, 5), ("power", 2, 5, 32)] {
        repo.write(&format!("tests/test_{id}.py"), &test_of(id, a, b, r));
    }
    repo.write("plans/calc.yaml", &format!("todo_list_id: calc\ntitle: Calculator\ntasks:\n{}", tasks.concat()));
    repo.commit("A calculator and its plan");
    repo
}

const SETUP: [&str; 2] = ["python3 -m venv --system-site-packages /env", "/env/bin/pip install -q --no-index --no-build-isolation -e ."];

fn unittest(id: &str) -> String {
    format!("python3 -m unittest -v tests/test_{id}.py")
}

fn status(repo: &Repo, task: &str) -> serde_json::Value {
    serde_json::from_str(&repo.git(&["show", &format!("refs/ai/tasks/calc/{task}:status.json")])).unwrap()
}

fn branch_todos(repo: &Repo) -> usize {
    repo.git(&["for-each-ref", "--format=%(refname)", "refs/ai/tasks/"]).lines().filter(|r| r.contains("_branch_")).count()
}

/// Whether an agent ran in any attempt of `task`.
fn agent_ran(repo: &Repo, task: &str) -> bool {
    let tree = repo.git(&["ls-tree", "-r", "--name-only", &format!("refs/ai/tasks/calc/{task}")]);
    tree.lines().any(|l| l.ends_with("/agent.log"))
}

#[test]
fn an_environment_is_built_once_and_reused_by_every_later_attempt() {
    let repo = project(&SETUP, &[task("mul", "", &unittest("mul")), task("sub", "", &unittest("sub"))]);
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    for t in ["mul", "sub"] {
        assert!(run.stderr.contains(&format!("calc/{t} attempt 1: environment\n")), "the step is shown: {}", run.stderr);
    }
    // Two attempts started at once: one built the environment, the other waited and reused it.
    let used: Vec<(String, String)> = ["mul", "sub"]
        .iter()
        .map(|t| {
            let s = status(&repo, t);
            assert_eq!(s["phase"], "Succeeded", "{t}: {s}");
            (s["environment"]["key"].as_str().unwrap().to_owned(), s["environment"]["how"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(used[0].0, used[1].0, "one key for one environment");
    let mut hows: Vec<&str> = used.iter().map(|(_, h)| h.as_str()).collect();
    hows.sort();
    assert_eq!(hows, ["built", "reused"], "{used:?}");
    let listing = repo.git(&["for-each-ref", "--format=%(contents)", "refs/ai/tasks/calc/mul"]);
    assert!(listing.contains(&format!("Plancd-Environment: {}", used[0].0)), "{listing}");
    let key = &used[0].0;
    let kept = repo.path().join(".git/plancd/environments").join(key);
    assert!(kept.join("bin/python3").exists(), "{} holds the environment", kept.display());

    // A later pass, a new task: the environment on disk is reused, not built again.
    let plan = format!(
        "todo_list_id: calc\ntitle: Calculator\ntasks:\n{}",
        [task("mul", "", &unittest("mul")), task("sub", "", &unittest("sub")), task("power", "mul", &unittest("power"))].concat()
    );
    repo.write("plans/calc.yaml", &plan);
    repo.commit("Add power");
    repo.plancd(&["reconcile"]).expect_code(0);
    let power = status(&repo, "power");
    assert_eq!((power["phase"].as_str(), power["environment"]["how"].as_str()), (Some("Succeeded"), Some("reused")), "{power}");
    assert_eq!(power["environment"]["key"].as_str(), Some(key.as_str()));
    assert!(power["environment"]["seconds"].as_f64().unwrap() < 1.0, "{power}");
    let entries: Vec<String> = std::fs::read_dir(repo.path().join(".git/plancd/environments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(entries, std::slice::from_ref(key), "one environment, no half-built folder left");
}

#[test]
fn a_failing_setup_is_one_environment_report_with_no_agent_and_no_branch_todo() {
    let setup = ["python3 -m venv /env", "echo 'resolving deps' && exit 7"];
    let repo = project(&setup, &[task("mul", "", &unittest("mul")), task("sub", "", &unittest("sub"))]);
    let run = repo.plancd(&["reconcile"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert_eq!(branch_todos(&repo), 0);
    assert!(!agent_ran(&repo, "mul") && !agent_ran(&repo, "sub"));
    let statuses = [status(&repo, "mul"), status(&repo, "sub")];
    let reported: Vec<&serde_json::Value> = statuses.iter().filter(|s| s["phase"] == "Failed").collect();
    assert_eq!(reported.len(), 1, "one setup failure, one report: {statuses:?}");
    let report = reported[0];
    assert_eq!((report["reason"].as_str(), report["failure_type"].as_str()), (Some("EnvironmentFailed"), Some("environment")));
    assert!(report["message"].as_str().unwrap().contains("environment.setup[1]"), "{report}");
    assert_eq!(report["environment"]["how"], "failed");
    // Everything with that environment waits; a second pass runs nothing.
    let again = repo.plancd(&["reconcile"]);
    assert!(again.stdout.contains("0 attempt(s) run"), "{}", again.all());
    let shown = repo.plancd(&["status"]).all();
    assert!(shown.contains("failed to build") && shown.contains("change environment.setup"), "{shown}");
    assert_eq!(branch_todos(&repo), 0);
    // A fixed setup is another environment: the tasks run again, and pass.
    let fixed = std::fs::read_to_string(repo.path().join("plancd.yaml"))
        .unwrap()
        .replace("echo 'resolving deps' && exit 7", "/env/bin/pip install -q --no-index --no-build-isolation -e .");
    repo.write("plancd.yaml", &fixed.replace("python3 -m venv /env", "python3 -m venv --system-site-packages /env"));
    repo.commit("Fix the environment");
    repo.plancd(&["reconcile"]).expect_code(0);
    assert_eq!((status(&repo, "mul")["phase"].as_str(), status(&repo, "sub")["phase"].as_str()), (Some("Succeeded"), Some("Succeeded")));
}

#[test]
fn a_missing_test_runner_is_an_incomplete_environment_before_any_agent_runs() {
    // No environment: the host's Python has no pytest.
    let repo = project(&[], &[task("mul", "", "python3 -m pytest -q tests/test_mul.py")]);
    let run = repo.plancd(&["reconcile"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    let s = status(&repo, "mul");
    assert_eq!((s["reason"].as_str(), s["failure_type"].as_str()), (Some("EnvironmentIncomplete"), Some("environment")), "{s}");
    assert!(s["message"].as_str().unwrap().contains("lacks `pytest`"), "{s}");
    assert!(s["message"].as_str().unwrap().contains("environment.setup"), "{s}");
    assert!(!agent_ran(&repo, "mul"));
    assert_eq!(branch_todos(&repo), 0);
    let again = repo.plancd(&["reconcile"]);
    assert!(again.stdout.contains("0 attempt(s) run"), "{}", again.all());
    // What to do is about the environment; no instructions for an agent that never ran.
    let described = repo.plancd(&["describe", "calc/mul"]).all();
    let next = described.lines().find(|l| l.starts_with("Next:")).unwrap_or_default();
    assert!(next.contains("change environment.setup"), "{described}");
    assert!(!next.contains("what to do differently"), "{next}");
}

/// Without `environment:` in plancd.yaml, a dev container's commands are the environment: taken,
/// said, built once, and the tests run with the project installed into `/env`.
#[test]
fn a_dev_containers_commands_are_the_environment_when_plancd_yaml_declares_none() {
    let repo = project(&[], &[task("mul", "", &unittest("mul"))]);
    repo.write(
        ".devcontainer/devcontainer.json",
        &format!(
            "{{\n  // the project's dev container\n  \"image\": \"python:3.11\",\n  \"postCreateCommand\": \"{} && {}\",\n}}\n",
            SETUP[0], SETUP[1]
        ),
    );
    repo.commit("A dev container");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stderr.contains("environment: taken from .devcontainer/devcontainer.json"), "{}", run.all());
    let s = status(&repo, "mul");
    assert_eq!(s["phase"], "Succeeded", "{s}");
    assert_eq!(s["environment"]["how"], "built", "{s}");
}

/// The setup on the sandbox image, whose Python has pip but, in images built before
/// `python3-venv` joined sandbox/images/build.sh, no `ensurepip`: the environment borrows the
/// image's pip and pytest.
const DOCKER_SETUP: [&str; 2] = [
    "python3 -m venv --without-pip --system-site-packages /env",
    "/env/bin/python3 -m pip install -q --no-index --no-build-isolation -e .",
];

fn pytest(id: &str) -> String {
    format!("python3 -m pytest -q tests/test_{id}.py")
}

/// Whether the docker tests run here: an engine with the sandbox image (a visible skip
/// otherwise; a failure under PLANCD_REQUIRE_DOCKER=1).
fn docker_here() -> bool {
    crate::docker_sessions::engine_with_image()
}

/// On docker, the image's pytest runs the project's tests with the project installed
/// editable into `/env` (a bind of the built folder, read-only in every attempt): built by one
/// of two attempts started together, reused by the other and by a later pass.
#[test]
fn on_docker_a_python_project_is_reconciled_through_a_built_then_reused_environment() {
    if !docker_here() {
        return;
    }
    let repo = project_on(Backend::Docker, &DOCKER_SETUP, &[task("mul", "", &pytest("mul")), task("sub", "", &pytest("sub"))]);
    repo.plancd(&["reconcile"]).expect_code(0);
    let used: Vec<(String, String)> = ["mul", "sub"]
        .iter()
        .map(|t| {
            let s = status(&repo, t);
            assert_eq!(s["phase"], "Succeeded", "{t}: {s}");
            (s["environment"]["key"].as_str().unwrap().to_owned(), s["environment"]["how"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(used[0].0, used[1].0);
    let mut hows: Vec<&str> = used.iter().map(|(_, h)| h.as_str()).collect();
    hows.sort();
    assert_eq!(hows, ["built", "reused"], "{used:?}");
    let kept = repo.path().join(".git/plancd/environments").join(&used[0].0);
    assert!(kept.join("bin/python3").exists() && !kept.join("written").exists(), "{}", kept.display());
    let process_key = {
        let on_process = project(&DOCKER_SETUP, &[task("mul", "", &pytest("mul"))]);
        on_process.plancd(&["reconcile"]);
        status(&on_process, "mul")["environment"]["key"].as_str().unwrap().to_owned()
    };
    assert_ne!(process_key, used[0].0, "the backend is part of the key");

    let plan = format!(
        "todo_list_id: calc\ntitle: Calculator\ntasks:\n{}",
        [task("mul", "", &pytest("mul")), task("sub", "", &pytest("sub")), task("power", "mul", &pytest("power"))].concat()
    );
    repo.write("plans/calc.yaml", &plan);
    repo.commit("Add power");
    repo.plancd(&["reconcile"]).expect_code(0);
    let power = status(&repo, "power");
    assert_eq!((power["phase"].as_str(), power["environment"]["how"].as_str()), (Some("Succeeded"), Some("reused")), "{power}");
    assert_eq!(power["environment"]["key"].as_str(), Some(used[0].0.as_str()));
}

#[test]
fn on_docker_a_failing_setup_and_a_missing_runner_are_environment_reports_with_no_branch_todo() {
    if !docker_here() {
        return;
    }
    let setup = [DOCKER_SETUP[0], "echo 'resolving deps' && exit 7"];
    let repo = project_on(Backend::Docker, &setup, &[task("mul", "", &pytest("mul")), task("sub", "", &pytest("sub"))]);
    let run = repo.plancd(&["reconcile"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let statuses = [status(&repo, "mul"), status(&repo, "sub")];
    let reported: Vec<&serde_json::Value> = statuses.iter().filter(|s| s["phase"] == "Failed").collect();
    assert_eq!(reported.len(), 1, "one setup failure, one report: {statuses:?}");
    assert_eq!((reported[0]["reason"].as_str(), reported[0]["failure_type"].as_str()), (Some("EnvironmentFailed"), Some("environment")));
    assert!(reported[0]["message"].as_str().unwrap().contains("environment.setup[1]"), "{}", reported[0]);
    assert!(!agent_ran(&repo, "mul") && !agent_ran(&repo, "sub"));
    assert_eq!(branch_todos(&repo), 0);

    // The image has Python and pytest, not Node.
    let repo = project_on(Backend::Docker, &DOCKER_SETUP, &[task("mul", "", "node --test tests/")]);
    let run = repo.plancd(&["reconcile"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let s = status(&repo, "mul");
    assert_eq!((s["reason"].as_str(), s["failure_type"].as_str()), (Some("EnvironmentIncomplete"), Some("environment")), "{s}");
    assert!(s["message"].as_str().unwrap().contains("lacks `node`"), "{s}");
    assert!(!agent_ran(&repo, "mul"));
    assert_eq!(branch_todos(&repo), 0);
}

/// An environment's image is the image of every session of its attempts; one the engine lacks
/// is an environment failure that says what to do (plancd never pulls).
#[test]
fn on_docker_the_environments_image_is_used_and_a_missing_one_says_what_to_do() {
    if !docker_here() {
        return;
    }
    let repo = project_on(Backend::Docker, &DOCKER_SETUP, &[task("mul", "", &pytest("mul"))]);
    let config = std::fs::read_to_string(repo.path().join("plancd.yaml")).unwrap();
    repo.write("plancd.yaml", &config.replace("environment:\n", "environment:\n  image: plancd-test-absent:1\n"));
    repo.commit("An image this engine lacks");
    let run = repo.plancd(&["reconcile"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let s = status(&repo, "mul");
    assert_eq!(s["reason"].as_str(), Some("EnvironmentFailed"), "{s}");
    let message = s["message"].as_str().unwrap();
    assert!(message.contains("plancd-test-absent:1") && message.contains("docker pull plancd-test-absent:1"), "{message}");
    assert!(!agent_ran(&repo, "mul"));
    assert_eq!(branch_todos(&repo), 0);
}

/// Whether `program --version` runs on this host (the process backend's root); a visible skip
/// otherwise.
fn host_has(program: &str) -> bool {
    let ok = std::process::Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: no {program} on this host");
    }
    ok
}

/// Whether PyPI answers from this host: the setup below installs pytest from it, through the
/// egress proxy (a visible skip otherwise).
fn pypi_reachable() -> bool {
    use std::net::ToSocketAddrs;
    let ok = ("pypi.org", 443)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)).is_ok());
    if !ok {
        eprintln!("skipping: pypi.org does not answer from this host");
    }
    ok
}

/// On the process backend the host's Python has no pytest: setup installs it from PyPI through
/// the egress proxy (its only network), with the project editable; every attempt then runs
/// pytest offline from `/env`, read-only.
#[test]
fn on_process_a_pytest_project_gets_pytest_through_the_proxy_once_and_reuses_it() {
    if !pypi_reachable() {
        return;
    }
    let setup = ["python3 -m venv /env", "/env/bin/pip install -q pytest", "/env/bin/pip install -q -e ."];
    let repo = project(&setup, &[task("mul", "", &pytest("mul")), task("sub", "", &pytest("sub"))]);
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    let mut hows: Vec<String> =
        ["mul", "sub"].iter().map(|t| status(&repo, t)["environment"]["how"].as_str().unwrap().to_owned()).collect();
    hows.sort();
    assert_eq!(hows, ["built", "reused"]);
    let key = status(&repo, "mul")["environment"]["key"].as_str().unwrap().to_owned();
    let kept = repo.path().join(".git/plancd/environments").join(&key);
    assert!(kept.join("bin/pytest").exists(), "pytest came through the proxy into {}", kept.display());
    let log = repo.git(&["show", "refs/ai/tasks/calc/mul:status.json"]);
    assert!(log.contains("Succeeded"), "{log}");
}

const NODE_AGENT: &str = r#"const fs = require("fs");
const task = JSON.parse(fs.readFileSync(process.env.PLANCD_TASK, "utf8")).task_id;
const ops = { mul: "a * b", sub: "a - b" };
fs.mkdirSync("src", { recursive: true });
fs.writeFileSync(`src/${task}.js`, `exports.${task} = (a, b) => ${ops[task]};\n`);
"#;

/// A tool of the project's own, installed into `/env/bin` by setup: it checks the sources.
const CHECK_NAMES: &str = r#"#!/usr/bin/env node
const fs = require("fs");
const bad = fs.readdirSync(process.argv[2]).filter((f) => !/^[a-z]+\.js$/.test(f));
if (bad.length) { console.error(`bad names: ${bad}`); process.exit(1); }
console.log("names ok");
"#;

fn node_test(task: &str, a: i32, b: i32, expected: i32) -> String {
    format!(
        "const test = require(\"node:test\");\nconst assert = require(\"node:assert\");\nconst fs = require(\"node:fs\");\nconst {{ {task} }} = require(\"../src/{task}.js\");\n\ntest(\"{task}\", () => assert.strictEqual({task}({a}, {b}), {expected}));\ntest(\"/env is read-only\", () => assert.throws(() => fs.writeFileSync(\"/env/written\", \"x\"), {{ code: \"EROFS\" }}));\n"
    )
}

/// A Node project whose `npm test` runs `node --test` after a check by a tool that setup
/// installs into `/env/bin` (packed from the repository and installed globally there, offline),
/// on `backend` (with `image` as the environment's image, on docker).
fn node_project(backend: Backend, image: Option<&str>) -> Repo {
    let repo = Repo::new();
    let setup = "cd /tmp && npm install --global --prefix /env --offline --no-audit --no-fund \"/tmp/$(npm pack --silent /workspace/tools/check-names)\"";
    let sandbox = if backend == Backend::Docker { "sandbox: { backend: docker }\n" } else { "" };
    let image = image.map(|i| format!("  image: {i}\n")).unwrap_or_default();
    repo.write(
        "plancd.yaml",
        &format!(
            "branch: main\nconcurrency: 2\n{sandbox}roles:\n  coder: {{ command: [\"node\", \"agents/write.js\"] }}\nenvironment:\n{image}  setup:\n    - '{setup}'\n  cache: [package.json, \"tools/**\"]\n"
        ),
    );
    repo.write("package.json", "{\n  \"name\": \"calc-js\",\n  \"version\": \"1.0.0\",\n  \"private\": true,\n  \"scripts\": { \"test\": \"check-names src && node --test\" }\n}\n");
    repo.write(
        "tools/check-names/package.json",
        "{ \"name\": \"check-names\", \"version\": \"1.0.0\", \"bin\": { \"check-names\": \"cli.js\" } }\n",
    );
    repo.write("tools/check-names/cli.js", CHECK_NAMES);
    repo.write("agents/write.js", NODE_AGENT);
    repo.write("src/add.js", "exports.add = (a, b) => a + b;\n");
    repo.write("test/mul.test.js", &node_test("mul", 6, 7, 42));
    repo.write("test/sub.test.js", &node_test("sub", 9, 4, 5));
    let task = |id: &str| {
        format!(
            "  - id: {id}\n    title: Add {id}\n    agent_role: coder\n    outputs: [src/{id}.js]\n    acceptance_criteria:\n      tests:\n        - cmd: npm test -- test/{id}.test.js\n          timeout_seconds: 60\n      files: [test/{id}.test.js]\n"
        )
    };
    repo.write("plans/calc.yaml", &format!("todo_list_id: calc\ntitle: Calculator\ntasks:\n{}{}", task("mul"), task("sub")));
    repo.commit("A Node calculator and its plan");
    repo
}

/// Reconciles the Node project: both tasks succeed, one built the environment and the other
/// reused it, and the tool setup installed ran before the tests.
fn node_project_succeeds_through_one_environment(repo: &Repo) {
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    let statuses = [status(repo, "mul"), status(repo, "sub")];
    let mut hows: Vec<&str> = statuses.iter().map(|s| s["environment"]["how"].as_str().unwrap()).collect();
    hows.sort();
    assert_eq!(hows, ["built", "reused"], "{statuses:?}");
    let key = statuses[0]["environment"]["key"].as_str().unwrap();
    assert!(repo.path().join(".git/plancd/environments").join(key).join("bin/check-names").exists());
    let logs = repo.plancd(&["logs", "calc/mul"]).all();
    assert!(
        logs.contains("names ok") && logs.contains("pass 2") && logs.contains("fail 0"),
        "the tool from /env ran, then both tests: {logs}"
    );
}

#[test]
fn on_process_a_node_project_runs_npm_test_through_a_built_then_reused_environment() {
    if !host_has("node") || !host_has("npm") {
        return;
    }
    node_project_succeeds_through_one_environment(&node_project(Backend::Process, None));
}

/// On docker, the environment's image brings Node: an image made from the sandbox image with
/// this host's node and npm (no registry), as a user's own Node image would.
#[test]
fn on_docker_a_node_project_runs_npm_test_through_a_built_then_reused_environment() {
    if !docker_here() || !host_has("node") || !host_has("npm") {
        return;
    }
    let image = NodeImage::build();
    node_project_succeeds_through_one_environment(&node_project(Backend::Docker, Some(&image.0)));
}

/// The sandbox image with this host's `node` and `npm` added, removed when dropped.
struct NodeImage(String);

impl NodeImage {
    fn build() -> NodeImage {
        let image = NodeImage(format!("plancd-test-node:{}", std::process::id()));
        let dir = tempfile::tempdir().unwrap();
        let node = std::fs::canonicalize(which("node")).unwrap();
        // npm is a link into its package: .../node_modules/npm/bin/npm-cli.js.
        let npm = std::fs::canonicalize(which("npm")).unwrap().parent().unwrap().parent().unwrap().to_owned();
        std::fs::copy(&node, dir.path().join("node")).unwrap();
        let copied = std::process::Command::new("cp").arg("-a").arg(&npm).arg(dir.path().join("npm")).status().unwrap();
        assert!(copied.success(), "cp -a {}", npm.display());
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM plancd-sandbox:python\nUSER 0:0\nCOPY node /usr/local/bin/node\nCOPY npm /usr/local/lib/node_modules/npm\nRUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && node --version && npm --version\nUSER 65534:65534\n",
        )
        .unwrap();
        let out = std::process::Command::new("docker").args(["build", "-q", "-t", &image.0]).arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "docker build: {}", String::from_utf8_lossy(&out.stderr));
        image
    }
}

impl Drop for NodeImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// Where `program` is on this host's PATH.
fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file()).unwrap_or_else(|| panic!("no {program} on PATH"))
}

/// An image made from the sandbox image with a marker file (no registry: `docker build` of a
/// local base and a COPY), removed when dropped.
struct MarkedImage(String);

impl MarkedImage {
    fn build() -> MarkedImage {
        let image = MarkedImage(format!("plancd-test-marked:{}", std::process::id()));
        image.rebuild("marked");
        image
    }

    /// Builds it again under the same name, with `marker` in the marker file.
    fn rebuild(&self, marker: &str) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("marker"), marker).unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM plancd-sandbox:python\nCOPY marker /plancd-test-marker\n").unwrap();
        let out = std::process::Command::new("docker").args(["build", "-q", "-t", &self.0]).arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "docker build: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for MarkedImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// On docker, a dev container's image and commands are the environment when plancd.yaml
/// declares none: setup, the agent and the tests all run in that image.
#[test]
fn on_docker_a_dev_containers_image_and_commands_are_the_environment() {
    if !docker_here() {
        return;
    }
    let image = MarkedImage::build();
    let cmd = format!("test -f /plancd-test-marker && {}", pytest("mul"));
    let repo = project_on(Backend::Docker, &[], &[task("mul", "", &cmd)]);
    repo.write(
        ".devcontainer/devcontainer.json",
        &format!(
            "{{\n  \"image\": \"{}\",\n  \"postCreateCommand\": \"test -f /plancd-test-marker && {} && {}\"\n}}\n",
            image.0, DOCKER_SETUP[0], DOCKER_SETUP[1]
        ),
    );
    repo.commit("A dev container");
    let run = repo.plancd(&["reconcile"]);
    run.expect_code(0);
    assert!(run.stderr.contains("environment: taken from .devcontainer/devcontainer.json"), "{}", run.all());
    let s = status(&repo, "mul");
    assert_eq!((s["phase"].as_str(), s["environment"]["how"].as_str()), (Some("Succeeded"), Some("built")), "{s}");

    // The image rebuilt under the same name is another base: the environment is built again
    // (same key), once.
    image.rebuild("marked again");
    let plan = format!("todo_list_id: calc\ntitle: Calculator\ntasks:\n{}{}", task("mul", "", &cmd), task("sub", "", &pytest("sub")));
    repo.write("plans/calc.yaml", &plan);
    repo.commit("Add sub");
    repo.plancd(&["reconcile"]).expect_code(0);
    let sub = status(&repo, "sub");
    assert_eq!((sub["phase"].as_str(), sub["environment"]["how"].as_str()), (Some("Succeeded"), Some("built")), "{sub}");
    assert_eq!(sub["environment"]["key"], s["environment"]["key"]);
}
