use super::*;
use crate::config::EnvironmentConfig;

fn declared(setup: &[&str], cache: &[&str]) -> EnvironmentConfig {
    EnvironmentConfig {
        setup: setup.iter().map(|s| (*s).to_owned()).collect(),
        cache: cache.iter().map(|s| (*s).to_owned()).collect(),
        image: None,
        network: None,
        timeout_seconds: None,
    }
}

#[test]
fn the_key_follows_backend_base_setup_and_cache_file_content_only() {
    let env = declared(&["python3 -m venv /env"], &["pyproject.toml", "requirements*.txt"]);
    let basis = Basis { backend: "process", base: "host".into(), declared: Some(&env) };
    let files: [(&str, &[u8]); 3] = [("pyproject.toml", b"[project]"), ("requirements-dev.txt", b"pytest"), ("src/a.py", b"x = 1")];
    let key = basis.key(&files);
    assert!(key.starts_with("env-") && key.len() == 24, "{key}");
    // Order of files and files that are not cache files do not matter.
    let other: [(&str, &[u8]); 3] = [("src/a.py", b"x = 2"), ("requirements-dev.txt", b"pytest"), ("pyproject.toml", b"[project]")];
    assert_eq!(basis.key(&other), key);
    let changed: [(&str, &[u8]); 2] = [("pyproject.toml", b"[project] "), ("requirements-dev.txt", b"pytest")];
    let setup2 = declared(&["python3 -m venv /env", "true"], &["pyproject.toml", "requirements*.txt"]);
    let rows: [(&str, String); 5] = [
        ("cache file content", basis.key(&changed)),
        ("a cache file gone", basis.key(&files[..1])),
        ("setup", Basis { declared: Some(&setup2), ..basis.clone() }.key(&files)),
        ("backend", Basis { backend: "docker", ..basis.clone() }.key(&files)),
        ("base", Basis { base: "root:/r".into(), ..basis.clone() }.key(&files)),
    ];
    for (what, k) in rows {
        assert_ne!(k, key, "{what} must change the key");
    }
    assert_ne!(Basis { declared: None, ..basis.clone() }.key(&files), key, "the bare sandbox has a key of its own");
}

#[test]
fn the_basis_names_the_image_or_root_and_the_roles_own_environment() {
    let mut config = Config { environment: Some(declared(&["a"], &[])), ..Config::default() };
    assert_eq!(Basis::of(&config, Role::Coder).base, "host");
    config.sandbox.root = Some("/r".into());
    assert_eq!(Basis::of(&config, Role::Coder).base, "root:/r");
    config.sandbox.backend = SandboxBackend::Docker;
    assert_eq!(Basis::of(&config, Role::Coder).base, "image:plancd-sandbox:python");
    assert_eq!(Basis::of(&config, Role::Coder).image(), None, "the sandbox's image");
    config.environment.as_mut().unwrap().image = Some("python:3.12-slim".into());
    assert_eq!(Basis::of(&config, Role::Coder).base, "image:python:3.12-slim");
    assert_eq!(Basis::of(&config, Role::Coder).image(), Some("python:3.12-slim"), "the sessions run in it");
    config.sandbox.backend = SandboxBackend::Process;
    assert_eq!(Basis::of(&config, Role::Coder).image(), None, "no image on the process backend");
    config.sandbox.backend = SandboxBackend::Docker;
    let role = crate::config::RoleConfig { environment: Some(declared(&["b"], &[])), ..Default::default() };
    config.roles.insert(Role::Tester, role);
    assert_eq!(Basis::of(&config, Role::Tester).declared.unwrap().setup, ["b"]);
    assert_eq!(Basis::of(&config, Role::Coder).declared.unwrap().setup, ["a"]);
}

#[test]
fn runners_are_probed_and_repository_programs_are_not() {
    let rows: [(&str, Option<&str>); 11] = [
        ("pytest -q tests/test_a.py", Some("command -v pytest >/dev/null")),
        ("PYTHONPATH=src pytest", Some("command -v pytest >/dev/null")),
        ("npm test", Some("command -v npm >/dev/null")),
        ("cargo test", Some("command -v cargo >/dev/null")),
        ("python3 -m pytest -q", Some("python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(\"pytest\") is None)'")),
        ("python3 tests/run.py", Some("command -v python3 >/dev/null")),
        ("python3 -m unittest", None),
        ("python -m mypackage.cli", None),
        ("./run_tests.sh", None),
        ("sh -c 'pytest'", None),
        ("", None),
    ];
    for (cmd, expected) in rows {
        assert_eq!(runner_probe(cmd).map(|p| p.script), expected.map(str::to_owned), "{cmd}");
    }
    assert!(runner_probe("npm test").unwrap().advice.contains("Node.js"));
    assert!(runner_probe("pytest").unwrap().advice.contains("/env/bin/pip install pytest"));
}

#[test]
fn test_output_that_blames_the_environment_is_told_apart() {
    let repo: Vec<String> = ["src/calc/__init__.py", "tests/test_calc.py", "helpers.py"].map(String::from).to_vec();
    let rows: [(&str, bool, Option<&str>); 14] = [
        ("/bin/sh: 1: pytest: not found", false, Some("pytest")),
        ("bash: npm: command not found", false, Some("npm")),
        ("/usr/bin/python3: No module named pytest", false, Some("pytest")),
        ("ModuleNotFoundError: No module named 'requests'", true, Some("requests")),
        ("ModuleNotFoundError: No module named 'requests'", false, None),
        ("ModuleNotFoundError: No module named 'calc.extra'", true, None),
        ("ModuleNotFoundError: No module named 'helpers'", true, None),
        ("importlib.metadata.PackageNotFoundError: No package metadata was found for click", false, Some("click")),
        ("sh: 1: ./run.sh: not found", false, None),
        ("AssertionError: 3 != 4", true, None),
        ("E   assert add(1, 2) == 4", true, None),
        // A newer pytest than the tests were written for refuses to collect them.
        ("E   pytest.PytestRemovedIn10Warning: Passing a non-Collection iterable to parametrize is deprecated.", true, Some("pytest")),
        ("E   pytest.PytestRemovedIn9Warning: Marks applied to fixtures have no effect", false, Some("pytest")),
        ("E   DeprecationWarning: datetime.utcnow() is deprecated", true, None),
    ];
    for (output, declared, expected) in rows {
        let lack = lack_in(&format!("collecting ...\n{output}\n"), &repo, declared);
        assert_eq!(lack.as_ref().map(|l| l.missing.as_str()), expected, "{output} (declared: {declared})");
        if let Some(l) = lack {
            assert_eq!((l.reason, l.evidence.as_str()), (Reason::EnvironmentIncomplete, output));
        }
    }
}
