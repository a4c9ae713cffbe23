//! Text a guest chose, made safe to print on an operator's terminal.

/// `text` safe to print on a terminal: every control character (C0, DEL,
/// C1) and bidirectional override becomes a visible escape (`\n`, `\x1b`,
/// `\u{202e}`), and `\` becomes `\\` so the result reads one way only.
/// What `ps` shows is the guest's to choose — a command line, or anything
/// a supervisor's impostor answers — and an escape sequence reaching the
/// operator's terminal could retitle it, rewrite what it shows, or set its
/// clipboard (OSC 52).
pub fn printable(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_a_guest_chose_reaches_the_terminal_raw() {
        assert_eq!(printable("sh -c 'echo hi'"), "sh -c 'echo hi'");
        assert_eq!(
            printable("x\u{1b}]52;c;aGk=\u{7}y\n\tz\r"),
            "x\\x1b]52;c;aGk=\\x07y\\n\\tz\\r"
        );
        assert_eq!(printable("\u{7f}\u{9b}31m"), "\\x7f\\u{9b}31m");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(printable("C:\\x1b"), "C:\\\\x1b", "a literal backslash reads as one");
        assert_eq!(printable("héllo ✓"), "héllo ✓");
    }
}
