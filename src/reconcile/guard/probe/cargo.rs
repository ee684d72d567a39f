//! `cargo test` for the probe: the pinned integration tests (`tests/NAME.rs`,
//! `tests/NAME/main.rs`) and modules of the crate's roots that a command builds, of the package
//! at the workspace's root, and a `#[test] fn` that panics.

use super::Call;

/// Options of `cargo test` that take no value and choose no tests.
const FLAGS: &[&str] = &[
    "-q",
    "--quiet",
    "-v",
    "--verbose",
    "-vv",
    "--release",
    "--offline",
    "--locked",
    "--frozen",
    "--all-features",
    "--no-default-features",
    "--no-fail-fast",
    "--ignore-rust-version",
];

/// Options of `cargo test` with a value that choose no tests.
const WITH_VALUE: &[&str] = &["--features", "-F", "-j", "--jobs", "--color", "--target-dir", "--profile", "--message-format"];

/// Which targets a `cargo test` builds.
#[derive(Default)]
struct Targets {
    lib: bool,
    bins: bool,
    /// All integration tests.
    tests: bool,
    /// Integration tests by name.
    named: Vec<String>,
}

/// The pinned files `cargo test ARGS` builds into a test harness, in the package at the root.
pub(super) fn cargo_test(call: &Call<'_>) -> Result<Vec<String>, String> {
    let manifest = call.text("Cargo.toml").ok_or("there is no Cargo.toml at the workspace's root")?;
    if !manifest.contains("[package]") {
        return Err("the root Cargo.toml is a virtual workspace".into());
    }
    if let Some(key) =
        ["[[test]]", "autotests", "harness", "required-features", "test = false", "test=false"].iter().find(|k| manifest.contains(*k))
    {
        return Err(format!("Cargo.toml sets which tests build (`{key}`)"));
    }
    let targets = targets(call.args)?;
    let custom_roots = manifest.contains("[lib]") || manifest.contains("[[bin]]");
    let paths = call.paths();
    Ok(call
        .pinned
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| {
            if let Some(name) = integration_test(p) {
                return targets.tests || targets.named.iter().any(|n| n == name);
            }
            let lib = targets.lib && paths.contains("src/lib.rs");
            let bin = targets.bins && paths.contains("src/main.rs");
            match p.as_str() {
                _ if custom_roots => false,
                "src/lib.rs" => lib,
                "src/main.rs" => bin,
                _ => {
                    let declared = |root: &str| call.text(root).is_some_and(|t| declares_module(&t, p));
                    (lib && declared("src/lib.rs")) || (bin && declared("src/main.rs"))
                }
            }
        })
        .collect())
}

/// The targets `cargo test ARGS` builds, or why the probe cannot tell.
fn targets(args: &[&str]) -> Result<Targets, String> {
    let mut t = Targets::default();
    let mut selected = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        let key = a.split_once('=').map_or(*a, |(k, _)| k);
        match *a {
            "--" => return harness(&args[i..]).map(|()| t.or_default(selected)),
            "--lib" => (t.lib, selected) = (true, true),
            "--tests" | "--all-targets" => (t.lib, t.bins, t.tests, selected) = (true, true, true, true),
            "--test" => {
                t.named.push(args.get(i).ok_or("`--test` without a name")?.to_string());
                selected = true;
                i += 1;
            }
            _ if key == "--test" => {
                t.named.push(a[key.len() + 1..].to_owned());
                selected = true;
            }
            a if FLAGS.contains(&a) || (a.contains('=') && WITH_VALUE.contains(&key)) => {}
            a if WITH_VALUE.contains(&a) => i += 1,
            a if a.starts_with('-') => return Err(format!("`{a}` is an option the probe does not know (it may select tests)")),
            a => return Err(format!("`{a}` names single tests")),
        }
    }
    Ok(t.or_default(selected))
}

impl Targets {
    /// These targets, or cargo's default ones (library, binaries, integration tests) when the
    /// command chose none.
    fn or_default(self, selected: bool) -> Targets {
        if selected { self } else { Targets { lib: true, bins: true, tests: true, named: Vec::new() } }
    }
}

/// Refuses harness arguments that choose tests (filters, `--ignored`, `--exact`, `--skip`).
fn harness(args: &[&str]) -> Result<(), String> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        let key = a.split_once('=').map_or(*a, |(k, _)| k);
        match key {
            "--nocapture" | "--show-output" | "-q" | "--quiet" => {}
            "--test-threads" | "--color" | "--format" => i += usize::from(!a.contains('=')),
            _ if a.starts_with('-') => return Err(format!("`{a}` is a test harness option the probe does not know")),
            _ => return Err(format!("`{a}` names single tests")),
        }
    }
    Ok(())
}

/// The name of the integration test `path` is the root of: `tests/NAME.rs`, `tests/NAME/main.rs`.
fn integration_test(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("tests/")?;
    match rest.split('/').collect::<Vec<_>>()[..] {
        [file] => file.strip_suffix(".rs"),
        [dir, "main.rs"] => Some(dir),
        _ => None,
    }
}

/// Whether the crate root `root` declares the module at `path` (`src/NAME.rs` or
/// `src/NAME/mod.rs`) with a plain `mod NAME;`, itself under no `#[cfg]` but `#[cfg(test)]`.
fn declares_module(root: &str, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("src/") else { return false };
    let name = match rest.split('/').collect::<Vec<_>>()[..] {
        [file] => file.strip_suffix(".rs"),
        [dir, "mod.rs"] => Some(dir),
        _ => None,
    };
    let Some(name) = name else { return false };
    let mut previous = "";
    for line in root.lines() {
        let l = line.trim_end();
        let decl = ["", "pub ", "pub(crate) "].iter().any(|v| l == format!("{v}mod {name};"));
        if decl && (!previous.starts_with("#[") || previous == "#[cfg(test)]") {
            return true;
        }
        if !l.trim().is_empty() {
            previous = l;
        }
    }
    false
}

/// `text` with a test appended that panics, or why it may not be built or run.
pub(super) fn with_test(text: &str, tag: &str, marker: &str) -> Result<String, String> {
    if let Some(line) = text.lines().find(|l| l.trim_start().starts_with("#![cfg") && l.trim() != "#![cfg(test)]") {
        return Err(format!("`{}` may leave it out of the build", line.trim()));
    }
    if let Some(attr) = ["test_runner", "no_main", "no_core"].iter().find(|a| text.contains(*a)) {
        return Err(format!("it sets `{attr}`, which replaces the test harness"));
    }
    Ok(format!(
        "{text}\n\n// {marker}: plancd checks that this test fails.\n#[test]\nfn plancd_probe_{tag}() {{\n    panic!(\"{marker}: this test must fail\");\n}}\n"
    ))
}
