//! Table tests of the guard: which changes are refused and why, which outputs hold a task for
//! approval, and which commands get a probe.

use plancd_sandbox::FileEntry;

use super::*;
use crate::spec::AcceptanceTest;

fn f(path: &str, data: &str) -> FileEntry {
    FileEntry::new(path, data)
}

fn test(cmd: &str) -> AcceptanceTest {
    serde_json::from_value(serde_json::json!({ "cmd": cmd })).unwrap()
}

/// One row: what the task declares, what the agent did, and the verdict.
struct Row {
    name: &'static str,
    outputs: &'static [&'static str],
    cmd: &'static str,
    written: &'static [(&'static str, &'static str)],
    removed: &'static [&'static str],
    ignored: &'static [&'static str],
    want: Option<(Refusal, &'static [&'static str])>,
}

const PINNED: &[&str] = &["tests/test_mul.py"];
const UNITTEST: &str = "python3 -m unittest tests/test_mul.py";

fn row(name: &'static str, written: &'static [(&'static str, &'static str)], want: Option<(Refusal, &'static [&'static str])>) -> Row {
    Row { name, outputs: &[], cmd: UNITTEST, written, removed: &[], ignored: &[], want }
}

use Refusal::{ProtectedPath as P, TestTampering as T};

fn rows() -> Vec<Row> {
    vec![
        row("ordinary code", &[("mul.py", "def mul(a, b): return a * b\n")], None),
        row("a push workflow", &[("mul.py", ""), (".github/workflows/x.yml", "on: push\n")], Some((P, &[".github/workflows/x.yml"]))),
        row(
            "a submodule with an ext:: url",
            &[(".gitmodules", "[submodule \"x\"]\n\turl = ext::sh -c touch% /tmp/pwned\n")],
            Some((P, &[".gitmodules"])),
        ),
        row("a filter in attributes, at any depth", &[("src/.gitattributes", "*.py filter=x\n")], Some((P, &["src/.gitattributes"]))),
        row(
            "code owners, three places",
            &[("CODEOWNERS", "* @me\n"), (".github/CODEOWNERS", "* @me\n"), ("docs/CODEOWNERS", "* @me\n")],
            Some((P, &[".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"])),
        ),
        row(
            "plancd's own files",
            &[(".plancd/prompts/coder.md", "x"), ("plancd.yaml", "x")],
            Some((P, &[".plancd/prompts/coder.md", "plancd.yaml"])),
        ),
        row("another folder's plancd.yaml", &[("examples/x/plancd.yaml", "x")], None),
        row("a case variant", &[(".GitModules", "x")], Some((P, &[".GitModules"]))),
        Row { removed: &[".github/workflows/ci.yml"], ..row("a workflow removed", &[], Some((P, &[".github/workflows/ci.yml"]))) },
        Row {
            outputs: &[".github/workflows/ci.yml"],
            ..row("a workflow the task names", &[(".github/workflows/ci.yml", "on: push\n")], None)
        },
        row(
            "a shadowing unittest package",
            &[("mul.py", ""), ("unittest/__init__.py", ""), ("unittest/__main__.py", "print('OK')\n")],
            Some((T, &["unittest/__init__.py", "unittest/__main__.py"])),
        ),
        row("a unittest module", &[("unittest.py", "")], Some((T, &["unittest.py"]))),
        row("a pytest module", &[("pytest.py", "")], Some((T, &["pytest.py"]))),
        row("a stdlib-named module", &[("traceback.py", "")], Some((T, &["traceback.py"]))),
        row(
            "an extension module",
            &[("unittest.cpython-311-x86_64-linux-gnu.so", "")],
            Some((T, &["unittest.cpython-311-x86_64-linux-gnu.so"])),
        ),
        row("a shadow beside the pinned tests", &[("tests/unittest.py", "")], Some((T, &["tests/unittest.py"]))),
        row("a stdlib name deeper down", &[("src/app/json.py", "")], None),
        row("a data folder named like a module", &[("json/data.json", "{}")], None),
        row("random.data.py is no module", &[("random.data.py", "")], None),
        row(
            "start-up hooks",
            &[("sitecustomize.py", ""), ("usercustomize.py", ""), ("x.pth", "")],
            Some((T, &["sitecustomize.py", "usercustomize.py", "x.pth"])),
        ),
        row(
            "pytest's configuration",
            &[
                ("conftest.py", ""),
                ("tests/conftest.py", ""),
                ("pytest.ini", ""),
                ("tox.ini", ""),
                ("setup.cfg", ""),
                ("pyproject.toml", ""),
            ],
            Some((T, &["conftest.py", "pyproject.toml", "pytest.ini", "setup.cfg", "tests/conftest.py", "tox.ini"])),
        ),
        row(
            "a plugin's entry points",
            &[("evil.dist-info/entry_points.txt", "[pytest11]\nx = x\n")],
            Some((T, &["evil.dist-info/entry_points.txt"])),
        ),
        row("package.json test scripts", &[("package.json", "{\"scripts\": {\"test\": \"true\"}}")], Some((T, &["package.json"]))),
        row("package.json dependencies only", &[("package.json", "{\"name\": \"x\", \"dependencies\": {\"a\": \"1\"}}")], None),
        row(
            "node runner configs",
            &[("jest.config.js", ""), ("vitest.config.ts", ""), (".npmrc", ""), (".mocharc.yml", "")],
            Some((T, &[".mocharc.yml", ".npmrc", "jest.config.js", "vitest.config.ts"])),
        ),
        row("cargo configuration", &[(".cargo/config.toml", "[build]\nrustc-wrapper = \"x\"\n")], Some((T, &[".cargo/config.toml"]))),
        row("a go TestMain", &[("pkg/a_test.go", "func TestMain(m *testing.M) { os.Exit(0) }\n")], Some((T, &["pkg/a_test.go"]))),
        row("an ordinary go test", &[("pkg/a_test.go", "func TestA(t *testing.T) {}\n")], None),
        Row { ignored: &["unittest.pyc"], ..row("ignored bytecode without source", &[], Some((T, &["unittest.pyc"]))) },
        Row { ignored: &["__pycache__/mul.cpython-311.pyc", "node_modules/x/index.js"], ..row("caches", &[], None) },
        Row {
            cmd: "sh run_tests.sh",
            ..row("the committed script the test runs", &[("run_tests.sh", "exit 0\n")], Some((T, &["run_tests.sh"])))
        },
        Row { cmd: "make test", ..row("the makefile of `make test`", &[("Makefile", "test:\n\ttrue\n")], Some((T, &["Makefile"]))) },
        Row { cmd: "sh new.sh", ..row("a new script the test runs is code under test", &[("new.sh", "echo hi\n")], None) },
        Row {
            cmd: "python3 mul.py | grep -q 6",
            ..row("a python program the test runs is code under test", &[("mul.py", "print(6)\n")], None)
        },
        Row {
            cmd: "PYTHONPATH=src python3 -m unittest",
            ..row("a shadow on PYTHONPATH", &[("src/unittest.py", "")], Some((T, &["src/unittest.py"])))
        },
        Row {
            cmd: "cd pkg && python3 -m unittest discover -s tests",
            ..row("a shadow in the folder a `cd` runs the tests from", &[("pkg/unittest.py", "")], Some((T, &["pkg/unittest.py"])))
        },
        Row {
            cmd: "cd pkg && PYTHONPATH=src python3 -m pytest",
            ..row("a shadow on a PYTHONPATH seen from a `cd`", &[("pkg/src/pytest.py", "")], Some((T, &["pkg/src/pytest.py"])))
        },
        Row {
            cmd: "cd pkg && sh run_tests.sh",
            ..row("the committed script a test runs after a `cd`", &[("pkg/run_tests.sh", "exit 0\n")], Some((T, &["pkg/run_tests.sh"])))
        },
        Row { cmd: "cd pkg && cd .. && python3 -m unittest", ..row("a `cd` back to the workspace", &[("pkg/unittest.py", "")], None) },
        Row { outputs: &["conftest.py"], ..row("a conftest the task names", &[("conftest.py", "")], None) },
        row("protected paths are reported before tampering", &[("conftest.py", ""), (".gitmodules", "")], Some((P, &[".gitmodules"]))),
    ]
}

/// A written file as the copy-out leaves it, its content kept.
fn written(path: &str, data: &str) -> crate::reconcile::workspace::WrittenFile {
    let blob = git2::Oid::hash_object(git2::ObjectType::Blob, data.as_bytes()).unwrap();
    crate::reconcile::workspace::WrittenFile { path: path.into(), executable: false, blob, content: Some(data.as_bytes().to_vec()) }
}

#[test]
fn the_guard_refuses_what_each_row_says() {
    let guard = Guard::new(&Config::default());
    let input = [
        f("mul.py", "def mul(a, b): return a * b\n"),
        f("tests/test_mul.py", "import unittest\n"),
        f(".github/workflows/ci.yml", "on: pull_request\n"),
        f("run_tests.sh", "python3 -m unittest\n"),
        f("Makefile", "test:\n\tpython3 -m unittest\n"),
        f("pkg/run_tests.sh", "python3 -m unittest\n"),
    ];
    let input = Input::from_files(input);
    for row in rows() {
        let change = AgentChange {
            written: row.written.iter().map(|(p, d)| written(p, d)).collect(),
            removed: row.removed.iter().map(|p| (*p).to_owned()).collect(),
            pinned_touched: Vec::new(),
            ignored: row.ignored.iter().map(|p| (*p).to_owned()).collect(),
        };
        let outputs: Vec<String> = row.outputs.iter().map(|o| (*o).to_owned()).collect();
        let pinned: Vec<String> = PINNED.iter().map(|p| (*p).to_owned()).collect();
        let tests = [test(row.cmd)];
        let subject = Subject { outputs: &outputs, pinned: &pinned, tests: &tests, input: &input };
        let got = guard.check(&subject, &change);
        let got_short = got.as_ref().map(|v| (v.refusal, v.paths.clone()));
        let want = row.want.map(|(r, paths)| (r, paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>()));
        assert_eq!(got_short, want, "{}: {got:?}", row.name);
        if let Some(v) = got {
            assert!(v.paths.iter().all(|p| v.message.contains(p.as_str())), "{}: the message names the files: {}", row.name, v.message);
        }
    }
}

#[test]
fn the_configuration_adds_protected_paths_and_can_lift_a_default() {
    let config = Config { protected_paths: vec!["secrets/**".into(), "!.gitattributes".into()], ..Config::default() };
    let guard = Guard::new(&config);
    assert!(guard.is_protected("secrets/key.pem"));
    assert!(!guard.is_protected(".gitattributes"));
    assert!(guard.is_protected(".github/workflows/ci.yml"), "the other defaults stand");
    assert!(guard.is_protected("./.gitmodules"), "paths are normalised");
}

#[test]
fn outputs_that_are_protected_or_runner_files_hold_the_task_for_approval() {
    let guard = Guard::new(&Config::default());
    let task: Task = serde_json::from_value(serde_json::json!({
        "id": "t", "title": "T", "agent_role": "coder",
        "outputs": [".github/workflows/ci.yml", "src/a.py", "conftest.py", "unittest/__init__.py", "docs/guide.md"],
    }))
    .unwrap();
    assert_eq!(guard.held_outputs(&task), [".github/workflows/ci.yml", "conftest.py", "unittest/__init__.py"]);
}

#[test]
fn refusals_convert_to_and_from_failure_types() {
    for r in [Refusal::ProtectedPath, Refusal::TestTampering] {
        assert_eq!(Refusal::from_failure_type(r.failure_type()), Some(r));
        assert_eq!(format!("{r:?}"), r.reason());
    }
    assert_eq!(Refusal::from_failure_type("test_failure"), None);
}

/// One row of the probe planner: the command, the files there are, and the files the probe
/// changes (or a part of the reason it is skipped).
struct ProbeRow {
    cmd: &'static str,
    pinned: &'static [&'static str],
    extra: &'static [(&'static str, &'static str)],
    want: Result<&'static [&'static str], &'static str>,
}

fn probe_rows() -> Vec<ProbeRow> {
    let p = |cmd, pinned, want| ProbeRow { cmd, pinned, extra: &[], want };
    let two: &[&str] = &["tests/test_a.py", "tests/test_b.py"];
    vec![
        p("python3 -m unittest tests/test_a.py", two, Ok(&["tests/test_a.py"])),
        p("python3 -m unittest -v tests/test_a.py tests/test_b.py", two, Ok(two)),
        p("python3 -m unittest tests.test_a", two, Ok(&["tests/test_a.py"])),
        p("python3 -m unittest tests.test_a.TestA", two, Err("names single tests")),
        p("python3 -m unittest -k mul tests/test_a.py", two, Err("-k")),
        p("python3 -m unittest discover -v -s tests -p 'test_*.py'", two, Ok(two)),
        p("python3 -m unittest discover -s tests -p 'test_a*.py'", two, Ok(&["tests/test_a.py"])),
        p("python3 -m unittest", two, Err("none of the files")),
        ProbeRow { extra: &[("tests/__init__.py", "")], ..p("python3 -m unittest", two, Ok(two)) },
        p("python3 -m unittest tests/test_c.py", two, Err("none of the files")),
        p("python -B -m unittest tests/test_a.py", two, Ok(&["tests/test_a.py"])),
        p("PYTHONPATH=src python3 -m unittest tests/test_a.py", two, Ok(&["tests/test_a.py"])),
        p("pytest -q tests/test_a.py", two, Ok(&["tests/test_a.py"])),
        p("python3 -m pytest -q --tb=short tests/", two, Ok(two)),
        p("python3 -m pytest", two, Ok(two)),
        p("pytest tests/test_a.py::test_x", two, Err("names single tests")),
        p("pytest -k fast", two, Err("-k")),
        p("pytest --frobnicate tests", two, Err("does not know")),
        ProbeRow {
            extra: &[("pyproject.toml", "[tool.pytest.ini_options]\naddopts = \"-k fast\"\n")],
            ..p("pytest tests", two, Err("addopts"))
        },
        ProbeRow { extra: &[("pytest.ini", "[pytest]\ntestpaths = other\n")], ..p("pytest", two, Err("chooses the test files")) },
        p("grep -q 'done by a' out/a.txt", two, Err("not a runner")),
        p("python3 tests/check_contract.py contracts/x.json", two, Err("none of the files python FILE runs")),
        p("python3 -c pass", two, Err("`python3 -c` is not a runner the probe knows")),
        // Run from tests/, discovery finds both files at its top.
        p("cd tests && python3 -m unittest", two, Ok(two)),
        p("cd tests && python3 -m unittest && echo done", two, Err("more than one simple command")),
        p("cd tests; python3 -m unittest", two, Err("more than one simple command")),
        p("python3 -m unittest $TESTS", two, Err("more than one simple command")),
        p("python3 -m unittest \"tests/test_a.py", two, Err("unclosed quote")),
    ]
}

#[test]
fn the_probe_targets_the_pinned_files_a_command_certainly_runs() {
    for row in probe_rows() {
        let pinned: Vec<FileEntry> =
            row.pinned.iter().map(|p| f(p, "import unittest\n\nclass T(unittest.TestCase):\n    pass\n")).collect();
        let mut input = pinned.clone();
        input.push(f("tests/test_c.py", ""));
        input.extend(row.extra.iter().map(|(p, d)| f(p, d)));
        match (plan_probe(row.cmd, &pinned, &Input::from_files(input), "42"), row.want) {
            (ProbePlan::Run(probe), Ok(want)) => {
                let paths: Vec<&str> = probe.files.iter().map(|f| f.path.as_str()).collect();
                assert_eq!(paths, want, "{}", row.cmd);
                for file in &probe.files {
                    let text = String::from_utf8(file.data.clone()).unwrap();
                    assert!(text.starts_with("import unittest\n"), "{}: the original comes first", row.cmd);
                    assert!(
                        text.contains("class TestPlancdProbe_42(") && text.contains("raise AssertionError(\"plancd-probe-42"),
                        "{text}"
                    );
                }
            }
            (ProbePlan::Skip(why), Err(want)) => assert!(why.contains(want), "{}: skipped because {why}, expected {want}", row.cmd),
            (got, want) => panic!("{}: got {got:?}, expected {want:?}", row.cmd),
        }
    }
}

#[test]
fn the_probe_fails_under_a_real_python_and_passes_under_a_shadowed_runner() {
    // The appended test, run by the interpreter itself: a runner that judges must report it.
    let dir = tempfile::tempdir().unwrap();
    let original = f(
        "tests/test_mul.py",
        "import unittest\nfrom mul import mul\n\nclass T(unittest.TestCase):\n    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n",
    );
    let ProbePlan::Run(probe) = plan_probe(UNITTEST, std::slice::from_ref(&original), &Input::from_files([original.clone()]), "7") else {
        panic!("no probe")
    };
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("mul.py"), "def mul(a, b):\n    return a * b\n").unwrap();
    std::fs::write(dir.path().join("tests/test_mul.py"), &probe.files[0].data).unwrap();
    let run = |dir: &std::path::Path| {
        std::process::Command::new("python3")
            .args(["-m", "unittest", "tests/test_mul.py"])
            .current_dir(dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap()
    };
    let out = run(dir.path());
    assert!(!out.status.success(), "the probe must fail: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plancd-probe-7: this test must fail"));
    // With a shadowing `unittest` package in the workspace the same command passes.
    std::fs::create_dir_all(dir.path().join("unittest")).unwrap();
    std::fs::write(dir.path().join("unittest/__init__.py"), "").unwrap();
    std::fs::write(dir.path().join("unittest/__main__.py"), "print('OK')\n").unwrap();
    assert!(run(dir.path()).status.success());
}
