//! What kind of project a repository holds, how its tests run, and the environment that
//! installs it, from the files at its root. Pure: the caller lists and reads the files.

use super::conventions::DetectedEnvironment;

/// The languages `plancd init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// pyproject.toml, setup.cfg, setup.py or requirements*.txt.
    Python,
    /// package.json.
    Node,
    /// Cargo.toml.
    Rust,
    /// go.mod.
    Go,
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Python => "Python",
            Language::Node => "Node",
            Language::Rust => "Rust",
            Language::Go => "Go",
        })
    }
}

/// A detected project: its language, its own test command, the environment that installs it,
/// and why plancd concluded each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The language.
    pub language: Language,
    /// The command that runs the project's tests, in the workspace, with `/env/bin` on PATH.
    pub test_command: String,
    /// The environment that installs the project and its test dependencies into `/env`.
    pub environment: DetectedEnvironment,
    /// One line per conclusion: what was found and what it led to.
    pub reasons: Vec<String>,
}

/// What a project's root looks like: its entries (folders end in `/`) and a reader.
pub struct Root<'a> {
    entries: &'a [String],
    read: &'a dyn Fn(&str) -> Option<Vec<u8>>,
}

impl<'a> Root<'a> {
    /// A root with `entries` (file names, folder names ending in `/`) read by `read`.
    pub fn new(entries: &'a [String], read: &'a dyn Fn(&str) -> Option<Vec<u8>>) -> Root<'a> {
        Root { entries, read }
    }

    fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e == name)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.has(name).then(|| (self.read)(name)).flatten().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn requirements(&self) -> Vec<&'a str> {
        let mut found: Vec<&str> = self
            .entries
            .iter()
            .map(String::as_str)
            .filter(|e| !e.contains('/') && (e.starts_with("requirements") || e.ends_with("requirements.txt")) && e.ends_with(".txt"))
            .collect();
        found.sort_by_key(|f| (*f != "requirements.txt", *f));
        found
    }

    /// The test requirements file in the `requirements/` folder, if any.
    fn test_requirements(&self) -> Option<&'static str> {
        ["requirements/tests.txt", "requirements/test.txt", "requirements/testing.txt"].into_iter().find(|f| (self.read)(f).is_some())
    }
}

/// Detects the project at `root`, or `None` when it holds no project plancd knows. When several
/// kinds are present, the first of Rust, Go, an installable Python package, a Node package with a
/// test script, Python requirements, and any Node package wins; the others are named.
pub fn detect(root: &Root<'_>) -> Option<Project> {
    let package_json = root.text("package.json").and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let node_test = package_json.as_ref().and_then(node_test_script);
    let python_package = ["pyproject.toml", "setup.py", "setup.cfg"].into_iter().find(|f| root.has(f));
    let candidates: [(bool, Language); 6] = [
        (root.has("Cargo.toml"), Language::Rust),
        (root.has("go.mod"), Language::Go),
        (python_package.is_some(), Language::Python),
        (node_test.is_some(), Language::Node),
        (!root.requirements().is_empty(), Language::Python),
        (root.has("package.json"), Language::Node),
    ];
    let mut found = candidates.iter().filter(|(present, _)| *present).map(|(_, l)| *l);
    let language = found.next()?;
    let mut project = match language {
        Language::Python => python(root),
        Language::Node => node(root, package_json.as_ref(), node_test),
        Language::Rust => rust(root),
        Language::Go => go(root),
    };
    let mut others: Vec<String> = found.filter(|l| *l != language).map(|l| l.to_string()).collect();
    others.dedup();
    if !others.is_empty() {
        project.reasons.push(format!("also found {} files: {language} was chosen", others.join(" and ")));
    }
    Some(project)
}

/// The lines of a TOML file's `[section]`, without comments.
fn toml_section<'t>(text: &'t str, section: &str) -> Vec<&'t str> {
    let header = format!("[{section}]");
    let mut lines = text.lines().map(|l| l.split(" #").next().unwrap_or(l).trim());
    let mut out = Vec::new();
    if lines.by_ref().any(|l| l == header) {
        out.extend(lines.take_while(|l| !l.starts_with('[')));
    }
    out
}

fn has_section(text: &str, section: &str) -> bool {
    text.lines().any(|l| l.trim() == format!("[{section}]"))
}

/// The extra of `[project.optional-dependencies]` that holds test dependencies, if any.
fn test_extra(pyproject: &str) -> Option<String> {
    let keys: Vec<&str> =
        toml_section(pyproject, "project.optional-dependencies").iter().filter_map(|l| l.split_once('=')).map(|(k, _)| k.trim()).collect();
    ["test", "tests", "testing", "dev"].iter().find(|k| keys.contains(k)).map(|k| (*k).to_owned())
}

fn python(root: &Root<'_>) -> Project {
    let pyproject = root.text("pyproject.toml").unwrap_or_default();
    let setup_cfg = root.text("setup.cfg").unwrap_or_default();
    let requirements = root.requirements();
    let mut reasons = Vec::new();
    let installable = root.has("setup.py")
        || ["project", "build-system", "tool.poetry"].iter().any(|s| has_section(&pyproject, s))
        || ["metadata", "options"].iter().any(|s| has_section(&setup_cfg, s));
    let mut install: Vec<String> = Vec::new();
    if installable {
        let marker = if root.has("pyproject.toml") {
            "pyproject.toml"
        } else if root.has("setup.py") {
            "setup.py"
        } else {
            "setup.cfg"
        };
        match test_extra(&pyproject) {
            Some(extra) => {
                reasons.push(format!("{marker}: an installable package, with test dependencies in the extra `{extra}`"));
                install.push(format!("-e '.[{extra}]'"));
            }
            None => {
                reasons.push(format!("{marker}: an installable package"));
                install.push("-e .".to_owned());
            }
        }
    }
    for r in &requirements {
        install.push(format!("-r {r}"));
    }
    if !requirements.is_empty() {
        reasons.push(format!("requirements: {}", requirements.join(", ")));
    }
    // Pinned test requirements in a folder: the versions the project's tests were written for
    // (a newer pytest may turn their warnings into errors).
    let test_requirements = root.has("requirements/").then(|| root.test_requirements()).flatten();
    if let Some(file) = test_requirements {
        install.push(format!("-r {file}"));
        reasons.push(format!("{file}: the project's own test requirements"));
    }
    let pytest_config = [
        has_section(&pyproject, "tool.pytest.ini_options").then_some("pyproject.toml [tool.pytest.ini_options]"),
        root.has("pytest.ini").then_some("pytest.ini"),
        has_section(&setup_cfg, "tool:pytest").then_some("setup.cfg [tool:pytest]"),
        root.text("tox.ini").is_some_and(|t| has_section(&t, "pytest")).then_some("tox.ini [pytest]"),
        root.has("conftest.py").then_some("conftest.py"),
    ]
    .into_iter()
    .flatten()
    .next();
    let tests_dir = ["tests/", "test/"].into_iter().find(|d| root.has(d));
    let test_command = match (pytest_config, tests_dir) {
        (Some(config), _) => {
            reasons.push(format!("tests: pytest, configured in {config}"));
            Some("python3 -m pytest -q")
        }
        (None, Some(dir)) => {
            reasons.push(format!("tests: pytest, for the folder {dir}"));
            Some("python3 -m pytest -q")
        }
        (None, None) => {
            reasons.push("tests: unittest discovery (no pytest configuration, no tests/ folder)".to_owned());
            None
        }
    };
    if test_command.is_some() {
        install.push("pytest".to_owned());
    }
    // What plancd measures the acceptance tests' coverage with (the quality figures).
    install.push("coverage".to_owned());
    let mut setup = vec!["python3 -m venv /env".to_owned()];
    if !install.is_empty() {
        setup.push(format!("/env/bin/pip install {}", install.join(" ")));
    }
    let mut cache: Vec<String> =
        ["pyproject.toml", "setup.cfg", "setup.py"].iter().filter(|f| root.has(f)).map(|f| (*f).to_owned()).collect();
    if !requirements.is_empty() {
        cache.push("requirements*.txt".to_owned());
    }
    cache.extend(test_requirements.map(str::to_owned));
    Project {
        language: Language::Python,
        test_command: test_command.unwrap_or("python3 -m unittest discover -v").to_owned(),
        environment: environment(setup, cache, &["pypi.org", "files.pythonhosted.org"]),
        reasons,
    }
}

/// The `test` script of a package.json, unless it is npm's placeholder.
fn node_test_script(package: &serde_json::Value) -> Option<String> {
    let script = package.get("scripts")?.get("test")?.as_str()?;
    (!script.contains("no test specified") && !script.trim().is_empty()).then(|| script.to_owned())
}

/// Node installs into the workspace's node_modules, which does not persist: the setup moves it
/// into /env (created empty for a package without dependencies; its `.bin` becomes /env/bin)
/// and each test links it back. Installing in the
/// workspace keeps lifecycle scripts and relative `file:` dependencies working as in the project.
fn node(root: &Root<'_>, package: Option<&serde_json::Value>, test: Option<String>) -> Project {
    let mut reasons = Vec::new();
    match (&test, package) {
        (Some(script), _) => reasons.push(format!("package.json: test script `{script}`")),
        (None, Some(_)) => reasons.push("package.json has no test script: tests run with `node --test`".to_owned()),
        (None, None) => reasons.push("package.json cannot be read as JSON: tests run with `node --test`".to_owned()),
    }
    let lock = ["package-lock.json", "npm-shrinkwrap.json"].into_iter().find(|f| root.has(f));
    let install = match lock {
        Some(lock) => {
            reasons.push(format!("{lock}: installed with `npm ci`"));
            "npm ci"
        }
        None => {
            reasons.push("no package-lock.json: installed with `npm install`".to_owned());
            "npm install"
        }
    };
    for other in ["yarn.lock", "pnpm-lock.yaml", "bun.lockb"].into_iter().filter(|f| root.has(f)) {
        reasons.push(format!("{other} found, but the setup uses npm: change environment.setup to use its tool"));
    }
    let setup = vec![
        install.to_owned(),
        "mkdir -p node_modules && rm -rf /env/node_modules && mv node_modules /env/ && ln -sfn node_modules/.bin /env/bin".to_owned(),
    ];
    let mut cache = vec!["package.json".to_owned()];
    cache.extend(lock.map(str::to_owned));
    let run = if test.is_some() { "npm test" } else { "node --test" };
    Project {
        language: Language::Node,
        test_command: format!("ln -sfn /env/node_modules node_modules && {run}"),
        environment: environment(setup, cache, &["registry.npmjs.org"]),
        reasons,
    }
}

/// Rust's dependencies are vendored into /env, so that tests build offline from a read-only /env.
fn rust(root: &Root<'_>) -> Project {
    let mut cache = vec!["Cargo.toml".to_owned()];
    let mut reasons = vec!["Cargo.toml: tests run with `cargo test`".to_owned()];
    if root.has("Cargo.lock") {
        cache.push("Cargo.lock".to_owned());
    } else {
        reasons.push("no Cargo.lock: the environment is keyed by Cargo.toml alone".to_owned());
    }
    let setup = vec!["mkdir -p /env/cargo && cargo vendor --quiet /env/vendor > /env/cargo/config.toml".to_owned()];
    Project {
        language: Language::Rust,
        test_command: "CARGO_HOME=/env/cargo cargo test --offline".to_owned(),
        environment: environment(setup, cache, &["index.crates.io", "static.crates.io"]),
        reasons,
    }
}

fn go(root: &Root<'_>) -> Project {
    let mut cache = vec!["go.mod".to_owned()];
    cache.extend(root.has("go.sum").then(|| "go.sum".to_owned()));
    Project {
        language: Language::Go,
        test_command: "GOMODCACHE=/env/go/mod GOPROXY=off go test ./...".to_owned(),
        environment: environment(
            vec!["GOMODCACHE=/env/go/mod go mod download".to_owned()],
            cache,
            &["proxy.golang.org", "sum.golang.org", "storage.googleapis.com"],
        ),
        reasons: vec!["go.mod: tests run with `go test ./...`".to_owned()],
    }
}

fn environment(setup: Vec<String>, cache: Vec<String>, network: &[&str]) -> DetectedEnvironment {
    DetectedEnvironment {
        setup,
        cache,
        image: None,
        network: network.iter().map(|h| (*h).to_owned()).collect(),
        source: "detected".to_owned(),
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_in(files: &[(&str, &str)]) -> Option<Project> {
        let entries: Vec<String> = files.iter().map(|(p, _)| (*p).to_owned()).collect();
        let contents: Vec<(String, Vec<u8>)> = files.iter().map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec())).collect();
        let read = move |path: &str| contents.iter().find(|(p, _)| p == path).map(|(_, c)| c.clone());
        detect(&Root::new(&entries, &read))
    }

    const PYPROJECT: &str = r#"[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "widgets"
version = "0.1.0"
dependencies = ["click>=8"]

[project.optional-dependencies]
docs = ["mkdocs"]
test = ["pytest>=8", "coverage"]  # the test suite

[tool.pytest.ini_options]
testpaths = ["tests"]
"#;

    /// Each row: files at the root, then the expected language, test command and setup.
    #[test]
    fn projects_are_detected_with_their_test_command_and_setup() {
        type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, Language, &'a str, Vec<&'a str>);
        let rows: Vec<Row<'_>> = vec![
            (
                "pyproject with a test extra and pytest configured",
                vec![("pyproject.toml", PYPROJECT), ("tests/", "")],
                Language::Python,
                "python3 -m pytest -q",
                vec!["python3 -m venv /env", "/env/bin/pip install -e '.[test]' pytest coverage"],
            ),
            (
                "setup.py and a tests folder",
                vec![("setup.py", "from setuptools import setup\nsetup()\n"), ("tests/", "")],
                Language::Python,
                "python3 -m pytest -q",
                vec!["python3 -m venv /env", "/env/bin/pip install -e . pytest coverage"],
            ),
            (
                "requirements only, unittest files at the root",
                vec![("requirements.txt", "requests\n"), ("requirements-dev.txt", "black\n"), ("test_app.py", "")],
                Language::Python,
                "python3 -m unittest discover -v",
                vec!["python3 -m venv /env", "/env/bin/pip install -r requirements.txt -r requirements-dev.txt coverage"],
            ),
            (
                "setup.py with pinned test requirements in requirements/ (pallets projects, say)",
                vec![
                    ("setup.py", "from setuptools import setup\nsetup()\n"),
                    ("setup.cfg", "[tool:pytest]\nfilterwarnings = error\n"),
                    ("requirements/", ""),
                    ("requirements/tests.txt", "pytest==7.4.0\n"),
                    ("requirements/docs.txt", "sphinx\n"),
                ],
                Language::Python,
                "python3 -m pytest -q",
                vec!["python3 -m venv /env", "/env/bin/pip install -e . -r requirements/tests.txt pytest coverage"],
            ),
            (
                "setup.cfg with pytest configured",
                vec![("setup.cfg", "[metadata]\nname = w\n\n[tool:pytest]\naddopts = -q\n")],
                Language::Python,
                "python3 -m pytest -q",
                vec!["python3 -m venv /env", "/env/bin/pip install -e . pytest coverage"],
            ),
            (
                "pyproject that only configures tools",
                vec![("pyproject.toml", "[tool.black]\nline-length = 100\n"), ("conftest.py", "")],
                Language::Python,
                "python3 -m pytest -q",
                vec!["python3 -m venv /env", "/env/bin/pip install pytest coverage"],
            ),
            (
                "node with a lockfile",
                vec![("package.json", r#"{"name":"w","scripts":{"test":"jest"}}"#), ("package-lock.json", "{}")],
                Language::Node,
                "ln -sfn /env/node_modules node_modules && npm test",
                vec![
                    "npm ci",
                    "mkdir -p node_modules && rm -rf /env/node_modules && mv node_modules /env/ && ln -sfn node_modules/.bin /env/bin",
                ],
            ),
            (
                "node without a lockfile, npm's placeholder test script",
                vec![("package.json", r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#)],
                Language::Node,
                "ln -sfn /env/node_modules node_modules && node --test",
                vec![
                    "npm install",
                    "mkdir -p node_modules && rm -rf /env/node_modules && mv node_modules /env/ && ln -sfn node_modules/.bin /env/bin",
                ],
            ),
            (
                "a Rust crate",
                vec![("Cargo.toml", "[package]\nname = \"w\"\n"), ("Cargo.lock", ""), ("src/", "")],
                Language::Rust,
                "CARGO_HOME=/env/cargo cargo test --offline",
                vec!["mkdir -p /env/cargo && cargo vendor --quiet /env/vendor > /env/cargo/config.toml"],
            ),
            (
                "a Go module",
                vec![("go.mod", "module example.com/w\n"), ("go.sum", "")],
                Language::Go,
                "GOMODCACHE=/env/go/mod GOPROXY=off go test ./...",
                vec!["GOMODCACHE=/env/go/mod go mod download"],
            ),
            (
                "a Python package with a Node test script for its docs",
                vec![("pyproject.toml", PYPROJECT), ("package.json", r#"{"scripts":{"test":"jest"}}"#)],
                Language::Python,
                "python3 -m pytest -q",
                vec!["python3 -m venv /env", "/env/bin/pip install -e '.[test]' pytest coverage"],
            ),
        ];
        for (name, files, language, test, setup) in rows {
            let project = detect_in(&files).unwrap_or_else(|| panic!("{name}: nothing detected"));
            assert_eq!(project.language, language, "{name}");
            assert_eq!(project.test_command, test, "{name}");
            assert_eq!(project.environment.setup, setup, "{name}");
        }
    }

    #[test]
    fn nothing_known_is_none() {
        assert_eq!(detect_in(&[("README.md", "hi"), ("Makefile", "all:\n")]), None);
        assert_eq!(detect_in(&[]), None);
    }

    #[test]
    fn reasons_say_what_was_found() {
        let project = detect_in(&[("pyproject.toml", PYPROJECT), ("package.json", r#"{"scripts":{"test":"jest"}}"#)]).unwrap();
        assert_eq!(
            project.reasons,
            [
                "pyproject.toml: an installable package, with test dependencies in the extra `test`",
                "tests: pytest, configured in pyproject.toml [tool.pytest.ini_options]",
                "also found Node files: Python was chosen",
            ]
        );
        let yarn = detect_in(&[("package.json", r#"{"scripts":{"test":"vitest run"}}"#), ("yarn.lock", "")]).unwrap();
        assert!(yarn.reasons.iter().any(|r| r.starts_with("yarn.lock found, but the setup uses npm")), "{:?}", yarn.reasons);
    }

    #[test]
    fn the_cache_keys_are_the_files_that_pin_dependencies() {
        type Row<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, Vec<&'a str>);
        let rows: [Row<'_>; 4] = [
            (
                vec![("pyproject.toml", PYPROJECT), ("requirements-test.txt", "")],
                vec!["pyproject.toml", "requirements*.txt"],
                vec!["pypi.org", "files.pythonhosted.org"],
            ),
            (
                vec![("package.json", "{}"), ("package-lock.json", "{}")],
                vec!["package.json", "package-lock.json"],
                vec!["registry.npmjs.org"],
            ),
            (vec![("Cargo.toml", "")], vec!["Cargo.toml"], vec!["index.crates.io", "static.crates.io"]),
            (
                vec![("go.mod", ""), ("go.sum", "")],
                vec!["go.mod", "go.sum"],
                vec!["proxy.golang.org", "sum.golang.org", "storage.googleapis.com"],
            ),
        ];
        for (files, cache, network) in rows {
            let env = detect_in(&files).unwrap().environment;
            assert_eq!(
                (env.cache, env.network),
                (cache.iter().map(|s| s.to_string()).collect(), network.iter().map(|s| s.to_string()).collect())
            );
        }
    }

    #[test]
    fn a_test_extra_is_read_from_its_section_only() {
        assert_eq!(test_extra(PYPROJECT).as_deref(), Some("test"));
        assert_eq!(test_extra("[project]\ntest = 1\n[project.optional-dependencies]\ndocs = []\n"), None);
        assert_eq!(test_extra("[project.optional-dependencies]\ndev = [\n  \"pytest\",\n]\n[tool.x]\ntest = 1\n").as_deref(), Some("dev"));
    }
}
