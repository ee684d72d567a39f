//! Node's runners for the probe: `node --test`, a pinned file node runs itself, jest, vitest and
//! mocha; the package scripts (`npm test`, `npm run NAME`, `yarn test`, `pnpm test`) and `npx`
//! that call them; and the failing test in each one's syntax, required or imported as the file's
//! module system wants.

use crate::reconcile::input::Input;
use serde_json::Value;

use super::{Call, FailingTest, Interpreted, after_imports, words};
use crate::spec::normalize_relative;

/// Node's own options the probe knows; none of them chooses tests.
const NODE_FLAGS: &[&str] = &[
    "--no-warnings",
    "--enable-source-maps",
    "--trace-warnings",
    "--trace-uncaught",
    "--experimental-test-coverage",
    "--test-force-exit",
    "--experimental-vm-modules",
    "--expose-gc",
    "--no-deprecation",
    "--throw-deprecation",
];

/// Node's options that take a value (as the next word or after `=`).
const NODE_WITH_VALUE: &[&str] = &[
    "-r",
    "--require",
    "--import",
    "--loader",
    "--experimental-loader",
    "--test-reporter",
    "--test-reporter-destination",
    "--test-concurrency",
    "--test-timeout",
    "--env-file",
    "--max-old-space-size",
    "--stack-size",
];

/// Node's options that choose which tests run.
const NODE_SELECTING: &[&str] = &["--test-name-pattern", "--test-skip-pattern", "--test-only", "--test-shard"];

/// `node [options] ...`: `--test` with its arguments, a file, or something else.
pub(super) fn interpreted<'a>(args: &[&'a str]) -> Interpreted<'a> {
    let mut i = 0;
    let mut test = false;
    while let Some(a) = args.get(i) {
        let key = a.split_once('=').map_or(*a, |(k, _)| k);
        match *a {
            "--test" => test = true,
            a if NODE_FLAGS.contains(&a) || (a.contains('=') && NODE_WITH_VALUE.contains(&key)) => {}
            a if NODE_WITH_VALUE.contains(&a) => i += 1,
            a if a.starts_with('-') && !test => return Interpreted::Other,
            a if a.starts_with('-') => {}
            _ if test => break,
            _ => return Interpreted::File(args[i..].to_vec()),
        }
        i += 1;
    }
    if test { Interpreted::NodeTest(args.iter().copied().filter(|a| *a != "--test").collect()) } else { Interpreted::Other }
}

/// The pinned files `node --test ARGS` runs: the files named, or with none the files node's
/// test runner finds by name (the patterns node 20 and later versions share).
pub(super) fn node_test(call: &Call<'_>) -> Result<Vec<String>, String> {
    let paths = call.paths();
    let mut files = Vec::new();
    let mut i = 0;
    while let Some(a) = call.args.get(i) {
        i += 1;
        let key = a.split_once('=').map_or(*a, |(k, _)| k);
        match *a {
            _ if NODE_SELECTING.contains(&key) => return Err(format!("`{a}` selects single tests")),
            _ if !files.is_empty() && a.starts_with('-') => return Err(format!("`{a}` follows the files: node may pass it on")),
            a if NODE_FLAGS.contains(&a) || (a.contains('=') && NODE_WITH_VALUE.contains(&key)) => {}
            a if NODE_WITH_VALUE.contains(&a) => i += 1,
            a if a.starts_with('-') => return Err(format!("`{a}` is an option the probe does not know (it may select tests)")),
            a => {
                let path = normalize_relative(a);
                if paths.contains(path.as_str()) {
                    files.push(path);
                } else if paths.iter().any(|p| p.strip_prefix(path.as_str()).is_some_and(|r| r.starts_with('/'))) {
                    return Err(format!("`{a}` is a folder: which files node runs in it depends on node's version"));
                } else {
                    return Err(format!("`{a}` is no file the probe can find"));
                }
            }
        }
    }
    if !files.is_empty() {
        return Ok(files);
    }
    Ok(call.pinned.iter().map(|f| f.path.clone()).filter(|p| node_test_named(p)).collect())
}

/// Whether node's test runner finds `path` by its name alone: in a `test` folder, or named
/// `test`, `test-*`, `*.test`, `*-test` or `*_test`, as `.js`, `.cjs` or `.mjs`; never under
/// `node_modules` or a hidden folder.
fn node_test_named(path: &str) -> bool {
    let Some((stem, ext)) = file_name(path).rsplit_once('.') else { return false };
    let dirs: Vec<&str> = path.split('/').collect();
    let dirs = &dirs[..dirs.len() - 1];
    ["js", "cjs", "mjs"].contains(&ext)
        && !dirs.iter().any(|d| *d == "node_modules" || d.starts_with('.'))
        && (dirs.contains(&"test")
            || stem == "test"
            || stem.starts_with("test-")
            || [".test", "-test", "_test"].iter().any(|s| stem.ends_with(s)))
}

/// `node FILE`: the file itself.
pub(super) fn script(call: &Call<'_>) -> Result<Vec<String>, String> {
    let file = call.args.first().map(|f| normalize_relative(f)).ok_or("no file to run")?;
    Ok(vec![file])
}

/// The pinned files jest runs, with its default configuration: those its default `testMatch`
/// takes, whose path one of the command's patterns (read as regular expressions) matches.
pub(super) fn jest(call: &Call<'_>) -> Result<Vec<String>, String> {
    const FLAGS: &[&str] = &[
        "--ci",
        "--runInBand",
        "-i",
        "--silent",
        "--verbose",
        "--coverage",
        "--colors",
        "--no-cache",
        "--passWithNoTests",
        "--detectOpenHandles",
        "--forceExit",
        "--bail",
        "--json",
        "--useStderr",
        "--no-watchman",
        "--logHeapUsage",
        "--errorOnDeprecated",
        "--watchAll=false",
    ];
    const WITH_VALUE: &[&str] = &["--maxWorkers", "-w", "--outputFile", "--testTimeout", "--bail"];
    configured(call, "jest", &["jest.config."])?;
    let patterns = options(call.args, FLAGS, WITH_VALUE)?;
    for p in &patterns {
        if !p.chars().all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c)) {
            return Err(format!("`{p}` is a pattern the probe cannot read"));
        }
    }
    Ok(call
        .pinned
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| jest_named(p) && (patterns.is_empty() || patterns.iter().any(|pat| wildcard_contains(&format!("\0/{p}"), pat))))
        .collect())
}

/// Whether jest's default `testMatch` takes `path`: under `__tests__`, or named `test`, `spec`,
/// `*.test` or `*.spec`, as `.js`, `.jsx`, `.ts` or `.tsx`; never under `node_modules`.
fn jest_named(path: &str) -> bool {
    let Some((stem, ext)) = file_name(path).rsplit_once('.') else { return false };
    let dirs: Vec<&str> = path.split('/').collect();
    let dirs = &dirs[..dirs.len() - 1];
    ["js", "jsx", "ts", "tsx"].contains(&ext)
        && !dirs.iter().any(|d| *d == "node_modules" || d.starts_with('.'))
        && (dirs.contains(&"__tests__") || ["test", "spec"].contains(&stem) || stem.ends_with(".test") || stem.ends_with(".spec"))
}

/// Whether `pattern`, `.` matching any character, occurs in `hay`.
fn wildcard_contains(hay: &str, pattern: &str) -> bool {
    let (hay, pattern) = (hay.as_bytes(), pattern.as_bytes());
    pattern.len() <= hay.len() && hay.windows(pattern.len()).any(|w| w.iter().zip(pattern).all(|(h, p)| *p == b'.' || h == p))
}

/// The pinned files vitest runs, with its default configuration: those its default `include`
/// takes whose relative path holds one of the command's filters.
pub(super) fn vitest(call: &Call<'_>) -> Result<Vec<String>, String> {
    const FLAGS: &[&str] = &["--run", "--silent", "--passWithNoTests", "--coverage", "--no-color", "--allowOnly=false"];
    const WITH_VALUE: &[&str] = &["--reporter", "--outputFile", "--pool", "--bail", "--testTimeout"];
    configured(call, "", &["vitest.config.", "vite.config.", "vitest.workspace.", "vitest.projects."])?;
    let args = match call.args.first() {
        Some(&"run") => &call.args[1..],
        Some(&sub @ ("watch" | "dev" | "related" | "bench" | "list" | "init")) => return Err(format!("`vitest {sub}` is not a test run")),
        _ => call.args,
    };
    let filters = options(args, FLAGS, WITH_VALUE)?;
    if let Some(f) = filters.iter().find(|f| f.contains(':')) {
        return Err(format!("`{f}` names single tests"));
    }
    Ok(call
        .pinned
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| vitest_named(p) && (filters.is_empty() || filters.iter().any(|f| p.to_lowercase().contains(&f.to_lowercase()))))
        .collect())
}

/// Whether vitest's default `include` takes `path` (`*.test.*` or `*.spec.*` scripts), and its
/// default `exclude` leaves it.
fn vitest_named(path: &str) -> bool {
    const EXTENSIONS: &[&str] = &["js", "mjs", "cjs", "ts", "mts", "cts", "jsx", "tsx"];
    let Some((stem, ext)) = file_name(path).rsplit_once('.') else { return false };
    let dirs: Vec<&str> = path.split('/').collect();
    let dirs = &dirs[..dirs.len() - 1];
    EXTENSIONS.contains(&ext)
        && !dirs.iter().any(|d| ["node_modules", "dist", "cypress"].contains(d) || d.starts_with('.'))
        && (stem.ends_with(".test") || stem.ends_with(".spec"))
}

/// The pinned files mocha runs, with its default configuration: the files named, and the
/// scripts of the folders named (`test` when none is), their subfolders too with `--recursive`.
pub(super) fn mocha(call: &Call<'_>) -> Result<Vec<String>, String> {
    const FLAGS: &[&str] = &[
        "--recursive",
        "--exit",
        "--bail",
        "-b",
        "--parallel",
        "-p",
        "--forbid-only",
        "--forbid-pending",
        "--colors",
        "-c",
        "--no-colors",
        "-C",
        "--full-trace",
        "--check-leaks",
        "--sort",
        "-S",
    ];
    const WITH_VALUE: &[&str] =
        &["--reporter", "-R", "--timeout", "-t", "--slow", "-s", "--require", "-r", "--jobs", "-j", "--reporter-option", "-O"];
    configured(call, "mocha", &[".mocharc."])?;
    if let Some(f) =
        call.input.files().iter().find(|f| is_script(&f.path) && call.input.text(&f.path).is_some_and(|t| focused(&t).is_some()))
    {
        return Err(format!("{} focuses tests (`.only`): mocha then runs those alone", f.path));
    }
    let recursive = call.args.contains(&"--recursive");
    let mut specs = options(call.args, FLAGS, WITH_VALUE)?;
    if specs.is_empty() {
        specs.push("test".into());
    }
    let paths = call.paths();
    let mut chosen = Vec::new();
    for spec in specs.iter().map(|s| normalize_relative(s)) {
        if paths.contains(spec.as_str()) {
            chosen.push(spec);
            continue;
        }
        chosen.extend(call.pinned.iter().map(|f| f.path.clone()).filter(|p| {
            let in_dir = if spec.is_empty() { Some(p.as_str()) } else { p.strip_prefix(spec.as_str()).and_then(|r| r.strip_prefix('/')) };
            in_dir.is_some_and(|rel| {
                (recursive || !rel.contains('/')) && ["js", "cjs", "mjs"].iter().any(|e| rel.ends_with(&format!(".{e}")))
            })
        }));
    }
    Ok(chosen)
}

/// The positional arguments of a JavaScript runner's command line, after its options.
fn options(args: &[&str], flags: &[&str], with_value: &[&str]) -> Result<Vec<String>, String> {
    let mut positional = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        let key = a.split_once('=').map_or(*a, |(k, _)| k);
        match *a {
            "--" => {
                positional.extend(args[i..].iter().map(|a| (*a).to_owned()));
                break;
            }
            a if flags.contains(&a) || (a.contains('=') && with_value.contains(&key)) => {}
            a if with_value.contains(&a) => i += 1,
            a if a.starts_with('-') => return Err(format!("`{a}` is an option the probe does not know (it may select tests)")),
            a => positional.push(a.to_owned()),
        }
    }
    Ok(positional)
}

/// Refuses when the runner has a configuration (a root file named with one of `prefixes`, or
/// `key` in `package.json`): it may choose other files, globals, or interfaces.
fn configured(call: &Call<'_>, key: &str, prefixes: &[&str]) -> Result<(), String> {
    if let Some(f) = call.input.files().iter().find(|f| !f.path.contains('/') && prefixes.iter().any(|p| f.path.starts_with(p))) {
        return Err(format!("{} configures the runner: it may choose other files", f.path));
    }
    let manifest = call.text("package.json").and_then(|t| serde_json::from_str::<Value>(&t).ok());
    if !key.is_empty() && manifest.is_some_and(|m| m.get(key).is_some()) {
        return Err(format!("package.json configures {key}: it may choose other files"));
    }
    Ok(())
}

/// The command a package script or `npx` runs, when `program ARGS` is one: `npm test`,
/// `npm run NAME [-- ARGS]`, `yarn test`, `pnpm test`, `npx [--no-install] PROGRAM ARGS`. The
/// script comes from `package.json` as committed (an agent that changes it is refused).
pub(super) fn launched(program: &str, args: &[&str], input: &Input) -> Result<Option<Vec<String>>, String> {
    let (name, extra) = match program {
        "npx" => {
            let rest: Vec<&str> = args
                .iter()
                .copied()
                .skip_while(|a| ["--no-install", "--no", "--yes", "-y", "--offline", "-q", "--quiet"].contains(a))
                .collect();
            if let Some(a) = rest.first().filter(|a| a.starts_with('-')) {
                return Err(format!("`npx {a}` is an option the probe does not know"));
            }
            return Ok(Some(rest.iter().map(|a| (*a).to_owned()).collect()));
        }
        "npm" => {
            let args: Vec<&str> = args.iter().copied().skip_while(|a| ["-s", "--silent", "-q", "--quiet"].contains(a)).collect();
            let (name, rest) = match args.first() {
                Some(&("test" | "t" | "tst")) => ("test", &args[1..]),
                Some(&("run" | "run-script" | "rum" | "urn")) => (*args.get(1).ok_or("`npm run` without a script")?, &args[2..]),
                _ => return Ok(None),
            };
            (name, npm_extra(rest)?)
        }
        "yarn" | "pnpm" => {
            let (name, rest) = match args.first() {
                Some(&"test") => ("test", &args[1..]),
                Some(&"run") => (*args.get(1).ok_or_else(|| format!("`{program} run` without a script"))?, &args[2..]),
                _ => return Ok(None),
            };
            if !rest.is_empty() {
                return Err(format!("`{program}` passes arguments to its scripts in ways that differ between versions"));
            }
            (name, Vec::new())
        }
        _ => return Ok(None),
    };
    let manifest = input.text("package.json").ok_or("there is no package.json")?;
    let manifest: Value = serde_json::from_str(&manifest).map_err(|e| format!("package.json: {e}"))?;
    let script = manifest.get("scripts").and_then(|s| s.get(name)).and_then(Value::as_str);
    let script = script.ok_or_else(|| format!("package.json has no `{name}` script"))?;
    let mut words = words(script).map_err(|why| format!("the `{name}` script `{script}`: {why}"))?;
    words.extend(extra);
    Ok(Some(words))
}

/// The arguments `npm run NAME ARGS` passes to the script: positional ones, and all after `--`.
fn npm_extra(rest: &[&str]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, a) in rest.iter().enumerate() {
        match *a {
            "--" => {
                out.extend(rest[i + 1..].iter().map(|a| (*a).to_owned()));
                break;
            }
            "-s" | "--silent" | "-q" | "--quiet" => {}
            a if a.starts_with('-') => return Err(format!("`npm {a}` is an option the probe does not know")),
            a => out.push(a.to_owned()),
        }
    }
    Ok(out)
}

/// `text` with a failing test for `runner` appended, or why it may not run or count there.
pub(super) fn with_test(runner: FailingTest, path: &str, text: &str, input: &Input, tag: &str, marker: &str) -> Result<String, String> {
    const ENDS: &[&str] = &["process.exit", "process.reallyExit", "process.abort", "process.kill", "uncaughtException"];
    let uses_node_test = text.contains("node:test");
    // A plain script fails right after its imports: how it ends itself comes later.
    let plain_script = runner == FailingTest::NodeScript && !uses_node_test;
    if let Some(end) = ENDS.iter().find(|e| text.contains(*e)).filter(|_| !plain_script) {
        return Err(format!("it holds `{end}`, which may end or rescue the run before an added test counts"));
    }
    if let Some(only) = focused(text) {
        return Err(format!("it focuses tests (`{only}`), which leaves an added test out"));
    }
    let head = format!("\n\n// {marker}: plancd checks that this test fails.\n");
    let body = format!("(\"plancd probe {tag}\", function () {{\n  throw new Error(\"{marker}: this test must fail\");\n}});\n");
    let node_test = || {
        if is_esm(path, text, input) {
            format!("{text}{head}import plancdProbeTest{tag} from \"node:test\";\nplancdProbeTest{tag}{body}")
        } else {
            format!("{text}{head}require(\"node:test\"){body}")
        }
    };
    Ok(match runner {
        FailingTest::NodeTest => node_test(),
        FailingTest::NodeScript if uses_node_test => node_test(),
        FailingTest::NodeScript => {
            after_imports(text, is_import, &format!("{head}throw new Error(\"{marker}: this test must fail\");\n\n"))
        }
        _ if uses_node_test => return Err("it uses node:test, whose tests this runner does not count".into()),
        FailingTest::Jest => format!("{text}{head}globalThis.test{body}"),
        FailingTest::Mocha => format!("{text}{head}globalThis.it{body}"),
        FailingTest::Vitest => {
            if !text.contains("from 'vitest'") && !text.contains("from \"vitest\"") {
                return Err("it does not import vitest (its tests rely on configured globals)".into());
            }
            format!("{text}{head}import {{ test as plancdProbeTest{tag} }} from \"vitest\";\nplancdProbeTest{tag}{body}")
        }
        other => return Err(format!("{other:?} is no test of node's")),
    })
}

/// A whole `require` or `import` statement at the top level.
fn is_import(line: &str) -> bool {
    let statement = line.starts_with("import ") || line.starts_with("} from ") || line.contains("require(");
    statement && !line.starts_with([' ', '\t']) && line.trim_end().ends_with([';', ')', '\'', '"'])
}

/// The focusing call in `text`, if any: a runner then runs the focused tests alone.
fn focused(text: &str) -> Option<&'static str> {
    [".only(", "fit(", "fdescribe(", "only: true"].into_iter().find(|o| text.contains(o))
}

/// Whether node loads `path` as an ES module: `.mjs`/`.mts`, `.cjs`/`.cts` never, otherwise by
/// the `type` of the nearest `package.json`, and without one by its syntax (as node 22 does).
fn is_esm(path: &str, text: &str, input: &Input) -> bool {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("mjs" | "mts") => return true,
        Some("cjs" | "cts") => return false,
        _ => {}
    }
    let mut dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    loop {
        let manifest = if dir.is_empty() { "package.json".to_owned() } else { format!("{dir}/package.json") };
        if let Some(m) = input.text(&manifest) {
            let kind = serde_json::from_str::<Value>(&m).ok().and_then(|m| m.get("type").and_then(Value::as_str).map(str::to_owned));
            match kind.as_deref() {
                Some("module") => return true,
                Some(_) => return false,
                None => break,
            }
        }
        if dir.is_empty() {
            break;
        }
        dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
    }
    let esm_syntax = text.lines().any(|l| l.starts_with("import ") || l.starts_with("import{") || l.starts_with("export "));
    esm_syntax && !text.contains("require(")
}

fn is_script(path: &str) -> bool {
    ["js", "cjs", "mjs", "ts", "mts", "cts", "jsx", "tsx"].iter().any(|e| path.ends_with(&format!(".{e}")))
        && !path.contains("node_modules/")
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
