//! Ids and paths that end up in git refs and in the repository: what makes them safe.

/// Why `id` cannot be one component of a git ref name (`refs/ai/tasks/<workflow>/<task>`),
/// or `None` when it can. Stricter than `git check-ref-format`: no leading `-` (it reads as an
/// option) and no characters that shells and URLs treat specially.
pub fn ref_component_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("is empty".into());
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Some(format!("contains the control character U+{:04X}", u32::from(c)));
    }
    if let Some(c) = id.chars().find(|c| " ~^:?*[\\/".contains(*c) || c.is_whitespace()) {
        let shown = if c == ' ' { "a space".to_owned() } else { format!("`{c}`") };
        return Some(format!("contains {shown}"));
    }
    if id.contains("..") {
        return Some("contains `..`".into());
    }
    if id.contains("@{") || id == "@" {
        return Some("contains `@{`".into());
    }
    if id.starts_with('.') || id.starts_with('-') {
        return Some(format!("starts with `{}`", &id[..1]));
    }
    if id.ends_with('.') {
        return Some("ends with `.`".into());
    }
    if id.ends_with(".lock") {
        return Some("ends with `.lock`".into());
    }
    None
}

/// Whether `id` has the form plancd gives branch todos: `<task>_branch_NN`.
pub fn is_branch_todo_id(id: &str) -> bool {
    id.rsplit_once("_branch_").is_some_and(|(parent, n)| !parent.is_empty() && n.len() >= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Why `path` is not a safe repository-relative file path, or `None` when it is.
pub fn relative_path_problem(path: &str) -> Option<String> {
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..3) == Some(":\\") {
        return Some("is absolute; paths are relative to the repository root".into());
    }
    if path.contains('\\') {
        return Some("contains `\\`; use `/` between folders".into());
    }
    if path.chars().any(char::is_control) {
        return Some("contains a control character".into());
    }
    if path.split('/').any(|c| c == "..") {
        return Some("leaves the repository through `..`".into());
    }
    if path.split('/').any(|c| c == ".git") {
        return Some("points into `.git`".into());
    }
    None
}

/// Normalises a safe relative path: drops `./` components and repeated slashes.
pub fn normalize_relative(path: &str) -> String {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["t1_add", "sma-crossover", "v1.2", "A_b-c.d", "x"] {
            assert_eq!(ref_component_problem(id), None, "{id}");
        }
    }

    #[test]
    fn refuses_what_git_or_a_shell_would_trip_on() {
        let cases = [
            ("a/b", "`/`"),
            ("a..b", "`..`"),
            ("a@{1}", "`@{`"),
            ("x.lock", "`.lock`"),
            ("has space", "a space"),
            ("tab\there", "control"),
            (".hidden", "starts with `.`"),
            ("-rf", "starts with `-`"),
            ("end.", "ends with `.`"),
            ("star*", "`*`"),
            ("", "empty"),
        ];
        for (id, why) in cases {
            let problem = ref_component_problem(id).unwrap_or_default();
            assert!(problem.contains(why), "{id:?}: {problem}");
        }
    }

    #[test]
    fn recognises_branch_todo_ids() {
        assert!(is_branch_todo_id("t2_indicators_branch_01"));
        assert!(!is_branch_todo_id("t2_branch_x"));
        assert!(!is_branch_todo_id("_branch_01"));
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        assert_eq!(relative_path_problem("contracts/sma.yaml"), None);
        assert!(relative_path_problem("/etc/passwd").is_some());
        assert!(relative_path_problem("a/../../b").is_some());
        assert!(relative_path_problem(".git/config").is_some());
        assert_eq!(normalize_relative("./a//b/./c"), "a/b/c");
    }
}
