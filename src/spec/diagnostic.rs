//! Diagnostics: one problem in one file, with where it is, what it is and what to do.

use std::fmt;

use serde::Serialize;

use super::document::{Pos, SyntaxError};
use super::path::FieldPath;

/// How bad a diagnostic is. Errors make a file invalid; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file cannot be used as it is.
    Error,
    /// The file works, but probably not as meant.
    Warning,
}

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file, as the user named it (or relative to the repository).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The field concerned, e.g. `tasks[3].dependencies[0]`.
    #[serde(serialize_with = "ser_path")]
    pub field: Option<FieldPath>,
    /// A stable kebab-case name for the kind of problem, e.g. `unknown-dependency`.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

fn ser_path<S: serde::Serializer>(p: &Option<FieldPath>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&p.to_string()),
        None => s.serialize_none(),
    }
}

impl Diagnostic {
    /// An error at `pos` in `file`.
    pub fn error(file: &str, pos: Pos, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            field: None,
            code,
            severity: Severity::Error,
            message: message.into(),
            help: None,
        }
    }

    /// A warning at `pos` in `file`.
    pub fn warning(file: &str, pos: Pos, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(file, pos, code, message) }
    }

    /// Names the field concerned.
    pub fn field(mut self, path: FieldPath) -> Diagnostic {
        self.field = Some(path);
        self
    }

    /// Adds advice.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds advice when there is some.
    pub fn maybe_help(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }

    /// The diagnostic for a file that could not be parsed.
    pub fn from_syntax(file: &str, e: SyntaxError) -> Diagnostic {
        Diagnostic { field: e.path, help: e.help, ..Diagnostic::error(file, e.pos, "syntax", e.message) }
    }

    /// Whether this diagnostic makes its file invalid.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: error[code]: field: message`, then `  help: ...` on its own line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {severity}[{}]: ", self.file, self.line, self.column, self.code)?;
        if let Some(field) = self.field.as_ref().filter(|p| !p.segs().is_empty()) {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Suggests the closest of `candidates` to `given`, when one is close enough to be a typo.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_field_and_help() {
        let d = Diagnostic::error("plans/a.yaml", Pos { line: 12, column: 9 }, "unknown-dependency", "no task `t9` in this plan")
            .field(FieldPath::parse("tasks[3].dependencies[0]"))
            .help("did you mean `t1`?");
        assert_eq!(
            d.to_string(),
            "plans/a.yaml:12:9: error[unknown-dependency]: tasks[3].dependencies[0]: no task `t9` in this plan\n  help: did you mean `t1`?"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["field"], "tasks[3].dependencies[0]");
        assert_eq!(json["severity"], "error");
    }

    #[test]
    fn suggests_only_near_misses() {
        assert_eq!(did_you_mean("archtect", ["architect", "coder"]).as_deref(), Some("did you mean `architect`?"));
        assert_eq!(did_you_mean("zzz", ["architect", "coder"]), None);
    }
}
