//! Sandbox text made safe for a terminal or a log: a command's output and the names of its
//! files are shown, never interpreted.
//!
//! Escape sequences (ESC, CSI, OSC), carriage returns, backspaces and other control
//! characters become visible escapes (`\x1b`, `\r`, `\u{9b}`); invalid UTF-8 becomes `\xNN`.
//! Newlines and tabs are kept in output, escaped in names. A line of output that starts
//! with plancd's own marker ([`STATUS_MARKER`]) is shown with a leading `\`, so that what
//! plancd says can be told from what a command printed.

use std::fmt::Write;

/// How plancd's own lines around a command's output start.
pub const STATUS_MARKER: &str = "plancd:";

fn push_char(out: &mut String, c: char, keep_lines: bool) {
    match c {
        '\n' | '\t' if keep_lines => out.push(c),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 && crate::names::is_control(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if crate::names::is_control(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

fn escape_bytes(bytes: &[u8], keep_lines: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c, keep_lines);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A command's output as text safe to print: controls escaped, lines and tabs kept, and a
/// line that would pass for plancd's own marked with a leading `\`.
pub fn output(bytes: &[u8]) -> String {
    let text = controls(bytes);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with(STATUS_MARKER) {
            out.push('\\');
        }
        out.push_str(line);
    }
    out
}

/// Text safe to print, controls escaped, lines and tabs kept, no line marked (for logs
/// that mix a command's output with plancd's own lines).
pub fn controls(bytes: &[u8]) -> String {
    escape_bytes(bytes, true)
}

/// A name (a path) safe to print on one line: every control character escaped.
pub fn name(text: &str) -> String {
    escape_bytes(text.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_interpreted() {
        let cases: [(&[u8], &str); 8] = [
            (b"plain text\n\tindented\n", "plain text\n\tindented\n"),
            (b"\x1b[2J\x1b[31mred\x1b[0m", "\\x1b[2J\\x1b[31mred\\x1b[0m"),
            (b"\x1b]0;title\x07", "\\x1b]0;title\\x07"),
            (b"progress\rdone", "progress\\rdone"),
            ("c1 \u{9b}2J".as_bytes(), "c1 \\u{9b}2J"),
            (b"bad \xff\xfe utf8", "bad \\xff\\xfe utf8"),
            (b"plancd: sandbox (process): exit 0\n", "\\plancd: sandbox (process): exit 0\n"),
            (b"ok\n  plancd: forged\nx plancd: fine", "ok\n\\  plancd: forged\nx plancd: fine"),
        ];
        for (given, shown) in cases {
            assert_eq!(output(given), shown, "{:?}", String::from_utf8_lossy(given));
        }
        assert!(!output(b"\x1b\x9b\x07\x08\x7f").bytes().any(|b| b.is_ascii_control()));
    }

    #[test]
    fn names_are_escaped_onto_one_line() {
        assert_eq!(name("a\nb\u{1b}[0m\u{202e}c"), "a\\nb\\x1b[0m\\u{202e}c");
        assert_eq!(name("src/caf\u{e9}.py"), "src/caf\u{e9}.py");
    }
}
