//! Table tests of the probe's runners beyond Python's unittest and pytest (those are in the
//! guard's tests): for each command, the files the probe changes and the test it adds, or why it
//! is skipped; then the planned probes run by real runners where they are installed.

use std::path::Path;
use std::process::Command;

use super::*;

fn f(path: &str, data: &str) -> FileEntry {
    FileEntry::new(path, data)
}

const CJS_TEST: &str = "const test = require('node:test');\nconst assert = require('node:assert');\nconst { mul } = require('../mul.js');\n\ntest('mul', () => {\n  assert.strictEqual(mul(2, 3), 6);\n});\n";
const ESM_TEST: &str = "import test from 'node:test';\nimport assert from 'node:assert';\nimport { mul } from '../mul.mjs';\n\ntest('mul', () => {\n  assert.strictEqual(mul(2, 3), 6);\n});\n";
const JEST_TEST: &str = "const { mul } = require('../mul.js');\n\ntest('mul', () => {\n  expect(mul(2, 3)).toBe(6);\n});\n";
const VITEST_TEST: &str =
    "import { test, expect } from 'vitest';\nimport { mul } from '../mul';\n\ntest('mul', () => {\n  expect(mul(2, 3)).toBe(6);\n});\n";
const MOCHA_TEST: &str = "const assert = require('node:assert');\nconst { mul } = require('../mul.js');\n\nit('mul', () => {\n  assert.strictEqual(mul(2, 3), 6);\n});\n";
const PLAIN_CHECK: &str = "const assert = require('node:assert');\nconst { mul } = require('../mul.js');\nassert.strictEqual(mul(2, 3), 6);\nconsole.log('ok');\n";
const GO_TEST: &str =
    "package mul\n\nimport \"testing\"\n\nfunc TestMul(t *testing.T) {\n\tif Mul(2, 3) != 6 {\n\t\tt.Fatal(\"mul\")\n\t}\n}\n";
const GO_MOD: &str = "module example.com/m\n\ngo 1.21\n";
const RUST_TEST: &str = "#[test]\nfn mul() {\n    assert_eq!(m::mul(2, 3), 6);\n}\n";
const CARGO_TOML: &str = "[package]\nname = \"m\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
const UNITTEST_MAIN: &str = "import unittest\n\nfrom mul import mul\n\n\nclass TestMul(unittest.TestCase):\n    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n";

/// One row: the command, the pinned files, other files of the input, and the files the probe
/// changes each with a text its added test holds (or a part of the reason it is skipped).
struct Row {
    cmd: &'static str,
    pinned: &'static [(&'static str, &'static str)],
    extra: &'static [(&'static str, &'static str)],
    want: Result<&'static [(&'static str, &'static str)], &'static str>,
}

const fn row(
    cmd: &'static str,
    pinned: &'static [(&'static str, &'static str)],
    extra: &'static [(&'static str, &'static str)],
    want: Result<&'static [(&'static str, &'static str)], &'static str>,
) -> Row {
    Row { cmd, pinned, extra, want }
}

const NODE_CJS: &[(&str, &str)] = &[("test/mul.test.js", CJS_TEST)];
const REQUIRED: &[(&str, &str)] = &[("test/mul.test.js", "require(\"node:test\")(\"plancd probe 42\"")];
const IMPORTED: &[(&str, &str)] = &[("test/mul.test.js", "import plancdProbeTest42 from \"node:test\";\nplancdProbeTest42(")];
const JEST_FILE: &[(&str, &str)] = &[("test/mul.test.js", JEST_TEST)];
const JEST_ADDED: &[(&str, &str)] = &[("test/mul.test.js", "globalThis.test(\"plancd probe 42\"")];
const MOCHA_FILE: &[(&str, &str)] = &[("test/mul.js", MOCHA_TEST)];
const GO_FILE: &[(&str, &str)] = &[("pkg/mul_test.go", GO_TEST)];
const GO_ADDED: &[(&str, &str)] = &[("pkg/mul_test.go", "func TestPlancdProbe42(t *testing.T) {\n\tt.Fatal(\"plancd-probe-42")];
const GO_INPUT: &[(&str, &str)] = &[("go.mod", GO_MOD), ("pkg/mul.go", "package mul\n")];
const RUST_FILE: &[(&str, &str)] = &[("tests/mul.rs", RUST_TEST)];
const RUST_ADDED: &[(&str, &str)] = &[("tests/mul.rs", "#[test]\nfn plancd_probe_42() {\n    panic!(\"plancd-probe-42")];
const CARGO_INPUT: &[(&str, &str)] = &[("Cargo.toml", CARGO_TOML), ("src/lib.rs", "pub fn mul(a: i32, b: i32) -> i32 { a * b }\n")];
const NPM_NODE_TEST: &[(&str, &str)] = &[("package.json", "{\"scripts\": {\"test\": \"node --test\"}}")];

fn rows() -> Vec<Row> {
    vec![
        // node's test runner
        row("node --test test/mul.test.js", NODE_CJS, &[], Ok(REQUIRED)),
        row("node --test --test-reporter spec test/mul.test.js", NODE_CJS, &[], Ok(REQUIRED)),
        row("node --test", &[("test/mul.test.js", CJS_TEST), ("lib/helper.js", "")], &[], Ok(REQUIRED)),
        row("node --test", &[("src/mul.spec.js", CJS_TEST)], &[], Err("none of the files node --test runs")),
        row("node --test", &[("node_modules/x/test/a.test.js", CJS_TEST)], &[], Err("none of the files")),
        row(
            "node --test test/mul.test.mjs",
            &[("test/mul.test.mjs", ESM_TEST)],
            &[],
            Ok(&[("test/mul.test.mjs", "import plancdProbeTest42 from \"node:test\"")]),
        ),
        row("node --test test/mul.test.js", &[("test/mul.test.js", ESM_TEST)], &[("package.json", "{\"type\": \"module\"}")], Ok(IMPORTED)),
        row("node --test test/mul.test.js", &[("test/mul.test.js", ESM_TEST)], &[], Ok(IMPORTED)),
        row(
            "node --test test/mul.test.js",
            NODE_CJS,
            &[("package.json", "{\"type\": \"module\"}"), ("test/package.json", "{}")],
            Ok(REQUIRED),
        ),
        row("node --test --test-name-pattern=mul test/mul.test.js", NODE_CJS, &[], Err("selects single tests")),
        row("node --test --test-only test/mul.test.js", NODE_CJS, &[], Err("selects single tests")),
        row("node --test test/", NODE_CJS, &[], Err("is a folder")),
        row("node --test test/mul.test.js --no-warnings", NODE_CJS, &[], Err("follows the files")),
        row("node --test --frobnicate test/mul.test.js", NODE_CJS, &[], Err("does not know")),
        row("node --test test/mul.test.js", &[("test/mul.test.js", "require('../mul');\nprocess.exit(0);\n")], &[], Err("process.exit")),
        row(
            "node --test test/mul.test.js",
            &[("test/mul.test.js", "const test = require('node:test');\ntest.only('x', () => {});\n")],
            &[],
            Err("focuses"),
        ),
        // node running a file
        row("node test/mul.test.js", NODE_CJS, &[], Ok(REQUIRED)),
        row(
            "node test/check.js",
            &[("test/check.js", PLAIN_CHECK)],
            &[],
            Ok(&[(
                "test/check.js",
                "require('../mul.js');\n\n\n// plancd-probe-42: plancd checks that this test fails.\nthrow new Error(\"plancd-probe-42",
            )]),
        ),
        row(
            "node test/check.js",
            &[("test/check.js", "#!/usr/bin/env node\nconst ok = check();\nprocess.exit(ok ? 0 : 1);\n")],
            &[],
            Ok(&[("test/check.js", "#!/usr/bin/env node\n\n\n// plancd-probe-42")]),
        ),
        row(
            "node test/check.mjs",
            &[("test/check.mjs", "import {\n  mul,\n} from '../mul.mjs';\nprocess.exit(mul(2, 3) === 6 ? 0 : 1);\n")],
            &[],
            Ok(&[("test/check.mjs", "} from '../mul.mjs';\n\n\n// plancd-probe-42")]),
        ),
        row("node --check test/mul.test.js", NODE_CJS, &[], Err("`node --check` is not a runner the probe knows")),
        row("node other.js", NODE_CJS, &[], Err("none of the files node FILE runs")),
        // package scripts and npx
        row("npm test", NODE_CJS, NPM_NODE_TEST, Ok(REQUIRED)),
        row("npm run test", NODE_CJS, NPM_NODE_TEST, Ok(REQUIRED)),
        row("npm -s t", NODE_CJS, NPM_NODE_TEST, Ok(REQUIRED)),
        row("npm run unit", NODE_CJS, &[("package.json", "{\"scripts\": {\"unit\": \"node --test test/mul.test.js\"}}")], Ok(REQUIRED)),
        row("npm test -- --test-name-pattern=x", NODE_CJS, NPM_NODE_TEST, Err("selects single tests")),
        row("npm test", NODE_CJS, &[], Err("there is no package.json")),
        row("npm test", NODE_CJS, &[("package.json", "{\"scripts\": {}}")], Err("no `test` script")),
        row(
            "npm test",
            NODE_CJS,
            &[("package.json", "{\"scripts\": {\"test\": \"tsc && node --test\"}}")],
            Err("more than one simple command"),
        ),
        row(
            "npm test",
            NODE_CJS,
            &[("package.json", "{\"scripts\": {\"test\": \"npm run unit\", \"unit\": \"npm test\"}}")],
            Err("too deep"),
        ),
        row("npm ci", NODE_CJS, NPM_NODE_TEST, Err("`npm` is not a runner the probe knows")),
        row("yarn test", NODE_CJS, NPM_NODE_TEST, Ok(REQUIRED)),
        row("pnpm run test", NODE_CJS, NPM_NODE_TEST, Ok(REQUIRED)),
        row("pnpm test test/mul.test.js", NODE_CJS, NPM_NODE_TEST, Err("passes arguments")),
        // jest
        row("npm test", JEST_FILE, &[("package.json", "{\"scripts\": {\"test\": \"jest --ci\"}}")], Ok(JEST_ADDED)),
        row("npx jest", JEST_FILE, &[], Ok(JEST_ADDED)),
        row("npx --no-install jest test/mul.test.js", JEST_FILE, &[], Ok(JEST_ADDED)),
        row("./node_modules/.bin/jest ./test/mul", JEST_FILE, &[], Ok(JEST_ADDED)),
        row("npx jest other", JEST_FILE, &[], Err("none of the files jest runs")),
        row("npx jest 'mul$'", JEST_FILE, &[], Err("cannot read")),
        row("npx jest -t mul", JEST_FILE, &[], Err("does not know")),
        row("npx jest", &[("test/mul.js", JEST_TEST)], &[], Err("none of the files")),
        row("npx jest", &[("__tests__/mul.js", JEST_TEST)], &[], Ok(&[("__tests__/mul.js", "globalThis.test(")])),
        row("npx jest", JEST_FILE, &[("jest.config.js", "module.exports = {};")], Err("jest.config.js configures the runner")),
        row("npx jest", JEST_FILE, &[("package.json", "{\"jest\": {\"testMatch\": []}}")], Err("package.json configures jest")),
        row("npx jest", NODE_CJS, &[], Err("uses node:test")),
        row("npx jest", &[("test/mul.test.js", "describe.only('m', () => {});\n")], &[], Err("focuses")),
        // vitest
        row(
            "npx vitest run test/mul",
            &[("test/mul.test.ts", VITEST_TEST)],
            &[],
            Ok(&[("test/mul.test.ts", "import { test as plancdProbeTest42 } from \"vitest\";\nplancdProbeTest42(")]),
        ),
        row("npx vitest run", &[("test/mul.test.ts", JEST_TEST)], &[], Err("does not import vitest")),
        row("npx vitest run", &[("test/mul.test.ts", VITEST_TEST)], &[("vite.config.ts", "")], Err("vite.config.ts configures")),
        row("npx vitest run test/mul.test.ts:3", &[("test/mul.test.ts", VITEST_TEST)], &[], Err("names single tests")),
        row("npx vitest watch", &[("test/mul.test.ts", VITEST_TEST)], &[], Err("not a test run")),
        // mocha
        row("npx mocha", MOCHA_FILE, &[], Ok(&[("test/mul.js", "globalThis.it(\"plancd probe 42\"")])),
        row("npx mocha", &[("test/unit/mul.js", MOCHA_TEST)], &[], Err("none of the files mocha runs")),
        row("npx mocha --recursive", &[("test/unit/mul.js", MOCHA_TEST)], &[], Ok(&[("test/unit/mul.js", "globalThis.it(")])),
        row("npx mocha spec/mul.js", &[("spec/mul.js", MOCHA_TEST)], &[], Ok(&[("spec/mul.js", "globalThis.it(")])),
        row("npx mocha --grep mul", MOCHA_FILE, &[], Err("does not know")),
        row("npx mocha", MOCHA_FILE, &[(".mocharc.yml", "ui: tdd\n")], Err(".mocharc.yml configures")),
        row("npx mocha", MOCHA_FILE, &[("test/other.js", "it.only('x', () => {});\n")], Err("test/other.js focuses tests")),
        // go
        row("go test ./...", GO_FILE, GO_INPUT, Ok(GO_ADDED)),
        row("go test -v -count=1 -timeout 60s ./pkg", GO_FILE, GO_INPUT, Ok(GO_ADDED)),
        row("go test ./pkg/...", GO_FILE, GO_INPUT, Ok(GO_ADDED)),
        row("go test example.com/m/...", GO_FILE, GO_INPUT, Ok(GO_ADDED)),
        row("go test ./other", GO_FILE, GO_INPUT, Err("none of the files go test runs")),
        row("go test", GO_FILE, GO_INPUT, Err("none of the files")),
        row("go test", &[("mul_test.go", GO_TEST)], GO_INPUT, Ok(&[("mul_test.go", "func TestPlancdProbe42(")])),
        row("go test -run TestMul ./...", GO_FILE, GO_INPUT, Err("does not know")),
        row("go test ./... -args -test.run=x", GO_FILE, GO_INPUT, Err("does not know")),
        row("go test ./...", GO_FILE, &[], Err("no go.mod")),
        row("go test ./...", GO_FILE, &[("go.mod", GO_MOD), ("go.work", "")], Err("go.work")),
        row("go test ./...", &[("pkg/mul_test.go", "//go:build integration\n\npackage mul\n")], GO_INPUT, Err("build constraint")),
        row(
            "go test ./...",
            &[("pkg/mul_test.go", "// Package mul.\npackage mul\n\nfunc TestMul(t *T) {}\n")],
            GO_INPUT,
            Ok(&[("pkg/mul_test.go", "package mul\n\nimport \"testing\"\n\nfunc TestMul")]),
        ),
        row("go test ./...", &[("pkg/mul_windows_test.go", GO_TEST)], GO_INPUT, Err("none of the files")),
        row(
            "go test ./...",
            &[("sub/mul_test.go", GO_TEST)],
            &[("go.mod", GO_MOD), ("sub/go.mod", "module x\n")],
            Err("none of the files"),
        ),
        row("go test ./...", &[("testdata/mul_test.go", GO_TEST)], GO_INPUT, Err("none of the files")),
        row("go vet ./...", GO_FILE, GO_INPUT, Err("`go` is not a runner the probe knows")),
        // cargo
        row("cargo test", RUST_FILE, CARGO_INPUT, Ok(RUST_ADDED)),
        row("cargo test -q --test mul", RUST_FILE, CARGO_INPUT, Ok(RUST_ADDED)),
        row("cargo test --test=mul -- --nocapture --test-threads=1", RUST_FILE, CARGO_INPUT, Ok(RUST_ADDED)),
        row("cargo test --test other", RUST_FILE, CARGO_INPUT, Err("none of the files cargo test runs")),
        row("cargo test --lib", RUST_FILE, CARGO_INPUT, Err("none of the files")),
        row("cargo test mul", RUST_FILE, CARGO_INPUT, Err("names single tests")),
        row("cargo test -- mul", RUST_FILE, CARGO_INPUT, Err("names single tests")),
        row("cargo test -- --ignored", RUST_FILE, CARGO_INPUT, Err("does not know")),
        row("cargo test -p m", RUST_FILE, CARGO_INPUT, Err("does not know")),
        row("cargo test --no-run", RUST_FILE, CARGO_INPUT, Err("does not know")),
        row("cargo test", RUST_FILE, &[("Cargo.toml", "[workspace]\nmembers = [\"m\"]\n")], Err("virtual workspace")),
        row(
            "cargo test",
            RUST_FILE,
            &[("Cargo.toml", "[package]\nname = \"m\"\n\n[[test]]\nname = \"mul\"\nharness = false\n")],
            Err("sets which tests build"),
        ),
        row("cargo test", &[("tests/mul.rs", "#![cfg(feature = \"slow\")]\n#[test]\nfn mul() {}\n")], CARGO_INPUT, Err("may leave it out")),
        row("cargo test", &[("tests/mul/main.rs", RUST_TEST)], CARGO_INPUT, Ok(&[("tests/mul/main.rs", "fn plancd_probe_42()")])),
        row("cargo test", &[("tests/common/mod.rs", "pub fn helper() {}\n")], CARGO_INPUT, Err("none of the files")),
        row(
            "cargo test --lib",
            &[("src/tests.rs", "use super::*;\n#[test]\nfn mul_works() {}\n")],
            &[("Cargo.toml", CARGO_TOML), ("src/lib.rs", "pub fn mul() {}\n\n#[cfg(test)]\nmod tests;\n")],
            Ok(&[("src/tests.rs", "fn plancd_probe_42()")]),
        ),
        row(
            "cargo test",
            &[("src/tests.rs", "#[test]\nfn mul_works() {}\n")],
            &[("Cargo.toml", CARGO_TOML), ("src/lib.rs", "#[cfg(feature = \"x\")]\nmod tests;\n")],
            Err("none of the files"),
        ),
        // from a folder of the workspace: the files run are found from there
        row(
            "cd pkg && python3 tests/test_mul.py",
            &[("pkg/tests/test_mul.py", UNITTEST_MAIN)],
            &[],
            Ok(&[("pkg/tests/test_mul.py", "class TestPlancdProbe_42(_plancd_unittest_42.TestCase):")]),
        ),
        row(
            "cd /workspace/web && node --test test/mul.test.js",
            &[("web/test/mul.test.js", CJS_TEST)],
            &[],
            Ok(&[("web/test/mul.test.js", "require(\"node:test\")(\"plancd probe 42\"")]),
        ),
        row("cd pkg && python3 tests/test_mul.py", &[("tests/test_mul.py", UNITTEST_MAIN)], &[], Err("none of the files")),
        row("cd .. && python3 tests/test_mul.py", &[("tests/test_mul.py", UNITTEST_MAIN)], &[], Err("outside the workspace")),
        row("cd /tmp && python3 tests/test_mul.py", &[("tests/test_mul.py", UNITTEST_MAIN)], &[], Err("outside the workspace")),
        row("cd pkg; python3 tests/test_mul.py", &[("pkg/tests/test_mul.py", UNITTEST_MAIN)], &[], Err("more than one simple command")),
        // python running a file
        row(
            "python3 tests/test_mul.py",
            &[("tests/test_mul.py", UNITTEST_MAIN)],
            &[],
            Ok(&[("tests/test_mul.py", "class TestPlancdProbe_42(_plancd_unittest_42.TestCase):")]),
        ),
        row(
            "python3 tests/check.py",
            &[("tests/check.py", "from mul import mul\nassert mul(2, 3) == 6\n")],
            &[],
            Ok(&[("tests/check.py", "\nraise AssertionError(\"plancd-probe-42")]),
        ),
        row(
            "python3 tests/check.py",
            &[("tests/check.py", "import sys\nfrom app import main\nsys.exit(main())\n")],
            &[],
            Ok(&[(
                "tests/check.py",
                "from app import main\n\n# plancd-probe-42: plancd checks that this script fails.\nraise AssertionError",
            )]),
        ),
        row(
            "python3 tests/test_mul.py",
            &[("tests/test_mul.py", "import sys, unittest\nsys.exit(0)\nunittest.main()\n")],
            &[],
            Err("outside a closing"),
        ),
        row(
            "python3 tests/test_mul.py",
            &[("tests/test_mul.py", "import unittest\nunittest.main(defaultTest='x')\n")],
            &[],
            Err("outside a closing `if __name__` block"),
        ),
        // anything else
        row("npx eslint test/mul.test.js", NODE_CJS, &[], Err("`eslint` is not a runner the probe knows")),
        row("make test", NODE_CJS, &[], Err("`make` is not a runner the probe knows")),
    ]
}

#[test]
fn each_runner_gets_a_failing_test_in_the_files_it_certainly_runs() {
    let mut failures = Vec::new();
    for row in rows() {
        let pinned: Vec<FileEntry> = row.pinned.iter().map(|(p, d)| f(p, d)).collect();
        let mut input = pinned.clone();
        input.extend(row.extra.iter().map(|(p, d)| f(p, d)));
        match (plan_probe(row.cmd, &pinned, &Input::from_files(input), "42"), row.want) {
            (ProbePlan::Run(probe), Ok(want)) => {
                let paths: Vec<&str> = probe.files.iter().map(|f| f.path.as_str()).collect();
                let want_paths: Vec<&str> = want.iter().map(|(p, _)| *p).collect();
                if paths != want_paths {
                    failures.push(format!("{}: probes {paths:?}, expected {want_paths:?}", row.cmd));
                    continue;
                }
                for (file, (_, snippet)) in probe.files.iter().zip(want) {
                    let text = String::from_utf8_lossy(&file.data);
                    let original = row.pinned.iter().find(|(p, _)| *p == file.path).map(|(_, d)| *d).unwrap_or_default();
                    let kept = original.lines().all(|l| text.contains(l));
                    if !text.contains(snippet) || !text.contains("plancd-probe-42: this test must fail") || !kept {
                        failures.push(format!("{}: {} lacks {snippet:?} or its original:\n{text}", row.cmd, file.path));
                    }
                }
            }
            (ProbePlan::Skip(why), Err(want)) if why.contains(want) => {}
            (got, want) => failures.push(format!("{}: got {got:?}, expected {want:?}", row.cmd)),
        }
    }
    assert!(failures.is_empty(), "{} rows wrong:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_test_added_to_a_script_with_a_main_guard_comes_before_it() {
    let pinned = [f("tests/test_mul.py", UNITTEST_MAIN)];
    let ProbePlan::Run(probe) = plan_probe("python3 tests/test_mul.py", &pinned, &Input::from_files(pinned.clone()), "9") else {
        panic!("no probe")
    };
    let text = String::from_utf8(probe.files[0].data.clone()).unwrap();
    let (class, guard) = (text.find("class TestPlancdProbe_9").unwrap(), text.find("if __name__").unwrap());
    assert!(class < guard && text.ends_with("unittest.main()\n"), "{text}");
}

#[test]
fn every_row_of_the_table_is_named_once() {
    let mut names: Vec<&str> = PROBE_RUNNERS.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), PROBE_RUNNERS.len());
}

/// Writes `files` under `dir`.
fn write_all(dir: &Path, files: &[FileEntry]) {
    for file in files {
        let path = dir.join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &file.data).unwrap();
    }
}

/// Whether `program` runs here; tests that need it say so when it does not.
fn found(program: &str) -> bool {
    let ok = Command::new(program).arg(if program == "go" { "version" } else { "--version" }).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `{program}` is not installed");
    }
    ok
}

/// Runs `cmd` through `sh` in `dir` with `env` added: whether it passed, and its output.
fn run(dir: &Path, cmd: &str, env: &[(String, String)]) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).current_dir(dir).env("HOME", dir).envs(env.iter().cloned()).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A project where `cmd` passes; with its probe planned and written, `cmd` must fail, and the
/// added test's message must show that it ran.
fn fails_under_the_real_runner(cmd: &str, env: &[(String, String)], project: &[(&str, &str)], pinned: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<FileEntry> = project.iter().map(|(p, d)| f(p, d)).collect();
    write_all(dir.path(), &input);
    let (passed, out) = run(dir.path(), cmd, env);
    assert!(passed, "{cmd} passes as committed:\n{out}");
    let pinned: Vec<FileEntry> = input.iter().filter(|f| pinned.contains(&f.path.as_str())).cloned().collect();
    let plan = plan_probe(cmd, &pinned, &Input::from_files(input.clone()), "77");
    let ProbePlan::Run(probe) = plan else { panic!("{cmd}: no probe: {plan:?}") };
    write_all(dir.path(), &probe.files);
    let (passed, out) = run(dir.path(), cmd, env);
    assert!(!passed && out.contains("plancd-probe-77: this test must fail"), "{cmd}: the probe must fail by its own test:\n{out}");
}

const MUL_CJS: (&str, &str) = ("mul.js", "module.exports = { mul: (a, b) => a * b };\n");

#[test]
fn node_runs_and_fails_each_kind_of_probe() {
    if !found("node") {
        return;
    }
    let cjs = ("test/mul.test.js", CJS_TEST);
    fails_under_the_real_runner("node --test test/mul.test.js", &[], &[MUL_CJS, cjs], &["test/mul.test.js"]);
    fails_under_the_real_runner("node --test", &[], &[MUL_CJS, cjs], &["test/mul.test.js"]);
    fails_under_the_real_runner("node test/mul.test.js", &[], &[MUL_CJS, cjs], &["test/mul.test.js"]);
    fails_under_the_real_runner("node test/check.js", &[], &[MUL_CJS, ("test/check.js", PLAIN_CHECK)], &["test/check.js"]);
    let mul_esm = ("mul.mjs", "export const mul = (a, b) => a * b;\n");
    fails_under_the_real_runner("node --test test/mul.test.mjs", &[], &[mul_esm, ("test/mul.test.mjs", ESM_TEST)], &["test/mul.test.mjs"]);
    let module = ("package.json", "{\"type\": \"module\", \"scripts\": {\"test\": \"node --test\"}}");
    fails_under_the_real_runner(
        "node --test test/mul.test.js",
        &[],
        &[mul_esm, module, ("test/mul.test.js", ESM_TEST)],
        &["test/mul.test.js"],
    );
    if found("npm") {
        fails_under_the_real_runner("npm test", &[], &[mul_esm, module, ("test/mul.test.js", ESM_TEST)], &["test/mul.test.js"]);
    }
}

#[test]
fn python_runs_and_fails_a_script_probe() {
    if !found("python3") {
        return;
    }
    let mul = ("mul.py", "def mul(a, b):\n    return a * b\n");
    let env = [("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()), ("PYTHONPATH".to_owned(), ".".to_owned())];
    fails_under_the_real_runner("python3 tests/test_mul.py", &env, &[mul, ("tests/test_mul.py", UNITTEST_MAIN)], &["tests/test_mul.py"]);
    let check = ("tests/check.py", "from mul import mul\nassert mul(2, 3) == 6\n");
    fails_under_the_real_runner("python3 tests/check.py", &env, &[mul, check], &["tests/check.py"]);
    let nested = [("pkg/mul.py", mul.1), ("pkg/tests/test_mul.py", UNITTEST_MAIN)];
    fails_under_the_real_runner("cd pkg && python3 tests/test_mul.py", &env, &nested, &["pkg/tests/test_mul.py"]);
}

#[test]
fn cargo_runs_and_fails_an_integration_test_probe() {
    if !found("cargo") {
        return;
    }
    let target = tempfile::tempdir().unwrap();
    let home = std::env::var("HOME").unwrap_or_default();
    let var = |name: &str, default: String| (name.to_owned(), std::env::var(name).unwrap_or(default));
    let env = [
        ("CARGO_TARGET_DIR".to_owned(), target.path().display().to_string()),
        var("CARGO_HOME", format!("{home}/.cargo")),
        var("RUSTUP_HOME", format!("{home}/.rustup")),
    ];
    let lib = ("src/lib.rs", "pub fn mul(a: i32, b: i32) -> i32 {\n    a * b\n}\n");
    fails_under_the_real_runner(
        "cargo test --offline -q",
        &env,
        &[("Cargo.toml", CARGO_TOML), lib, ("tests/mul.rs", RUST_TEST)],
        &["tests/mul.rs"],
    );
}

#[test]
fn go_runs_and_fails_a_test_probe() {
    if !found("go") {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let env = [("GOCACHE".to_owned(), cache.path().display().to_string()), ("GOFLAGS".to_owned(), "-mod=mod".to_owned())];
    let project =
        [("go.mod", GO_MOD), ("pkg/mul.go", "package mul\n\nfunc Mul(a, b int) int { return a * b }\n"), ("pkg/mul_test.go", GO_TEST)];
    fails_under_the_real_runner("go test ./...", &env, &project, &["pkg/mul_test.go"]);
}
