//! Files that decide how tests run rather than what they test, per ecosystem, in one table
//! ([`RUNNER_FILES`]); modules that shadow the runner or Python's standard library; and the
//! scripts an acceptance command runs. An agent that writes, changes or removes any of them
//! is refused (`TestTampering`) unless its task names the file as an output.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::Subject;
use crate::reconcile::workspace::AgentChange;
use crate::spec::{AcceptanceTest, normalize_relative};

/// One kind of file that configures a test runner.
#[derive(Debug, Clone, Copy)]
pub struct RunnerFile {
    /// Whose runner reads it.
    pub ecosystem: &'static str,
    /// A gitignore-style pattern (no leading `/`: at any depth).
    pub glob: &'static str,
    /// Which part of the file counts.
    pub scope: Scope,
    /// Why it matters, shown in the refusal.
    pub why: &'static str,
}

/// Which part of a runner file counts.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// The whole file.
    Whole,
    /// These top-level keys of a JSON file (the rest is the project's own business).
    JsonKeys(&'static [&'static str]),
    /// The file when its content holds this text.
    Contains(&'static str),
}

/// Files that decide how tests run. Add a row to cover another runner; later rows win, so a
/// `!` row can exempt what an earlier one caught.
pub const RUNNER_FILES: &[RunnerFile] = &[
    row("python", "conftest.py", Scope::Whole, "pytest runs it before any test; its hooks can rewrite outcomes"),
    row("python", "pytest.ini", Scope::Whole, "pytest configuration"),
    row("python", ".pytest.ini", Scope::Whole, "pytest configuration"),
    row("python", "tox.ini", Scope::Whole, "pytest and tox configuration"),
    row("python", "setup.cfg", Scope::Whole, "may hold pytest configuration ([tool:pytest])"),
    row("python", "pyproject.toml", Scope::Whole, "may hold pytest configuration ([tool.pytest.ini_options])"),
    row("python", "sitecustomize.py", Scope::Whole, "imported when the interpreter starts"),
    row("python", "usercustomize.py", Scope::Whole, "imported when the interpreter starts"),
    row("python", "*.pth", Scope::Whole, "path hooks run when the interpreter starts"),
    row("python", "*.dist-info/**", Scope::Whole, "package metadata: its entry points load pytest plugins"),
    row("python", "*.egg-info/**", Scope::Whole, "package metadata: its entry points load pytest plugins"),
    row("python", "*.egg-link", Scope::Whole, "puts another folder on the import path"),
    row("python", "*.py[co]", Scope::Whole, "bytecode without source is imported in place of modules"),
    row("python", "!**/__pycache__/**", Scope::Whole, "caches: the tests run with PYTHONPYCACHEPREFIX, never reading them"),
    row("node", "package.json", Scope::JsonKeys(NODE_KEYS), "its test scripts and runner settings"),
    row("node", ".npmrc", Scope::Whole, "npm configuration (script-shell, node-options)"),
    row("node", ".yarnrc", Scope::Whole, "yarn configuration"),
    row("node", ".yarnrc.yml", Scope::Whole, "yarn configuration"),
    row("node", ".pnpmfile.cjs", Scope::Whole, "pnpm hooks"),
    row("node", "jest.config.*", Scope::Whole, "jest configuration"),
    row("node", "jest.setup.*", Scope::Whole, "runs before every jest test file"),
    row("node", "setupTests.*", Scope::Whole, "runs before every test file"),
    row("node", "vitest.config.*", Scope::Whole, "vitest configuration"),
    row("node", "vitest.workspace.*", Scope::Whole, "vitest configuration"),
    row("node", "vitest.setup.*", Scope::Whole, "runs before every vitest test file"),
    row("node", "vite.config.*", Scope::Whole, "vitest reads it"),
    row("node", ".mocharc*", Scope::Whole, "mocha configuration"),
    row("node", "ava.config.*", Scope::Whole, "ava configuration"),
    row("node", "karma.conf.*", Scope::Whole, "karma configuration"),
    row("node", "babel.config.*", Scope::Whole, "transforms the test files themselves"),
    row("node", ".babelrc*", Scope::Whole, "transforms the test files themselves"),
    row("rust", "**/.cargo/config", Scope::Whole, "cargo configuration (runners, wrappers, aliases)"),
    row("rust", "**/.cargo/config.toml", Scope::Whole, "cargo configuration (runners, wrappers, aliases)"),
    row("rust", "rust-toolchain", Scope::Whole, "chooses the toolchain that builds and runs the tests"),
    row("rust", "rust-toolchain.toml", Scope::Whole, "chooses the toolchain that builds and runs the tests"),
    row("go", "*_test.go", Scope::Contains("func TestMain("), "TestMain decides the test binary's exit code"),
];

const fn row(ecosystem: &'static str, glob: &'static str, scope: Scope, why: &'static str) -> RunnerFile {
    RunnerFile { ecosystem, glob, scope, why }
}

/// The keys of `package.json` that decide how tests run.
const NODE_KEYS: &[&str] = &["scripts", "jest", "mocha", "ava", "c8", "nyc", "babel", "config"];

/// Module names the test runners are, or load, besides the standard library.
const RUNNER_MODULES: &[&str] = &["pytest", "_pytest", "pluggy", "py", "iniconfig", "nose", "nose2", "xdist", "coverage"];

/// Python's standard library (`sys.stdlib_module_names` of 3.11, private modules left out),
/// separated by spaces.
const STDLIB: &str = "\
__future__ abc aifc antigravity argparse array ast asynchat asyncio asyncore atexit audioop base64 bdb \
binascii bisect builtins bz2 cProfile calendar cgi cgitb chunk cmath cmd code codecs codeop collections \
colorsys compileall concurrent configparser contextlib contextvars copy copyreg crypt csv ctypes curses \
dataclasses datetime dbm decimal difflib dis distutils doctest email encodings ensurepip enum errno \
faulthandler fcntl filecmp fileinput fnmatch fractions ftplib functools gc genericpath getopt getpass \
gettext glob graphlib grp gzip hashlib heapq hmac html http idlelib imaplib imghdr imp importlib inspect \
io ipaddress itertools json keyword lib2to3 linecache locale logging lzma mailbox mailcap marshal math \
mimetypes mmap modulefinder msilib msvcrt multiprocessing netrc nis nntplib nt ntpath nturl2path numbers \
opcode operator optparse os ossaudiodev pathlib pdb pickle pickletools pipes pkgutil platform plistlib \
poplib posix posixpath pprint profile pstats pty pwd py_compile pyclbr pydoc pydoc_data pyexpat queue \
quopri random re readline reprlib resource rlcompleter runpy sched secrets select selectors shelve shlex \
shutil signal site smtpd smtplib sndhdr socket socketserver spwd sqlite3 sre_compile sre_constants \
sre_parse ssl stat statistics string stringprep struct subprocess sunau symtable sys sysconfig syslog \
tabnanny tarfile telnetlib tempfile termios textwrap this threading time timeit tkinter token tokenize \
tomllib trace traceback tracemalloc tty turtle turtledemo types typing unicodedata unittest urllib uu uuid \
venv warnings wave weakref webbrowser winreg winsound wsgiref xdrlib xml xmlrpc zipapp zipfile zipimport \
zlib zoneinfo";

/// File name endings Python imports a module from.
const MODULE_SUFFIXES: &[&str] = &["py", "pyc", "pyo", "pyw", "so", "pyd"];

/// A file that decides how the tests run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    pub path: String,
    pub why: String,
}

/// How the agent touched a path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Touch<'a> {
    /// Written, with its content when it was kept (see [`reads_content`]).
    Written(Option<&'a [u8]>),
    /// Ignored: never published, but there while the tests run.
    Ignored,
    Removed,
}

/// Every path of `change` (ignored ones included) that decides how the tests run, sorted.
pub(super) fn findings(subject: &Subject<'_>, change: &AgentChange) -> Vec<Finding> {
    let table = table();
    let scripts = scripts_run(subject.tests);
    let dirs = import_dirs(subject);
    let mut known: BTreeSet<&str> = subject.input.paths().collect();
    known.extend(change.written.iter().map(|f| f.path.as_str()));
    known.extend(change.ignored.iter().map(String::as_str));
    let touched = change
        .written
        .iter()
        .map(|f| (f.path.as_str(), Touch::Written(f.content.as_deref())))
        .chain(change.ignored.iter().map(|p| (p.as_str(), Touch::Ignored)))
        .chain(change.removed.iter().map(|p| (p.as_str(), Touch::Removed)));
    let mut out = Vec::new();
    for (path, touch) in touched {
        let committed = subject.input.contains(path);
        let why = scripts
            .get(path)
            .filter(|_| committed)
            .map(|cmd| format!("the acceptance test `{cmd}` runs it"))
            .or_else(|| table_rule(table, subject, path, touch))
            .or_else(|| if touch == Touch::Removed { None } else { shadowed(path, &dirs, &known) });
        if let Some(why) = why {
            out.push(Finding { path: path.to_owned(), why });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// Whether `path` is a runner file by its name alone (for the outputs a task declares; a script
/// the tests run that the task declares is its code under test, not the harness).
pub(super) fn is_runner_path(path: &str) -> bool {
    matching_row(table(), path).is_some() || shadowed(path, &[String::new()], &BTreeSet::from([path])).is_some()
}

/// Whether the checks read what an agent wrote at `path` (rows that judge a file by its
/// content), so that the copy-out keeps it.
pub(crate) fn reads_content(path: &str) -> bool {
    matching_row(table(), path).is_some_and(|row| !matches!(row.scope, Scope::Whole))
}

/// The table compiled once: one matcher, each row's pattern mapped back to its row by text.
fn table() -> &'static Gitignore {
    static TABLE: LazyLock<Gitignore> = LazyLock::new(|| {
        let mut b = GitignoreBuilder::new("/");
        for row in RUNNER_FILES {
            b.add_line(None, row.glob).expect("the runner table's globs are valid");
        }
        b.build().expect("the runner table compiles")
    });
    &TABLE
}

fn matching_row(table: &Gitignore, path: &str) -> Option<&'static RunnerFile> {
    let matched = table.matched(std::path::Path::new("/").join(path), false);
    let glob = matched.is_ignore().then(|| matched.inner()).flatten()?;
    RUNNER_FILES.iter().find(|r| r.glob == glob.original())
}

/// Why a table row catches `path`, touched as `touch`.
fn table_rule(table: &Gitignore, subject: &Subject<'_>, path: &str, touch: Touch<'_>) -> Option<String> {
    let row = matching_row(table, path)?;
    let counts = match (row.scope, touch) {
        (Scope::Whole, _) => true,
        (Scope::Contains(needle), Touch::Written(Some(data))) => data.windows(needle.len()).any(|w| w == needle.as_bytes()),
        // Content not kept (too large to hold): it counts.
        (Scope::Contains(_) | Scope::JsonKeys(_), Touch::Written(None)) => true,
        (Scope::Contains(_), Touch::Ignored) => true,
        (Scope::Contains(_), Touch::Removed) => false,
        (Scope::JsonKeys(keys), touch) => {
            let before = subject.input.read(path);
            let before = before.as_deref();
            match touch {
                Touch::Written(after) => json_keys_differ(keys, before, after),
                Touch::Removed => json_keys_differ(keys, before, None),
                Touch::Ignored => true,
            }
        }
    };
    counts.then(|| format!("{}: {}", row.ecosystem, row.why))
}

/// Whether the `keys` of two JSON documents differ (a document that does not parse differs).
fn json_keys_differ(keys: &[&str], before: Option<&[u8]>, after: Option<&[u8]>) -> bool {
    let parse = |d: Option<&[u8]>| -> Option<serde_json::Value> {
        d.map_or(Some(serde_json::Value::Null), |d| serde_json::from_slice::<serde_json::Value>(d).ok())
    };
    match (parse(before), parse(after)) {
        (Some(b), Some(a)) => keys.iter().any(|k| b.get(k) != a.get(k)),
        _ => true,
    }
}

/// `path` as a module that shadows the runner or the standard library, from one of the
/// folders on the tests' import path (`dirs`; `known` holds every file there is).
fn shadowed(path: &str, dirs: &[String], known: &BTreeSet<&str>) -> Option<String> {
    let name = dirs.iter().find_map(|dir| module_name(path, dir, known))?;
    if RUNNER_MODULES.contains(&name) {
        return Some(format!("python: shadows the test runner's module `{name}`"));
    }
    STDLIB.split_ascii_whitespace().any(|n| n == name).then(|| format!("python: shadows the standard library's module `{name}`"))
}

/// The top-level module `path` is part of, seen from the import folder `dir`: `name.py` (or
/// bytecode, or an extension module), or a file of a package `name/` that has an `__init__`
/// (a bare folder is a namespace portion, which never wins over a real module).
fn module_name<'p>(path: &'p str, dir: &str, known: &BTreeSet<&str>) -> Option<&'p str> {
    let rel = if dir.is_empty() { path } else { path.strip_prefix(dir)?.strip_prefix('/')? };
    let name = match rel.split_once('/') {
        Some((package, _)) => {
            let base = if dir.is_empty() { package.to_owned() } else { format!("{dir}/{package}") };
            MODULE_SUFFIXES.iter().any(|s| known.contains(format!("{base}/__init__.{s}").as_str())).then_some(package)?
        }
        None => {
            let (name, ext) = rel.split_once('.')?;
            let extension_module = |s: &str| matches!(s, "so" | "pyd") && ext.ends_with(&format!(".{s}"));
            MODULE_SUFFIXES.iter().any(|s| ext == *s || extension_module(s)).then_some(name)?
        }
    };
    (!name.is_empty()).then_some(name)
}

/// Folders on the tests' import path: the workspace, the pinned test files' folders, the
/// folders the commands run in (`cd DIR && python -m pytest` imports from DIR first), and
/// `PYTHONPATH=` entries of the commands (from the folder they run in).
fn import_dirs(subject: &Subject<'_>) -> Vec<String> {
    let mut dirs: BTreeSet<String> = BTreeSet::from([String::new()]);
    for pinned in subject.pinned {
        let p = normalize_relative(pinned);
        if let Some((dir, _)) = p.rsplit_once('/') {
            dirs.insert(dir.to_owned());
        }
    }
    for test in subject.tests {
        for (dir, words) in simple_commands(&test.cmd) {
            for word in &words {
                if let Some(value) = word.strip_prefix("PYTHONPATH=") {
                    dirs.extend(value.split(':').map(|p| in_dir(&dir, p)));
                }
            }
            dirs.insert(dir);
        }
    }
    dirs.into_iter().collect()
}

/// The simple commands of `cmd` (split at `&&`, `||`, `;` and `|`), each with the folder it
/// runs in, relative to the workspace: a `cd DIR` moves the commands after it (to the
/// workspace itself when DIR is not a plain path inside it).
fn simple_commands(cmd: &str) -> Vec<(String, Vec<String>)> {
    let words = loose_words(cmd);
    let mut dir = String::new();
    let mut out = Vec::new();
    for segment in words.split(|w| matches!(w.as_str(), "&&" | "||" | ";" | "|")) {
        if segment.first().is_some_and(|w| w == "cd") {
            dir = segment.get(1).and_then(|to| enter(&dir, to)).unwrap_or_default();
        } else if !segment.is_empty() {
            out.push((dir.clone(), segment.to_vec()));
        }
    }
    out
}

/// The folder `cd to` reaches from `dir`, when it stays a plain path inside the workspace.
pub(super) fn enter(dir: &str, to: &str) -> Option<String> {
    let relative = match to.strip_prefix(plancd_sandbox::WORKSPACE) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
        _ if to.starts_with(['/', '~', '$', '-']) => return None,
        _ => format!("{dir}/{to}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if part == ".." {
            parts.pop()?;
        } else {
            parts.push(part);
        }
    }
    Some(parts.join("/"))
}

/// `path` as seen from the folder `dir`, relative to the workspace.
fn in_dir(dir: &str, path: &str) -> String {
    enter(dir, path).unwrap_or_else(|| normalize_relative(path))
}

/// The harness files acceptance commands run: shell scripts (`sh run.sh`, `./run.sh`) and the
/// files of `make`, `nox` and `just`. Maps each to the command. A `python3 app.py` runs the code
/// under test, more often than not, so interpreters of other languages are left out.
fn scripts_run(tests: &[AcceptanceTest]) -> std::collections::BTreeMap<String, String> {
    const INTERPRETERS: &[&str] = &["sh", "bash", "dash", "zsh"];
    let mut out = std::collections::BTreeMap::new();
    for test in tests {
        for (dir, segment) in simple_commands(&test.cmd) {
            let mut rest = segment.iter().skip_while(|w| w.contains('=') && !w.starts_with('-'));
            let Some(program) = rest.next() else { continue };
            let name = program.rsplit('/').next().unwrap_or(program);
            let mut files: Vec<String> = Vec::new();
            if program.contains('/') && !program.starts_with('/') && program.ends_with(".sh") {
                files.push(in_dir(&dir, program));
            } else if INTERPRETERS.contains(&name) {
                // The first word that is no option is the script (`-m` runs a module instead).
                for a in rest.clone() {
                    match a.as_str() {
                        "-m" | "-c" => break,
                        a if a.starts_with('-') => continue,
                        a => {
                            files.push(in_dir(&dir, a));
                            break;
                        }
                    }
                }
            } else if name == "make" {
                files.extend(["Makefile", "makefile", "GNUmakefile"].map(|f| in_dir(&dir, f)));
                files.extend(rest.clone().skip_while(|a| *a != "-f").nth(1).map(|f| in_dir(&dir, f)));
            } else if name == "nox" {
                files.push(in_dir(&dir, "noxfile.py"));
            } else if name == "just" {
                files.extend(["justfile", "Justfile", ".justfile"].map(|f| in_dir(&dir, f)));
            }
            for f in files.into_iter().filter(|f| !f.is_empty()) {
                out.entry(f).or_insert_with(|| test.cmd.clone());
            }
        }
    }
    out
}

/// The words of a shell command, leniently: quotes dropped, `&&`, `||`, `;` and `|` words of
/// their own. Good enough to find names, never used to run anything.
fn loose_words(cmd: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let operator = match (c, next) {
            ('&', Some('&')) | ('|', Some('|')) => {
                chars.next();
                Some(format!("{c}{c}"))
            }
            (';' | '\n', _) => Some(";".to_owned()),
            ('|', _) => Some("|".to_owned()),
            _ => None,
        };
        if operator.is_some() || c.is_whitespace() {
            words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
            words.extend(operator);
        } else if c != '\'' && c != '"' {
            word.push(c);
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    words
}
