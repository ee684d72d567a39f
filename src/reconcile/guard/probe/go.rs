//! `go test` for the probe: the pinned `*_test.go` files of the packages a command tests, and a
//! `func TestPlancdProbe<tag>(t *testing.T)` that fails.

use super::Call;
use crate::spec::normalize_relative;

/// Flags of `go test` that take no value and choose no tests.
const FLAGS: &[&str] = &["v", "race", "cover", "failfast", "short", "json", "trimpath", "x", "a", "work", "msan", "asan", "benchmem"];

/// Flags of `go test` with a value that choose no tests.
const WITH_VALUE: &[&str] = &[
    "count",
    "timeout",
    "p",
    "parallel",
    "tags",
    "coverprofile",
    "covermode",
    "coverpkg",
    "mod",
    "vet",
    "cpu",
    "ldflags",
    "gcflags",
    "asmflags",
    "shuffle",
    "outputdir",
    "modfile",
];

/// Operating systems and architectures a file name can be constrained to (`a_linux_test.go`).
const GOOS_GOARCH: &str = "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 solaris \
wasip1 windows zos 386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 mips64le mips64p32 mips64p32le \
ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 wasm";

/// The pinned test files of the packages `go test ARGS` tests, in the module at the workspace's
/// root (its import path or `./` patterns; `.` with none).
pub(super) fn go_test(call: &Call<'_>) -> Result<Vec<String>, String> {
    let gomod = call.text("go.mod").ok_or("there is no go.mod at the workspace's root")?;
    let paths = call.paths();
    if paths.contains("go.work") {
        return Err("go.work chooses the modules".into());
    }
    let module = gomod.lines().find_map(|l| l.trim().strip_prefix("module ")).map(|m| m.trim().trim_matches('"').to_owned());
    let mut patterns: Vec<(String, bool)> = Vec::new();
    let mut named = false;
    let mut i = 0;
    while let Some(a) = call.args.get(i) {
        i += 1;
        if let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
            let (name, inline) = flag.split_once('=').map_or((flag, false), |(n, _)| (n, true));
            if WITH_VALUE.contains(&name) {
                i += usize::from(!inline);
            } else if !FLAGS.contains(&name) {
                return Err(format!("`{a}` is a flag the probe does not know (it may select tests)"));
            }
            continue;
        }
        named = true;
        patterns.extend(package(a, module.as_deref())?);
    }
    if !named {
        patterns.push((String::new(), false));
    }
    Ok(call
        .pinned
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| {
            let (dir, file) = p.rsplit_once('/').map_or(("", p.as_str()), |(d, f)| (d, f));
            built(file)
                && !dir.split('/').any(|d| d == "testdata" || d == "vendor" || d.starts_with('.') || d.starts_with('_'))
                && !in_nested_module(dir, &paths)
                && patterns.iter().any(|(root, all)| {
                    dir == root || (*all && (root.is_empty() || dir.strip_prefix(root.as_str()).is_some_and(|r| r.starts_with('/'))))
                })
        })
        .collect())
}

/// A package pattern as a folder of the module and whether it takes the folders below; `None`
/// for a package outside the module (the standard library, a dependency).
fn package(pattern: &str, module: Option<&str>) -> Result<Option<(String, bool)>, String> {
    let relative = if pattern == "." || pattern.starts_with("./") {
        Some(pattern.to_owned())
    } else {
        module.and_then(|m| {
            if pattern == m { Some(".".to_owned()) } else { pattern.strip_prefix(m).and_then(|r| r.strip_prefix('/')).map(str::to_owned) }
        })
    };
    let Some(relative) = relative else { return Ok(None) };
    let (dir, all) = match relative.strip_suffix("...") {
        Some(d) if d.is_empty() || d.ends_with('/') => (d.to_owned(), true),
        Some(_) => return Err(format!("`{pattern}` is a pattern the probe cannot read")),
        None => (relative, false),
    };
    if dir.contains("...") || dir.split('/').any(|c| c == "..") {
        return Err(format!("`{pattern}` is a pattern the probe cannot read"));
    }
    Ok(Some((normalize_relative(&dir), all)))
}

/// Whether `go test` builds a test file of this name: not hidden, not `_`-prefixed, and not
/// constrained to an operating system or architecture by its name.
fn built(file: &str) -> bool {
    let Some(stem) = file.strip_suffix("_test.go") else { return false };
    if stem.starts_with('.') || stem.starts_with('_') || file.starts_with('_') {
        return false;
    }
    let parts: Vec<&str> = stem.split('_').skip(1).collect();
    let known = |p: &&str| GOOS_GOARCH.split_ascii_whitespace().any(|k| k == *p);
    !parts.iter().rev().take(2).any(known)
}

/// Whether a `go.mod` in `dir` or a folder between it and the root makes it another module.
fn in_nested_module(dir: &str, paths: &std::collections::BTreeSet<&str>) -> bool {
    let mut prefix = String::new();
    dir.split('/').filter(|d| !d.is_empty()).any(|d| {
        prefix = if prefix.is_empty() { d.to_owned() } else { format!("{prefix}/{d}") };
        paths.contains(format!("{prefix}/go.mod").as_str())
    })
}

/// `text` with a failing test appended (and `testing` imported when it is not), or why a test
/// added to it may not be built.
pub(super) fn with_test(text: &str, tag: &str, marker: &str) -> Result<String, String> {
    if text.lines().any(|l| l.starts_with("//go:build") || l.starts_with("// +build")) {
        return Err("a build constraint may leave it out of the build".into());
    }
    let mut out = String::with_capacity(text.len() + 256);
    if text.contains("\"testing\"") {
        out.push_str(text);
    } else {
        let clause = text.find("\npackage ").map(|i| i + 1).or_else(|| text.starts_with("package ").then_some(0));
        let clause = clause.ok_or("it has no package clause")?;
        let end = text[clause..].find('\n').map_or(text.len(), |e| clause + e + 1);
        out.push_str(&text[..end]);
        if end == text.len() && !text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("\nimport \"testing\"\n");
        out.push_str(&text[end..]);
    }
    out.push_str(&format!(
        "\n\n// {marker}: plancd checks that this test fails.\nfunc TestPlancdProbe{tag}(t *testing.T) {{\n\tt.Fatal(\"{marker}: this test must fail\")\n}}\n"
    ));
    Ok(out)
}
