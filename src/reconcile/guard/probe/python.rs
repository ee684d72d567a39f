//! Python's runners for the probe: `python -m unittest` (files, modules, `discover`), `pytest`,
//! and a pinned script the interpreter runs itself; the failing tests in their syntax.

use std::collections::BTreeSet;

use plancd_sandbox::FileEntry;

use crate::reconcile::input::Input;

use super::{Call, Interpreted};
use crate::spec::normalize_relative;

/// `python [options] ...`: a module run with `-m`, a file, or something else.
pub(super) fn interpreted<'a>(args: &[&'a str]) -> Interpreted<'a> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match *a {
            "-m" => return args.get(i + 1).map_or(Interpreted::Other, |m| Interpreted::Module(m, args[i + 2..].to_vec())),
            "-X" | "-W" => i += 2,
            "-B" | "-E" | "-s" | "-u" | "-b" | "-bb" | "-O" | "-OO" | "-q" | "-I" | "-P" => i += 1,
            a if a.starts_with('-') => return Interpreted::Other,
            _ => return Interpreted::File(args[i..].to_vec()),
        }
    }
    Interpreted::Other
}

/// The pinned files `python -m unittest ARGS` runs.
pub(super) fn unittest(call: &Call<'_>) -> Result<Vec<String>, String> {
    const FLAGS: &[&str] = &["-v", "--verbose", "-q", "--quiet", "-b", "--buffer", "-c", "--catch", "-f", "--failfast", "--locals"];
    let args = call.args;
    let paths = call.paths();
    if args.first() == Some(&"discover") {
        return discover(&args[1..], call.pinned, &paths);
    }
    let mut chosen = Vec::new();
    let mut named = false;
    for a in args {
        match *a {
            a if FLAGS.contains(&a) => {}
            "-k" => return Err("`-k` selects single tests".into()),
            a if a.starts_with('-') => return Err(format!("`{a}` is an option the probe does not know")),
            a => {
                named = true;
                let path = if a.ends_with(".py") { normalize_relative(a) } else { format!("{}.py", a.replace('.', "/")) };
                if !paths.contains(path.as_str()) {
                    return Err(format!("`{a}` names single tests or something the probe cannot find"));
                }
                chosen.push(path);
            }
        }
    }
    if named { Ok(chosen) } else { discover(&[], call.pinned, &paths) }
}

/// The pinned files `python -m unittest discover ARGS` finds: under the start folder, named
/// like the pattern, in packages all the way down.
fn discover(args: &[&str], pinned: &[FileEntry], paths: &BTreeSet<&str>) -> Result<Vec<String>, String> {
    let (mut start, mut pattern) = (".".to_owned(), "test*.py".to_owned());
    let mut positional = 0;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let value = || args.get(i + 1).map(|v| (*v).to_owned()).ok_or_else(|| format!("`{a}` without a value"));
        match *a {
            "-s" | "--start-directory" => start = value()?,
            "-p" | "--pattern" => pattern = value()?,
            "-t" | "--top-level-directory" => {
                value()?;
            }
            "-v" | "--verbose" | "-q" | "--quiet" | "-b" | "--buffer" | "-c" | "--catch" | "-f" | "--failfast" | "--locals" => {
                i += 1;
                continue;
            }
            a if a.starts_with('-') => return Err(format!("`{a}` is an option the probe does not know")),
            a => {
                match positional {
                    0 => start = a.to_owned(),
                    1 => pattern = a.to_owned(),
                    _ => {}
                }
                positional += 1;
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    let start = normalize_relative(&start);
    let glob = globset::Glob::new(&pattern).map_err(|e| format!("pattern `{pattern}`: {e}"))?.compile_matcher();
    Ok(pinned
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| {
            let Some(rel) = (if start.is_empty() { Some(p.as_str()) } else { p.strip_prefix(&start).and_then(|r| r.strip_prefix('/')) })
            else {
                return false;
            };
            let (dirs, file) = rel.rsplit_once('/').map_or(("", rel), |(d, f)| (d, f));
            let mut package = start.clone();
            let in_packages = dirs.split('/').filter(|d| !d.is_empty()).all(|d| {
                package = if package.is_empty() { d.to_owned() } else { format!("{package}/{d}") };
                paths.contains(format!("{package}/__init__.py").as_str())
            });
            in_packages && glob.is_match(file)
        })
        .collect())
}

/// The pinned files `pytest ARGS` runs.
pub(super) fn pytest(call: &Call<'_>) -> Result<Vec<String>, String> {
    const FLAGS: &[&str] = &[
        "-q",
        "--quiet",
        "-v",
        "-vv",
        "-vvv",
        "--verbose",
        "-x",
        "--exitfirst",
        "-s",
        "-l",
        "--showlocals",
        "--no-header",
        "--no-summary",
        "--strict-markers",
        "--strict-config",
        "-ra",
        "-rA",
        "-rf",
        "-rs",
        "-rx",
        "-rN",
    ];
    const WITH_VALUE: &[&str] = &[
        "-p",
        "-W",
        "-n",
        "--maxfail",
        "--durations",
        "--junitxml",
        "--junit-xml",
        "--rootdir",
        "--tb",
        "--color",
        "--import-mode",
        "--basetemp",
    ];
    let config = pytest_config(call.input);
    if config.contains("addopts") {
        return Err("the pytest configuration has addopts, which may select tests".into());
    }
    let args = call.args;
    let mut targets: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        let key = a.split_once('=').map_or(*a, |(k, _)| k);
        match *a {
            a if FLAGS.contains(&a) || (a.starts_with("--") && a.contains('=') && WITH_VALUE.contains(&key)) => {}
            a if WITH_VALUE.contains(&a) => i += 1,
            a if a.starts_with('-') => return Err(format!("`{a}` is an option the probe does not know (it may select tests)")),
            a if a.contains("::") => return Err(format!("`{a}` names single tests")),
            a => targets.push(normalize_relative(a)),
        }
    }
    if targets.is_empty() {
        if ["testpaths", "python_files", "norecursedirs"].iter().any(|k| config.contains(k)) {
            return Err("the pytest configuration chooses the test files".into());
        }
        targets.push(String::new());
    }
    let test_named = |p: &str| {
        let file = p.rsplit('/').next().unwrap_or(p);
        (file.starts_with("test_") || file.ends_with("_test.py")) && file.ends_with(".py")
    };
    Ok(call
        .pinned
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| {
            targets
                .iter()
                .any(|t| p == t || (test_named(p) && (t.is_empty() || p.strip_prefix(t.as_str()).is_some_and(|r| r.starts_with('/')))))
        })
        .collect())
}

/// The text of the workspace's root pytest configuration files, together.
fn pytest_config(input: &Input) -> String {
    const FILES: &[&str] = &["pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"];
    FILES.iter().filter_map(|path| input.text(path)).collect()
}

/// `python FILE`: the file itself, run from top to bottom.
pub(super) fn script(call: &Call<'_>) -> Result<Vec<String>, String> {
    let file = call.args.first().map(|f| normalize_relative(f)).ok_or("no file to run")?;
    Ok(vec![file])
}

/// A `unittest` test case that fails; unittest and pytest collect it alike.
pub(super) fn unittest_case(tag: &str, marker: &str) -> String {
    format!(
        "\n\n# {marker}: plancd checks that this test fails.\nimport unittest as _plancd_unittest_{tag}\n\n\n\
         class TestPlancdProbe_{tag}(_plancd_unittest_{tag}.TestCase):\n    def test_probe_{tag}(self):\n        \
         raise AssertionError(\"{marker}: this test must fail\")\n"
    )
}

/// A script the interpreter runs with a failure it certainly reaches: a test case just before a
/// closing `if __name__ == "__main__": unittest.main()`, or else a failing statement right after
/// its imports (code under test that ends the process when imported is what it catches; the
/// script's own ending, which may call code that exits, comes after it).
pub(super) fn script_test(text: &str, tag: &str, marker: &str) -> Result<String, String> {
    const EXITS: &[&str] = &["sys.exit", "os._exit", "SystemExit", "exit(", "quit(", "pytest.main", "os.kill", "os.abort"];
    if text.contains("unittest.main(") {
        let guard = text.match_indices("\nif __name__").last().map(|(i, _)| i + 1);
        let guard = guard.ok_or("it calls `unittest.main` outside a closing `if __name__` block")?;
        let (head, tail) = text.split_at(guard);
        if head.contains("unittest.main(") || EXITS.iter().any(|e| head.contains(e)) {
            return Err("it may exit before its `unittest.main`".into());
        }
        if ["defaultTest", "argv", "module="].iter().any(|a| tail.contains(a)) {
            return Err("its `unittest.main` chooses the tests".into());
        }
        return Ok(format!("{head}{}\n\n{tail}", unittest_case(tag, marker)));
    }
    let failure =
        format!("\n# {marker}: plancd checks that this script fails.\nraise AssertionError(\"{marker}: this test must fail\")\n\n");
    Ok(super::after_imports(text, is_import, &failure))
}

/// A whole import statement at the top level.
fn is_import(line: &str) -> bool {
    (line.starts_with("import ") || line.starts_with("from ")) && !line.ends_with(['(', ',', '\\'])
}
