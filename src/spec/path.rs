//! Field paths as people read them: `tasks[3].dependencies[0]`.

use std::fmt;

use serde_json::Value;

/// One step into a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// A path from a document's root to one of its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldPath(Vec<Seg>);

impl FieldPath {
    /// The document itself.
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// The segments from the root.
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// Appends one step.
    pub fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }

    /// This path with `key` appended.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut p = self.clone();
        p.push(Seg::Key(key.to_owned()));
        p
    }

    /// This path with `index` appended.
    pub fn index(&self, index: usize) -> FieldPath {
        let mut p = self.clone();
        p.push(Seg::Index(index));
        p
    }

    /// Builds a path from JSON pointer segments, reading `value` to tell indexes from keys
    /// that happen to be numbers.
    pub fn from_pointer<'a>(value: &Value, segments: impl IntoIterator<Item = &'a str>) -> FieldPath {
        let mut path = FieldPath::root();
        let mut current = Some(value);
        for seg in segments {
            match (current, seg.parse::<usize>()) {
                (Some(Value::Array(items)), Ok(i)) => {
                    current = items.get(i);
                    path.push(Seg::Index(i));
                }
                (cur, _) => {
                    current = cur.and_then(|v| v.get(seg));
                    path.push(Seg::Key(seg.to_owned()));
                }
            }
        }
        path
    }

    /// Parses the display form back (`a.b[2].c`); for tests and command-line arguments.
    /// Keys with dots or brackets cannot be written this way.
    pub fn parse(text: &str) -> FieldPath {
        let mut path = FieldPath::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                if open > 0 {
                    path.push(Seg::Key(rest[..open].to_owned()));
                }
                rest = &rest[open..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let Some(close) = stripped.find(']') else { break };
                    if let Ok(i) = stripped[..close].parse() {
                        path.push(Seg::Index(i));
                    }
                    rest = &stripped[close + 1..];
                }
            } else {
                path.push(Seg::Key(rest.to_owned()));
            }
        }
        path
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{}]", Value::String(k.clone()))?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_people_write_it() {
        let p = FieldPath::root().key("tasks").index(3).key("dependencies").index(0);
        assert_eq!(p.to_string(), "tasks[3].dependencies[0]");
        assert_eq!(FieldPath::parse("tasks[3].dependencies[0]"), p);
        let odd = FieldPath::root().key("failure_routing").key("a b");
        assert_eq!(odd.to_string(), "failure_routing[\"a b\"]");
        assert_eq!(FieldPath::root().to_string(), "(document)");
    }

    #[test]
    fn pointers_tell_indexes_from_numeric_keys() {
        let v = serde_json::json!({"tasks": [{"1": "x"}]});
        let p = FieldPath::from_pointer(&v, ["tasks", "0", "1"]);
        assert_eq!(p.segs(), &[Seg::Key("tasks".into()), Seg::Index(0), Seg::Key("1".into())]);
    }
}
