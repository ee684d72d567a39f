//! `plancd init` on small projects shaped like real ones: the files it writes pass `plancd
//! validate`, `--dry-run` writes nothing, and files that exist are replaced only with `--force`.

use crate::util::{Repo, Run, project_root};

/// A Python package with its tests in tests/ and pytest as a test extra.
fn python_project() -> Repo {
    let repo = Repo::new();
    repo.write(
        "pyproject.toml",
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"tinycalc\"\nversion = \"0.1.0\"\nrequires-python = \">=3.9\"\n\n\
         [project.optional-dependencies]\ntest = [\"pytest>=7\"]\n\n\
         [tool.setuptools.packages.find]\nwhere = [\"src\"]\n",
    )
    .write("src/tinycalc/__init__.py", "def add(a, b):\n    return a + b\n")
    .write("tests/test_add.py", "from tinycalc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    .write("README.md", "# tinycalc\n");
    repo.commit("tinycalc");
    repo
}

/// A Node package whose test script runs node's own test runner, with a lockfile.
fn node_project() -> Repo {
    let repo = Repo::new();
    repo.write("package.json", "{\n  \"name\": \"tiny-add\",\n  \"version\": \"1.0.0\",\n  \"main\": \"index.js\",\n  \"scripts\": {\n    \"test\": \"node --test test/\"\n  }\n}\n")
        .write(
            "package-lock.json",
            "{\n  \"name\": \"tiny-add\",\n  \"version\": \"1.0.0\",\n  \"lockfileVersion\": 3,\n  \"requires\": true,\n  \"packages\": {\n    \"\": { \"name\": \"tiny-add\", \"version\": \"1.0.0\" }\n  }\n}\n",
        )
        .write("index.js", "exports.add = (a, b) => a + b;\n")
        .write(
            "test/add.test.js",
            "const test = require('node:test');\nconst assert = require('node:assert');\nconst { add } = require('..');\n\ntest('adds', () => assert.strictEqual(add(2, 3), 5));\n",
        );
    repo.commit("tiny-add");
    repo
}

/// A Rust library crate with a unit test.
fn rust_project() -> Repo {
    let repo = Repo::new();
    repo.write("Cargo.toml", "[package]\nname = \"tiny-add\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n").write(
        "src/lib.rs",
        "pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\n#[test]\nfn adds() {\n    assert_eq!(add(2, 3), 5);\n}\n",
    );
    repo.commit("tiny-add");
    repo
}

/// Whether this plancd's configuration schema has `environment:`. Where it does not, the one
/// error a generated plancd.yaml may draw is that key's.
fn environment_known() -> bool {
    let text = std::fs::read_to_string(project_root().join("schemas/config.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    schema["properties"].get("environment").is_some()
}

/// Asserts that `run` (of `init`, or of `validate`) found the files valid.
#[track_caller]
fn expect_valid(run: &Run, invalid_code: i32) {
    if environment_known() {
        run.expect_code(0);
        return;
    }
    run.expect_code(invalid_code);
    let errors: Vec<&str> = run.stdout.lines().filter(|l| l.contains(": error[")).collect();
    assert!(!errors.is_empty(), "{}", run.all());
    for line in errors {
        assert!(
            line.contains("error[unknown-field]: environment: unknown field `environment`"),
            "an error besides `environment`: {line}\n{}",
            run.all()
        );
    }
}

fn read(repo: &Repo, path: &str) -> String {
    std::fs::read_to_string(repo.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn files_of(repo: &Repo) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(repo.path())
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(|e| e.unwrap().path().strip_prefix(repo.path()).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn init_writes_files_that_validate_for_python_node_and_rust() {
    let rows: [(&str, Repo, &str, &[&str]); 3] = [
        (
            "python",
            python_project(),
            "python3 -m pytest -q",
            &["python3 -m venv /env", "/env/bin/pip install -e '.[test]' pytest", "- pyproject.toml", "- pypi.org"],
        ),
        (
            "node",
            node_project(),
            "ln -sfn /env/node_modules node_modules && npm test",
            &["- npm ci", "mv node_modules /env/", "- package-lock.json", "- registry.npmjs.org"],
        ),
        ("rust", rust_project(), "CARGO_HOME=/env/cargo cargo test --offline", &["cargo vendor", "- Cargo.toml", "- index.crates.io"]),
    ];
    for (name, repo, test, environment) in rows {
        let run = repo.plancd(&["init"]);
        run.no_panic();
        expect_valid(&run, 1);
        assert!(run.stdout.contains(&format!("tested with `{test}`")), "{name}: {}", run.all());
        for path in ["plancd.yaml", "plans/first-plan.yaml", ".plancd/scripted.yaml"] {
            assert!(run.stdout.contains(&format!("wrote {path}")), "{name}: {path}\n{}", run.all());
        }
        let config = read(&repo, "plancd.yaml");
        assert!(config.contains("environment:\n  setup:\n"), "{name}: {config}");
        for part in environment {
            assert!(config.contains(part), "{name}: `{part}` missing from\n{config}");
        }
        assert!(config.contains("#   coder: { command: [\"python3\", \"agents/coder.py\"] }"), "{name}: the example command agent");
        let plan = read(&repo, "plans/first-plan.yaml");
        assert!(plan.contains(&format!("- cmd: {test}\n")), "{name}: {plan}");
        expect_valid(&repo.plancd(&["validate"]), 2);
    }
}

#[test]
fn dry_run_prints_the_files_and_writes_nothing() {
    let repo = python_project();
    let before = files_of(&repo);
    let run = repo.plancd(&["init", "--dry-run"]);
    expect_valid(&run, 1);
    assert_eq!(files_of(&repo), before, "nothing is written");
    for part in ["--- plancd.yaml (not written: --dry-run)", "--- plans/first-plan.yaml", "todo_list_id: first-plan", "write_file:"] {
        assert!(run.stdout.contains(part), "{part}\n{}", run.all());
    }
    assert!(!run.stdout.contains("wrote "), "{}", run.stdout);
}

#[test]
fn a_second_init_refuses_without_force() {
    let repo = node_project();
    expect_valid(&repo.plancd(&["init"]), 1);
    std::fs::write(repo.path().join("plancd.yaml"), "branch: main\n# mine\n").unwrap();
    let again = repo.plancd(&["init"]);
    again.expect_code(2);
    assert!(
        again.stderr.contains(
            "plancd.yaml, plans/first-plan.yaml, .plancd/scripted.yaml already exist: nothing was written (pass --force to replace)"
        ),
        "{}",
        again.all()
    );
    assert_eq!(read(&repo, "plancd.yaml"), "branch: main\n# mine\n", "a refused init leaves the files alone");
    let dry = repo.plancd(&["init", "--dry-run"]);
    dry.expect_code(2);
    let forced = repo.plancd(&["init", "--force"]);
    expect_valid(&forced, 1);
    assert!(forced.stdout.contains("replaced plancd.yaml"), "{}", forced.all());
    assert!(read(&repo, "plancd.yaml").contains("environment:"));
}

#[test]
fn a_repository_without_a_known_project_is_refused() {
    let repo = Repo::new();
    repo.write("README.md", "# notes\n").write("Makefile", "all:\n\techo hi\n");
    let run = repo.plancd(&["init"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no project found in"), "{}", run.all());
    assert!(run.stderr.contains("Python (pyproject.toml, setup.cfg, setup.py, requirements*.txt)"), "{}", run.all());
    assert!(!repo.path().join("plancd.yaml").exists());
}

#[test]
fn a_devcontainers_commands_are_taken_and_said() {
    let repo = python_project();
    repo.write(
        ".devcontainer/devcontainer.json",
        "// the team's container\n{\n  \"image\": \"mcr.microsoft.com/devcontainers/python:1-3.12-bookworm\",\n  \"features\": { \"ghcr.io/devcontainers/features/github-cli:1\": {} },\n  \"postCreateCommand\": \"python3 -m venv /env && /env/bin/pip install -e '.[test]'\",\n}\n",
    );
    let run = repo.plancd(&["init"]);
    expect_valid(&run, 1);
    for part in [
        "found .devcontainer/devcontainer.json:",
        "feature `ghcr.io/devcontainers/features/github-cli:1` not taken",
        "environment: from the setup commands of .devcontainer/devcontainer.json",
    ] {
        assert!(run.stdout.contains(part), "{part}\n{}", run.all());
    }
    let config = read(&repo, "plancd.yaml");
    assert!(config.contains("  setup:\n    - python3 -m venv /env && /env/bin/pip install -e '.[test]'\n  cache:\n"), "{config}");
    assert!(config.contains("  image: mcr.microsoft.com/devcontainers/python:1-3.12-bookworm"), "{config}");
    assert!(config.contains("    - .devcontainer/devcontainer.json\n"), "{config}");
}

/// The README's journey: init, commit, reconcile — the example task succeeds with the project's
/// own tests as its acceptance test, on the default (process) backend.
#[test]
fn the_first_plan_reconciles_to_succeeded() {
    let repo = Repo::new();
    repo.write("calc.py", "def add(a, b):\n    return a + b\n")
        .write(
            "test_calc.py",
            "import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n",
        )
        .write("requirements.txt", "# the standard library is enough\n");
    repo.commit("calc");
    let run = repo.plancd(&["init"]);
    expect_valid(&run, 1);
    assert!(run.stdout.contains("tested with `python3 -m unittest discover -v`"), "{}", run.all());
    if !environment_known() {
        // Without `environment:` in the schema, the same files less that section.
        let config = read(&repo, "plancd.yaml");
        let start = config.find("environment:\n").unwrap();
        let end = start + config[start..].find("\n\n").unwrap();
        std::fs::write(repo.path().join("plancd.yaml"), format!("{}{}", &config[..start], &config[end + 1..])).unwrap();
    }
    repo.commit("plancd: first plan");
    let reconcile = repo.plancd(&["reconcile"]);
    reconcile.expect_code(0);
    assert!(reconcile.all().contains("first-plan/testing_notes  coder  Succeeded"), "{}", reconcile.all());
    let notes = repo.git(&["show", "ai/generated/first-plan/testing_notes:TESTING.md"]);
    assert!(notes.contains("python3 -m unittest discover -v"), "{notes}");
}
