//! Spec hashes: what a task's result depends on, as one sha256.
//!
//! The hash covers the canonical JSON of the task (defaults applied, dependencies as a set),
//! the canonical JSON of its contract, the bytes of its pinned test files, and the spec hashes
//! of its dependencies, so that a change anywhere upstream re-runs everything downstream (as
//! in Bazel or Nix) while formatting, key order and YAML versus JSON change nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::document::{Document, Format, Limits};
use super::model::TodoList;
use super::source::FileSource;
use crate::graph::TaskGraph;

/// A task's spec hash: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecHash(String);

impl SpecHash {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, for tables.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    /// Accepts 64 lowercase hex digits.
    pub fn parse(s: &str) -> Option<SpecHash> {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then(|| SpecHash(s.to_owned()))
    }
}

impl fmt::Display for SpecHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why spec hashes could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The plan has a dependency cycle.
    #[error("dependency cycle: {0}")]
    Cycle(crate::graph::Cycle),
    /// A file the hash covers could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file the hash covers is missing.
    #[error("`{path}` does not exist")]
    Missing {
        /// The file.
        path: String,
    },
    /// A contract could not be parsed.
    #[error("contract `{path}` is not valid YAML or JSON: {message}")]
    Contract {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Serialises `value` as canonical JSON: object keys sorted, no whitespace, serde_json's
/// number and string forms. Equal values give equal bytes whatever their source syntax.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("writing a string to a Vec cannot fail");
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("writing a scalar to a Vec cannot fail"),
    }
}

/// sha256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The spec hash of every task of `list`, reading contracts and pinned test files from
/// `source`. The plan must have passed validation; a cycle or a missing file is an error.
pub fn spec_hashes(list: &TodoList, source: &dyn FileSource) -> Result<HashMap<String, SpecHash>, HashError> {
    let graph = TaskGraph::from_list(list);
    let order = graph.topological_order().map_err(HashError::Cycle)?;
    let mut hashes: HashMap<String, SpecHash> = HashMap::with_capacity(list.tasks.len());
    let mut contracts: HashMap<&str, Value> = HashMap::new();
    for id in order {
        let task = list.task(id).expect("graph ids come from the plan");
        let contract = match &task.contract {
            Some(path) => {
                if let Some(producer) = list.produced_upstream(id, path).filter(|_| !source.is_file(path)) {
                    // Written by an upstream task: covered by that task's hash.
                    json!({ "produced_by": producer.id })
                } else {
                    if !contracts.contains_key(path.as_str()) {
                        contracts.insert(path, read_contract(source, path)?);
                    }
                    contracts[path.as_str()].clone()
                }
            }
            None => Value::Null,
        };
        let mut files = BTreeMap::new();
        for path in &task.acceptance_criteria.files {
            let bytes = read(source, path)?;
            files.insert(path.clone(), sha256_hex(&bytes));
        }
        let deps: BTreeMap<&str, &str> = graph.dependencies(id).into_iter().map(|d| (d, hashes[d].as_str())).collect();
        let mut spec = serde_json::to_value(task).expect("a task always serialises");
        if let Some(Value::Array(d)) = spec.get_mut("dependencies") {
            d.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
        let input = json!({
            "v": 1,
            "task": spec,
            "contract": contract,
            "files": files,
            "dependencies": deps,
        });
        hashes.insert(id.to_owned(), SpecHash(sha256_hex(&canonical_json(&input))));
    }
    Ok(hashes)
}

fn read(source: &dyn FileSource, path: &str) -> Result<Vec<u8>, HashError> {
    source
        .read(path)
        .map_err(|e| HashError::Read { path: path.to_owned(), source: e })?
        .ok_or_else(|| HashError::Missing { path: path.to_owned() })
}

fn read_contract(source: &dyn FileSource, path: &str) -> Result<Value, HashError> {
    let bytes = read(source, path)?;
    Document::parse(&bytes, Format::from_path(path), &Limits::default()).map(|d| d.value).map_err(|e| HashError::Contract {
        path: path.to_owned(),
        message: e.first().map_or_else(String::new, |e| format!("{}: {}", e.pos, e.message)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::source::DirSource;

    fn list_from(text: &str, format: Format) -> TodoList {
        let doc = Document::parse(text.as_bytes(), format, &Limits::default()).unwrap();
        serde_json::from_value(doc.value).unwrap()
    }

    struct Repo {
        dir: tempfile::TempDir,
    }

    impl Repo {
        fn new() -> Repo {
            let r = Repo { dir: tempfile::tempdir().unwrap() };
            r.write("contracts/c.yaml", "contract_id: c\ninterfaces:\n  - {name: f, type: function, signature: 'def f(): ...'}\n");
            r.write("tests/test_a.py", "def test_a(): pass\n");
            r
        }
        fn write(&self, path: &str, text: &str) {
            let p = self.dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        fn hashes(&self, list: &TodoList) -> HashMap<String, SpecHash> {
            spec_hashes(list, &DirSource::new(self.dir.path())).unwrap()
        }
    }

    const YAML: &str = "todo_list_id: w\ntitle: W\ntasks:\n  - id: a\n    title: A\n    agent_role: coder\n    contract: contracts/c.yaml\n    acceptance_criteria:\n      files: [tests/test_a.py]\n      tests: [{cmd: pytest}]\n  - id: b\n    title: B\n    agent_role: tester\n    dependencies: [a]\n  - id: c\n    title: C\n    agent_role: coder\n";

    #[test]
    fn stable_across_yaml_json_key_order_and_formatting() {
        let repo = Repo::new();
        let yaml = repo.hashes(&list_from(YAML, Format::Yaml));
        let json = r#"{"tasks": [
            {"agent_role": "coder", "title": "A", "id": "a", "contract": "contracts/c.yaml",
             "acceptance_criteria": {"tests": [{"cmd": "pytest", "timeout_seconds": 300}], "files": ["tests/test_a.py"]},
             "max_debug_attempts": 3},
            {"id": "b", "title": "B", "agent_role": "tester", "dependencies": ["a"]},
            {"id": "c", "title": "C", "agent_role": "coder"}],
          "title": "W", "todo_list_id": "w"}"#;
        assert_eq!(yaml, repo.hashes(&list_from(json, Format::Json)));
        // The contract reformatted as JSON with other key order hashes the same.
        repo.write(
            "contracts/c.yaml",
            "{\"interfaces\": [{\"signature\": \"def f(): ...\", \"type\": \"function\", \"name\": \"f\"}], \"contract_id\": \"c\"}",
        );
        assert_eq!(yaml, repo.hashes(&list_from(YAML, Format::Yaml)));
    }

    #[test]
    fn changes_with_every_meaningful_input_and_flows_downstream() {
        let repo = Repo::new();
        let base = repo.hashes(&list_from(YAML, Format::Yaml));
        assert_eq!(base.len(), 3);

        // The task's own spec.
        let edited = repo.hashes(&list_from(&YAML.replace("title: A", "title: A2"), Format::Yaml));
        assert_ne!(edited["a"], base["a"]);
        assert_ne!(edited["b"], base["b"], "a change upstream reaches dependents");
        assert_eq!(edited["c"], base["c"], "unrelated tasks keep their hash");

        // The contract's content.
        repo.write("contracts/c.yaml", "contract_id: c\ninterfaces:\n  - {name: g, type: function, signature: 'def g(): ...'}\n");
        let contract = repo.hashes(&list_from(YAML, Format::Yaml));
        assert_ne!(contract["a"], base["a"]);
        assert_ne!(contract["b"], base["b"]);
        repo.write("contracts/c.yaml", "contract_id: c\ninterfaces:\n  - {name: f, type: function, signature: 'def f(): ...'}\n");

        // A pinned test file's bytes.
        repo.write("tests/test_a.py", "def test_a(): assert True\n");
        let pinned = repo.hashes(&list_from(YAML, Format::Yaml));
        assert_ne!(pinned["a"], base["a"]);
        repo.write("tests/test_a.py", "def test_a(): pass\n");

        // A test command, a timeout, a routing rule.
        for (from, to) in [
            ("cmd: pytest", "cmd: pytest -x"),
            ("agent_role: tester", "agent_role: coder"),
            ("    agent_role: coder\n    contract", "    agent_role: coder\n    timeout_seconds: 60\n    contract"),
        ] {
            let h = repo.hashes(&list_from(&YAML.replacen(from, to, 1), Format::Yaml));
            assert_ne!(h, base, "{from} -> {to}");
        }
        assert_eq!(repo.hashes(&list_from(YAML, Format::Yaml)), base, "restoring the inputs restores the hashes");
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v: Value = serde_json::from_str(r#"{ "b": [1, {"d": 2, "c": "é"}], "a": null }"#).unwrap();
        assert_eq!(String::from_utf8(canonical_json(&v)).unwrap(), r#"{"a":null,"b":[1,{"c":"é","d":2}]}"#);
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
