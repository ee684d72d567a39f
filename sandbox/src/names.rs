//! Which workspace paths may leave a sandbox: relative, UTF-8, printable, and never a path git
//! itself refuses (`.git` in any case or disguise, anywhere in the path).
//!
//! One policy for every way out ([`crate::copyout`] inside, [`crate::copyback`] on the host),
//! so that a name refused on one side is refused on the other.

use std::fmt;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameRefusal {
    /// Not valid UTF-8.
    NotUtf8,
    /// Absolute, empty, or with `.`, `..`, `//` or a backslash.
    NotRelative,
    /// Holds a control character (ESC, newline, DEL, C1 controls) or a bidirectional override.
    ControlCharacter,
    /// A component is `.git` (any case, trailing dots or spaces, NTFS streams, ignorable Unicode,
    /// the `git~1` short name): git's own folder, which runs commands from its config and hooks.
    GitDir,
}

impl NameRefusal {
    /// The CamelCase reason, for status and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            NameRefusal::NotUtf8 => "NotUtf8",
            NameRefusal::NotRelative => "NotRelative",
            NameRefusal::ControlCharacter => "ControlCharacter",
            NameRefusal::GitDir => "GitDir",
        }
    }
}

impl fmt::Display for NameRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameRefusal::NotUtf8 => "name refused: not UTF-8",
            NameRefusal::NotRelative => "name refused: not a plain relative path",
            NameRefusal::ControlCharacter => "name refused: control character",
            NameRefusal::GitDir => "name refused: inside .git",
        })
    }
}

/// Why `path` may not leave the sandbox, or `None` when it may.
pub fn refusal(path: &str) -> Option<NameRefusal> {
    if path.chars().any(is_control) {
        return Some(NameRefusal::ControlCharacter);
    }
    if crate::check_relative(path).is_err() {
        return Some(NameRefusal::NotRelative);
    }
    if path.split('/').any(is_git_name) {
        return Some(NameRefusal::GitDir);
    }
    None
}

/// [`refusal`] of a name in bytes (tar headers, directory entries).
pub fn refusal_bytes(path: &[u8]) -> Option<NameRefusal> {
    match std::str::from_utf8(path) {
        Ok(path) => refusal(path),
        Err(_) if path.iter().any(|b| b.is_ascii_control()) => Some(NameRefusal::ControlCharacter),
        Err(_) => Some(NameRefusal::NotUtf8),
    }
}

/// C0 and C1 controls, DEL, and the bidirectional controls that reorder what a terminal shows.
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Code points HFS+ ignores when comparing names (git's `is_hfs_dotgit`).
fn hfs_ignorable(c: char) -> bool {
    matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

/// Whether one path component names git's folder on some filesystem: `.git` in any case, with
/// trailing dots or spaces or an NTFS stream (`.git::$INDEX_ALLOCATION`), with HFS-ignorable
/// code points, or as the 8.3 short names `git~N` (and `.git~N`).
pub fn is_git_name(component: &str) -> bool {
    let folded: String = component.chars().filter(|c| !hfs_ignorable(*c)).collect::<String>().to_ascii_lowercase();
    let stem = folded.split(':').next().unwrap_or_default().trim_end_matches(['.', ' ']);
    let short = stem.strip_prefix('.').unwrap_or(stem).strip_prefix("git~");
    stem == ".git" || short.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_folders_are_refused_in_every_disguise() {
        let cases = [
            (".git/config", Some(NameRefusal::GitDir)),
            ("sub/.git/hooks/pre-commit", Some(NameRefusal::GitDir)),
            (".GIT/config", Some(NameRefusal::GitDir)),
            (".Git./config", Some(NameRefusal::GitDir)),
            (".git . /config", Some(NameRefusal::GitDir)),
            (".git::$INDEX_ALLOCATION/config", Some(NameRefusal::GitDir)),
            ("GIT~1/config", Some(NameRefusal::GitDir)),
            (".git~1/config", Some(NameRefusal::GitDir)),
            ("\u{200c}.git/config", Some(NameRefusal::GitDir)),
            (".g\u{feff}it/config", Some(NameRefusal::GitDir)),
            ("a/.git", Some(NameRefusal::GitDir)),
            (".gitignore", None),
            (".github/workflows/ci.yml", None),
            ("git/config", None),
            ("my.git/x", None),
            (".gitx/y", None),
            ("git~x", None),
            ("src/main.rs", None),
            ("caf\u{e9}.txt", None),
        ];
        for (path, want) in cases {
            assert_eq!(refusal(path), want, "{path:?}");
        }
    }

    #[test]
    fn control_characters_and_odd_paths_are_refused() {
        for path in ["a\u{1b}[31mb", "a\nb", "tab\there", "del\u{7f}", "c1\u{9b}2J", "rtl\u{202e}txt.exe", "bell\u{7}"] {
            assert_eq!(refusal(path), Some(NameRefusal::ControlCharacter), "{path:?}");
        }
        for path in ["", "/etc/passwd", "../x", "a//b", "./a", "a\\b"] {
            assert_eq!(refusal(path), Some(NameRefusal::NotRelative), "{path:?}");
        }
        assert_eq!(refusal_bytes(b"\xff\xfe"), Some(NameRefusal::NotUtf8));
        assert_eq!(refusal_bytes(b"\xff\n"), Some(NameRefusal::ControlCharacter));
        assert_eq!(refusal_bytes(b"ok/name.txt"), None);
        assert_eq!(NameRefusal::GitDir.reason(), "GitDir");
    }
}
