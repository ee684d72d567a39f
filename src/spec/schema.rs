//! The JSON Schemas in `schemas/`, embedded in the binary, and their errors turned into
//! diagnostics that name the line, the field and the fix.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::diagnostic::{Diagnostic, did_you_mean};
use super::document::Document;
use super::path::{FieldPath, Seg};

/// One of plancd's schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// A plan file.
    TodoList,
    /// A contract.
    Contract,
    /// `plancd.yaml`.
    Config,
    /// A task's `status.json`.
    Status,
    /// `plancd serve --config FILE`.
    Serve,
    /// The replies file of the scripted model.
    Scripted,
}

impl Schema {
    /// How many schemas there are.
    const COUNT: usize = 6;

    /// Every schema, with the file name it is published under.
    pub const ALL: [(Schema, &'static str); Schema::COUNT] = [
        (Schema::TodoList, "todo_list.schema.json"),
        (Schema::Contract, "contract.schema.json"),
        (Schema::Config, "config.schema.json"),
        (Schema::Status, "status.schema.json"),
        (Schema::Serve, "serve.schema.json"),
        (Schema::Scripted, "scripted.schema.json"),
    ];

    /// The schema's JSON text, as published in `schemas/`.
    pub fn source(self) -> &'static str {
        match self {
            Schema::TodoList => include_str!("../../schemas/todo_list.schema.json"),
            Schema::Contract => include_str!("../../schemas/contract.schema.json"),
            Schema::Config => include_str!("../../schemas/config.schema.json"),
            Schema::Status => include_str!("../../schemas/status.schema.json"),
            Schema::Serve => include_str!("../../schemas/serve.schema.json"),
            Schema::Scripted => include_str!("../../schemas/scripted.schema.json"),
        }
    }

    fn slot(self) -> &'static OnceLock<(Value, Validator)> {
        static SLOTS: [OnceLock<(Value, Validator)>; Schema::COUNT] = [const { OnceLock::new() }; Schema::COUNT];
        &SLOTS[self as usize]
    }

    fn compiled(self) -> &'static (Value, Validator) {
        self.slot().get_or_init(|| {
            let schema: Value = serde_json::from_str(self.source()).expect("embedded schemas are valid JSON (a unit test checks)");
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema)
                .expect("embedded schemas compile (a unit test checks)");
            (schema, validator)
        })
    }

    /// Whether `value` passes the schema.
    pub fn is_valid(self, value: &Value) -> bool {
        self.compiled().1.is_valid(value)
    }

    /// Every schema error in `doc`, as diagnostics in source order.
    pub fn check(self, doc: &Document, file: &str) -> Vec<Diagnostic> {
        let (schema, validator) = self.compiled();
        if validator.is_valid(&doc.value) {
            return Vec::new();
        }
        let mut out: Vec<Diagnostic> = validator.iter_errors(&doc.value).flat_map(|e| describe(&e, schema, doc, file)).collect();
        out.sort_by_key(|d| (d.line, d.column));
        out.dedup();
        out
    }
}

fn describe(e: &ValidationError<'_>, schema: &Value, doc: &Document, file: &str) -> Vec<Diagnostic> {
    let path = instance_path(e);
    let at = |p: &FieldPath| doc.locate(p);
    let diag = |p: FieldPath, message: String| Diagnostic::error(file, at(&p), "schema", message).field(p);
    match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = allowed_properties(schema, e.schema_path().as_str());
            unexpected
                .iter()
                .map(|name| {
                    let p = path.key(name);
                    Diagnostic::error(file, doc.locate_key(&p), "unknown-field", format!("unknown field `{name}`")).field(p).maybe_help(
                        did_you_mean(name, known.iter().map(String::as_str))
                            .or_else(|| (!known.is_empty()).then(|| format!("known fields here: {}", known.join(", ")))),
                    )
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![diag(path, format!("missing required field `{name}`")).help(format!("add `{name}:`"))]
        }
        ValidationErrorKind::Enum { options } => {
            let names: Vec<&str> = options.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let given = e.instance().as_str().map_or_else(|| e.instance().to_string(), str::to_owned);
            let help = did_you_mean(&given, names.iter().copied()).unwrap_or_else(|| format!("use one of: {}", names.join(", ")));
            vec![diag(path, format!("`{given}` is not one of: {}", names.join(", "))).help(help)]
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => type_words(&t.to_string()).to_owned(),
                TypeKind::Multiple(ts) => ts.iter().map(|t| type_words(&t.to_string()).to_owned()).collect::<Vec<_>>().join(" or "),
            };
            let found = e.instance();
            let mut d = diag(path, format!("expected {expected}, found {} `{}`", type_name(found), short(found)));
            if expected == "true or false" && found.is_string() {
                d = d.help("write `true` or `false` (in YAML 1.2, `yes` and `no` are strings)");
            } else if expected.contains("a string") && !found.is_string() {
                d = d.help("quote the value");
            }
            vec![d]
        }
        ValidationErrorKind::PropertyNames { error } => {
            let key = error.instance().as_str().unwrap_or_default().to_owned();
            let p = path.key(&key);
            let inner = describe(error, schema, doc, file);
            let why = inner.first().map_or_else(|| error.to_string(), |d| d.message.clone());
            vec![Diagnostic::error(file, doc.locate_key(&p), "schema", format!("invalid key `{key}`: {why}")).field(p)]
        }
        ValidationErrorKind::UniqueItems => {
            let dup = first_duplicate(e.instance()).map_or_else(String::new, |v| format!(": `{}` appears twice", short(v)));
            vec![diag(path, format!("items must be unique{dup}")).help("remove the repeated item")]
        }
        ValidationErrorKind::MinItems { limit: 1 } => {
            vec![diag(path, "must not be empty".to_owned()).help("add at least one item, or remove the key")]
        }
        ValidationErrorKind::MinLength { limit: 1 } => {
            vec![diag(path, "must not be empty".to_owned()).help("write a value, or remove the key")]
        }
        ValidationErrorKind::Pattern { pattern } => {
            vec![diag(path, format!("`{}` does not match the pattern `{pattern}`", short(e.instance())))]
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            vec![diag(path, lowercase_first(&e.to_string())).help(format!("use a value of at least {limit}"))]
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            vec![diag(path, lowercase_first(&e.to_string())).help(format!("use a value of at most {limit}"))]
        }
        _ => vec![diag(path, lowercase_first(&e.to_string()))],
    }
}

fn instance_path(e: &ValidationError<'_>) -> FieldPath {
    let mut path = FieldPath::root();
    for seg in e.instance_path().segments() {
        path.push(match seg {
            LocationSegment::Property(k) => Seg::Key(k.into_owned()),
            LocationSegment::Index(i) => Seg::Index(i),
        });
    }
    path
}

/// The property names the schema allows at the object whose `additionalProperties` failed.
fn allowed_properties(schema: &Value, schema_path: &str) -> Vec<String> {
    let mut segs: Vec<&str> = schema_path.split('/').skip(1).collect();
    if segs.last() == Some(&"additionalProperties") {
        segs.pop();
    }
    let mut node = schema;
    for seg in segs {
        let next = if seg == "$ref" {
            node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')).and_then(|ptr| schema.pointer(ptr))
        } else {
            match node {
                Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => node.get(seg),
            }
        };
        match next {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|props| props.keys().filter(|k| !k.starts_with('$')).cloned().collect())
        .unwrap_or_default()
}

/// JSON Schema's type names in the words of someone writing YAML.
fn type_words(t: &str) -> &str {
    match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "a string",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        other => other,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "a whole number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Array(_) => "[...]".into(),
        Value::Object(_) => "{...}".into(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 { format!("{}...", s.chars().take(57).collect::<String>()) } else { s }
}

fn first_duplicate(v: &Value) -> Option<&Value> {
    let items = v.as_array()?;
    items.iter().enumerate().find(|(i, a)| items[..*i].contains(a)).map(|(_, a)| a)
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if !s.starts_with('"') => c.to_lowercase().chain(chars).collect(),
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::document::{Format, Limits};

    fn check_yaml(schema: Schema, text: &str) -> Vec<Diagnostic> {
        let doc = Document::parse(text.as_bytes(), Format::Yaml, &Limits::default()).unwrap();
        schema.check(&doc, "p.yaml")
    }

    #[test]
    fn every_embedded_schema_compiles_and_matches_its_published_file() {
        for (schema, name) in Schema::ALL {
            assert!(!schema.compiled().0.is_null());
            let published = std::fs::read_to_string(format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            assert_eq!(published, schema.source(), "{name}");
        }
    }

    #[test]
    fn unknown_fields_point_at_the_key_and_suggest_the_field() {
        let d = check_yaml(
            Schema::TodoList,
            "todo_list_id: w\ntitle: t\ntasks:\n  - id: a\n    title: A\n    agent_role: coder\n    dependecies: [b]\n",
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].line, d[0].column), (7, 5));
        assert_eq!(d[0].field.as_ref().unwrap().to_string(), "tasks[0].dependecies");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `dependencies`?"));
    }

    #[test]
    fn enum_type_and_required_errors_read_well() {
        let d = check_yaml(
            Schema::TodoList,
            "todo_list_id: w\ntitle: t\ntasks:\n  - id: a\n    title: A\n    agent_role: archtect\n    requires_approval: yes\n  - title: B\n    agent_role: coder\n",
        );
        let messages: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(d.len(), 3, "{messages:#?}");
        assert!(messages[0].starts_with("p.yaml:6:17: error[schema]: tasks[0].agent_role: `archtect` is not one of"), "{}", messages[0]);
        assert!(messages[0].contains("did you mean `architect`?"));
        assert!(messages[1].contains("tasks[0].requires_approval: expected true or false, found a string `yes`"), "{}", messages[1]);
        assert!(messages[2].starts_with("p.yaml:8:5: error[schema]: tasks[1]: missing required field `id`"), "{}", messages[2]);
    }

    #[test]
    fn a_valid_status_record_passes() {
        let status = serde_json::json!({
            "api_version": "plancd/v1", "workflow_id": "w", "task_id": "t", "phase": "Succeeded",
            "attempt": 1, "updated_at": "2026-01-01T00:00:00Z", "spec_hash": "0".repeat(64)
        });
        assert!(Schema::Status.is_valid(&status));
        assert!(!Schema::Status.is_valid(&serde_json::json!({"phase": "Done"})));
    }
}
