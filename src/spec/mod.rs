//! Plans and contracts: the model, loading from YAML or JSON, schema and semantic checks with
//! positioned diagnostics, and spec hashes.
//!
//! Loading is two layers. [`Document::parse`] turns bytes into a JSON value and refuses what
//! is not a sound document (bad syntax, duplicate keys, alias bombs, deep nesting, huge files).
//! Then the schema is checked, and if the value has the right shape, the semantics of the plan
//! ([`check_plan`]). Every problem becomes a [`Diagnostic`] naming the file, line, column and
//! field.

mod check;
mod diagnostic;
mod document;
mod hash;
mod ids;
mod model;
mod path;
mod repo;
mod schema;
mod source;

use serde::de::DeserializeOwned;

pub use check::{CheckContext, check_plan};
pub use diagnostic::{Diagnostic, Severity, did_you_mean};
pub use document::{Document, Format, Limits, Pos, SyntaxError};
pub use hash::{HashError, SpecHash, canonical_json, hex, sha256_hex, spec_hashes};
pub use ids::{is_branch_todo_id, normalize_relative, ref_component_problem, relative_path_problem};
pub use model::{
    AcceptanceCriteria, AcceptanceTest, BUILTIN_FAILURE_TYPES, BranchReason, Contract, DataModel, Field, Interface, InterfaceKind, Method,
    Role, Task, TestSkeleton, TodoList,
};
pub use path::{FieldPath, Seg};
pub use repo::{FileKind, InvalidPlan, PlanFile, Specs, classify, load_specs, load_specs_in};
pub use schema::Schema;
pub use source::{DirSource, FileSource, TreeSource};

/// Parses `bytes` (the file `file`) and checks it against `schema`. Returns the typed value
/// with its document when the shape is right, and every problem found either way.
pub fn parse_checked<T: DeserializeOwned>(file: &str, bytes: &[u8], schema: Schema) -> (Option<(T, Document)>, Vec<Diagnostic>) {
    let doc = match Document::parse(bytes, Format::from_path(file), &Limits::default()) {
        Ok(doc) => doc,
        Err(errors) => return (None, errors.into_iter().map(|e| Diagnostic::from_syntax(file, e)).collect()),
    };
    let mut diags = schema.check(&doc, file);
    match T::deserialize(&doc.value) {
        Ok(value) => (Some((value, doc)), diags),
        Err(e) => {
            if diags.is_empty() {
                // The schema and the model disagree: still the file's fault, still reported.
                diags.push(Diagnostic::error(file, Pos::START, "schema", e.to_string()));
            }
            (None, diags)
        }
    }
}

/// Loads and checks one plan file.
pub fn load_plan(file: &str, bytes: &[u8], cx: &CheckContext<'_>) -> (Option<TodoList>, Vec<Diagnostic>) {
    let (parsed, mut diags) = parse_checked::<TodoList>(file, bytes, Schema::TodoList);
    let Some((list, doc)) = parsed else { return (None, diags) };
    diags.extend(check_plan(&list, &doc, file, cx));
    diags.sort_by_key(|d| (d.line, d.column));
    let valid = !diags.iter().any(Diagnostic::is_error);
    (valid.then_some(list), diags)
}

/// Loads and checks one contract file.
pub fn load_contract(file: &str, bytes: &[u8]) -> (Option<Contract>, Vec<Diagnostic>) {
    let (parsed, diags) = parse_checked::<Contract>(file, bytes, Schema::Contract);
    let valid = !diags.iter().any(Diagnostic::is_error);
    (parsed.filter(|_| valid).map(|(c, _)| c), diags)
}

#[cfg(test)]
mod fuzz {
    //! Hostile input never panics or overflows the stack: random bytes, token soup that
    //! drives the YAML parser into odd states, and random plan-shaped documents.

    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn source() -> DirSource {
        DirSource::new(std::env::temp_dir().join("plancd-fuzz-empty-repo"))
    }

    fn load_all_ways(bytes: &[u8]) {
        let source = source();
        let cx = CheckContext::without_config(&source);
        for file in ["p.yaml", "p.json"] {
            let (plan, diags) = load_plan(file, bytes, &cx);
            // A plan comes back only when no error was found, and errors always say where.
            assert_eq!(plan.is_some(), !diags.iter().any(Diagnostic::is_error));
            assert!(diags.iter().all(|d| d.line >= 1 && d.column >= 1));
            let _ = load_contract(file, bytes);
        }
    }

    fn yaml_soup() -> impl Strategy<Value = String> {
        let tokens = prop::sample::select(vec![
            "- ",
            ": ",
            "[",
            "]",
            "{",
            "}",
            ", ",
            "&a ",
            "*a",
            "&b ",
            "*b",
            "\n",
            "  ",
            "    ",
            "key",
            "'q'",
            "\"q\\n\"",
            "|\n",
            ">-\n",
            "---\n",
            "...\n",
            "? ",
            "!!str ",
            "!!int ",
            "!x ",
            "#c",
            "\t",
            "todo_list_id",
            "tasks",
            "id",
            "dependencies",
            "agent_role",
            "coder",
            "~",
            "1e3",
            "0x1F",
            "<<: ",
            "%YAML 1.2\n",
            "\u{feff}",
            "é",
            "\"",
            "'",
            "\\",
            "\r",
            "%",
            "@",
            "`",
        ]);
        prop::collection::vec(tokens, 0..300).prop_map(|t| t.concat())
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof![4 => "[a-z][a-z0-9_]{0,6}", 1 => ".{0,8}"]
    }

    fn plan_like() -> impl Strategy<Value = Value> {
        let task = (
            id(),
            prop::collection::vec(id(), 0..4),
            prop_oneof![Just("coder".to_owned()), Just("tester".to_owned()), "[a-z]{1,8}"],
            any::<bool>(),
            prop::option::of(".{0,12}"),
        )
            .prop_map(|(id, deps, role, approval, contract)| {
                let mut t = json!({"id": id, "title": "T", "agent_role": role, "dependencies": deps, "requires_approval": approval});
                if let Some(c) = contract {
                    t["contract"] = json!(c);
                }
                t
            });
        (id(), prop::collection::vec(task, 0..12)).prop_map(|(wf, tasks)| json!({"todo_list_id": wf, "title": "W", "tasks": tasks}))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            load_all_ways(&bytes);
        }

        #[test]
        fn yaml_token_soup_never_panics(text in yaml_soup()) {
            load_all_ways(text.as_bytes());
        }

        #[test]
        fn random_plans_never_panic(plan in plan_like()) {
            load_all_ways(serde_json::to_string_pretty(&plan).unwrap().as_bytes());
            load_all_ways(serde_json::to_string(&plan).unwrap().as_bytes());
        }
    }

    #[test]
    fn deep_nesting_of_every_kind_stays_off_the_stack() {
        // Run on a small stack: a recursive parser would overflow it long before the limit.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                for text in [
                    "[".repeat(100_000),
                    "{a: ".repeat(100_000),
                    "- ".repeat(100_000),
                    (0..3000).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
                ] {
                    load_all_ways(text.as_bytes());
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
