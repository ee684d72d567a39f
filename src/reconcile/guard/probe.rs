//! The probe: an acceptance command run once more, after it passed, with a test that cannot
//! pass appended to the pinned test files it runs. A command that still exits 0 does not judge
//! the code: a shadowed runner, a hook that rewrites outcomes, or code under test that forces
//! the exit status. Planned here for python's unittest and pytest; any command the planner
//! cannot be sure runs those files is skipped with a note, never failed.

use std::collections::BTreeSet;

use plancd_sandbox::FileEntry;

use crate::spec::normalize_relative;

/// A probe to run: the command, and the pinned files with the failing test added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The acceptance command, unchanged.
    pub cmd: String,
    /// The pinned test files it runs, each with a failing test appended.
    pub files: Vec<FileEntry>,
    /// Text the failing test's message holds.
    pub marker: String,
}

/// What to do with one acceptance command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbePlan {
    /// Run it against the probe; it must fail.
    Run(Probe),
    /// No probe for it, and why.
    Skip(String),
}

/// The environment tests and probes run with: a `$HOME` the agent never saw (it may have left
/// `~/.npmrc`, `~/.config/go/env`, `~/.cargo/config.toml` or a user site-package in the
/// session's), no user site-packages, and bytecode caches kept outside the workspace (a forged
/// `__pycache__` entry would replace a pinned test).
pub fn probe_env(tag: &str) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), format!("/tmp/.plancd-home-{tag}")),
        ("PYTHONNOUSERSITE".into(), "1".into()),
        ("PYTHONPYCACHEPREFIX".into(), format!("/tmp/.plancd-pycache-{tag}")),
    ]
}

/// Plans the probe of `cmd`, given the pinned files (as committed) and the input's files.
/// `tag` makes the failing test's name unpredictable.
pub fn plan_probe(cmd: &str, pinned: &[FileEntry], input: &[FileEntry], tag: &str) -> ProbePlan {
    match targets(cmd, pinned, input) {
        Ok(targets) => {
            let marker = format!("plancd-probe-{tag}");
            let files = targets.into_iter().map(|f| with_failing_test(f, tag, &marker)).collect();
            ProbePlan::Run(Probe { cmd: cmd.to_owned(), files, marker })
        }
        Err(why) => ProbePlan::Skip(why),
    }
}

/// `file` with a test appended that fails under unittest and pytest alike.
fn with_failing_test(file: &FileEntry, tag: &str, marker: &str) -> FileEntry {
    let mut data = file.data.clone();
    data.extend_from_slice(
        format!(
            "\n\n# {marker}: plancd checks that this test fails.\nimport unittest as _plancd_unittest_{tag}\n\n\n\
             class TestPlancdProbe_{tag}(_plancd_unittest_{tag}.TestCase):\n    def test_probe_{tag}(self):\n        \
             raise AssertionError(\"{marker}: this test must fail\")\n"
        )
        .as_bytes(),
    );
    FileEntry { path: file.path.clone(), executable: file.executable, data }
}

/// The pinned files `cmd` certainly runs, or why the probe cannot know.
fn targets<'a>(cmd: &str, pinned: &'a [FileEntry], input: &[FileEntry]) -> Result<Vec<&'a FileEntry>, String> {
    let words = words(cmd)?;
    let mut rest = words.iter().map(String::as_str).skip_while(|w| is_assignment(w));
    let program = rest.next().ok_or("an empty command")?;
    let args: Vec<&str> = rest.collect();
    let name = program.rsplit('/').next().unwrap_or(program);
    let paths: BTreeSet<&str> = input.iter().map(|f| f.path.as_str()).collect();
    let chosen: Vec<String> = match name {
        "pytest" | "py.test" => pytest(&args, pinned, input)?,
        n if n == "python" || n.starts_with("python3") => match python_module(&args)? {
            ("unittest", args) => unittest(args, pinned, &paths)?,
            ("pytest", args) => pytest(args, pinned, input)?,
            (module, _) => return Err(format!("`-m {module}` is not a runner the probe knows (unittest, pytest)")),
        },
        _ => return Err(format!("`{name}` is not a runner the probe knows (python -m unittest, pytest)")),
    };
    let found: Vec<&FileEntry> = pinned.iter().filter(|f| chosen.contains(&f.path)).collect();
    if found.is_empty() {
        return Err("none of the files it runs is a pinned test file".into());
    }
    Ok(found)
}

/// `python [options] -m MODULE ARGS`: the module and its arguments.
fn python_module<'a, 'b>(args: &'b [&'a str]) -> Result<(&'a str, &'b [&'a str]), String> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match *a {
            "-m" => return args.get(i + 1).map(|m| (*m, &args[i + 2..])).ok_or_else(|| "`-m` without a module".into()),
            "-X" | "-W" => i += 2,
            "-B" | "-E" | "-s" | "-u" | "-b" | "-bb" | "-O" | "-OO" | "-q" | "-I" | "-P" => i += 1,
            other => return Err(format!("python runs `{other}`, not a test runner module")),
        }
    }
    Err("python without `-m unittest` or `-m pytest`".into())
}

/// The pinned files `python -m unittest ARGS` runs.
fn unittest(args: &[&str], pinned: &[FileEntry], paths: &BTreeSet<&str>) -> Result<Vec<String>, String> {
    const FLAGS: &[&str] = &["-v", "--verbose", "-q", "--quiet", "-b", "--buffer", "-c", "--catch", "-f", "--failfast", "--locals"];
    if args.first() == Some(&"discover") {
        return discover(&args[1..], pinned, paths);
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
    if named { Ok(chosen) } else { discover(&[], pinned, paths) }
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
fn pytest(args: &[&str], pinned: &[FileEntry], input: &[FileEntry]) -> Result<Vec<String>, String> {
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
    let config = pytest_config(input);
    if config.contains("addopts") {
        return Err("the pytest configuration has addopts, which may select tests".into());
    }
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
    Ok(pinned
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
fn pytest_config(input: &[FileEntry]) -> String {
    const FILES: &[&str] = &["pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"];
    input.iter().filter(|f| FILES.contains(&f.path.as_str())).map(|f| String::from_utf8_lossy(&f.data).into_owned()).collect()
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The words of a simple command: quotes honoured; anything the shell would expand, redirect
/// or chain refused (the probe must know exactly what runs).
fn words(cmd: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('$' | '`' | '\\') if c == '"' => return Err("the command expands variables in quotes".into()),
                        Some(other) => w.push(other),
                        None => return Err("the command has an unclosed quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => out.extend(word.take()),
            c if "|&;<>()$`\\*?[]{}~#!".contains(c) => {
                return Err(format!("the command is more than one simple command (`{c}`)"));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    Ok(out)
}
