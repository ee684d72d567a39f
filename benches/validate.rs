//! Benchmark: parse and validate 10,000 tasks (100 plan files x 100 tasks), against a bare
//! `serde_json` parse of the same plans as JSON, measured in the same process.
//!
//! Run with `cargo bench --bench validate`. Prints medians of repeated runs and the ratios;
//! it asserts nothing, because timing on shared machines is noisy.

use std::hint::black_box;
use std::time::{Duration, Instant};

use plancd::config::Config;
use plancd::spec::{CheckContext, DirSource, load_plan, load_specs};
use serde_json::{Value, json};

const FILES: usize = 100;
const TASKS: usize = 100;
const RUNS: usize = 15;

fn plan(file: usize) -> Value {
    let roles = ["architect", "coder", "tester", "coder", "debugger"];
    let tasks: Vec<Value> = (0..TASKS)
        .map(|i| {
            let deps: Vec<String> = [i / 2, i.saturating_sub(1), i.saturating_sub(7)]
                .into_iter()
                .filter(|&d| d < i)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|d| format!("t{d:03}"))
                .collect();
            json!({
                "id": format!("t{i:03}"),
                "title": format!("Task {i} of workflow {file}"),
                "description": "Implement the module as the contract says, with tests for the edge cases and no new dependencies.",
                "agent_role": roles[i % roles.len()],
                "dependencies": deps,
                "outputs": [format!("src/mod_{i}.py")],
                "timeout_seconds": 600,
                "acceptance_criteria": {
                    "tests": [{"cmd": format!("python3 -m unittest tests/test_mod_{i}.py"), "timeout_seconds": 120}],
                },
                "failure_routing": {"implementation_bug": "coder", "spec_mismatch": "architect", "timeout": "tester"},
                "max_debug_attempts": 3,
            })
        })
        .collect();
    json!({"todo_list_id": format!("wf{file:03}"), "title": format!("Workflow {file}"), "description": "Generated for the benchmark.", "tasks": tasks})
}

/// A YAML rendering of a plan, block style, as people write them.
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(v, indent + 2, out);
                    }
                    scalar_or_flow => out.push_str(&format!("{pad}{k}: {scalar_or_flow}\n")),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let mut inner = String::new();
                yaml(item, indent + 2, &mut inner);
                out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
            }
        }
        scalar => out.push_str(&format!("{pad}{scalar}\n")),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(dir.path().join("plans")).expect("plans folder");
    let config = "plans: ['plans/**/*.yaml']\nroles:\n  architect: { command: [a] }\n  coder: { command: [a] }\n  tester: { command: [a] }\n  debugger: { command: [a] }\n";
    std::fs::write(dir.path().join("plancd.yaml"), config).expect("config");
    let plans: Vec<Value> = (0..FILES).map(plan).collect();
    let json_files: Vec<(String, Vec<u8>)> =
        plans.iter().enumerate().map(|(i, p)| (format!("plans/wf{i:03}.json"), serde_json::to_vec_pretty(p).expect("json"))).collect();
    let yaml_files: Vec<(String, Vec<u8>)> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut text = String::new();
            yaml(p, 0, &mut text);
            (format!("plans/wf{i:03}.yaml"), text.into_bytes())
        })
        .collect();
    for (name, bytes) in &yaml_files {
        std::fs::write(dir.path().join(name), bytes).expect("plan file");
    }
    let source = DirSource::new(dir.path());
    let cx = CheckContext::without_config(&source);

    // Sanity: everything generated is valid, so the benchmark measures the success path.
    for (name, bytes) in json_files.iter().chain(&yaml_files) {
        let (plan, diags) = load_plan(name, bytes, &cx);
        assert!(plan.is_some(), "{name}: {diags:?}");
    }
    let config = Config::load(&source).expect("config loads").0;
    let specs = load_specs(&source, &config).expect("repository loads");
    assert_eq!(specs.plans.len(), FILES);
    assert!(!specs.has_errors());

    let json_bytes: usize = json_files.iter().map(|(_, b)| b.len()).sum();
    let yaml_bytes: usize = yaml_files.iter().map(|(_, b)| b.len()).sum();

    let baseline = measure(|| {
        for (_, bytes) in &json_files {
            black_box(serde_json::from_slice::<Value>(bytes).expect("json"));
        }
    });
    let json_validate = measure(|| {
        for (name, bytes) in &json_files {
            black_box(load_plan(name, bytes, &cx));
        }
    });
    let yaml_validate = measure(|| {
        for (name, bytes) in &yaml_files {
            black_box(load_plan(name, bytes, &cx));
        }
    });
    let yaml_parse = measure(|| {
        for (_, bytes) in &yaml_files {
            black_box(plancd::spec::Document::parse(bytes, plancd::spec::Format::Yaml, &Default::default()).expect("parses"));
        }
    });
    let yaml_events = measure(|| {
        for (_, bytes) in &yaml_files {
            let text = std::str::from_utf8(bytes).expect("utf8");
            let mut parser = saphyr_parser::Parser::new_from_str(text);
            while let Some(ev) = parser.next_event() {
                black_box(ev.expect("event"));
            }
        }
    });
    let values: Vec<Value> = json_files.iter().map(|(_, b)| serde_json::from_slice(b).expect("json")).collect();
    let schema_only = measure(|| {
        for v in &values {
            black_box(plancd::spec::Schema::TodoList.is_valid(v));
        }
    });
    let typed_only = measure(|| {
        for v in &values {
            black_box(<plancd::spec::TodoList as serde::Deserialize>::deserialize(v).expect("typed"));
        }
    });
    let repository = measure(|| {
        black_box(load_specs(&source, &config).expect("repository loads"));
    });

    println!("plan validation: {FILES} files x {TASKS} tasks = {} tasks; median of {RUNS} runs", FILES * TASKS);
    println!("  JSON {:.1} MiB, YAML {:.1} MiB", json_bytes as f64 / 1048576.0, yaml_bytes as f64 / 1048576.0);
    println!("  baseline  serde_json::from_slice::<Value>, JSON in memory   {:8.1} ms   1.00x", ms(baseline));
    for (what, d) in [
        ("plancd    parse + schema + semantics, JSON in memory", json_validate),
        ("plancd    parse + schema + semantics, YAML in memory", yaml_validate),
        ("plancd    load_specs: YAML repository from disk      ", repository),
    ] {
        println!("  {what} {:8.1} ms {:6.2}x", ms(d), d.as_secs_f64() / baseline.as_secs_f64());
    }
    println!("  where the time goes (single thread):");
    for (what, d) in [
        ("YAML events (saphyr-parser alone)", yaml_events),
        ("YAML to a JSON value", yaml_parse),
        ("JSON Schema check", schema_only),
        ("typed model from the value", typed_only),
    ] {
        println!("    {what:<36} {:8.1} ms {:6.2}x", ms(d), d.as_secs_f64() / baseline.as_secs_f64());
    }
    println!("  load_specs reads files on {} threads", std::thread::available_parallelism().map_or(1, usize::from));
}
