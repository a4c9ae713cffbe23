//! How the command line says what went wrong: one line, without the
//! kernel's error numbers.

/// A command's arguments were wrong: one line, status 125.
pub(crate) fn usage_error(e: &anyhow::Error) -> i32 {
    eprintln!("xvisor: {}", plain(&format!("{e:#}")));
    125
}

/// Drops the " (os error N)" that `std::io::Error` appends: the kernel's
/// words are enough for a person, and the number is noise on one line.
pub(crate) fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (os error ") {
        let tail = &rest[at + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &tail[digits + 1..];
        } else {
            out.push_str(&rest[..at + 1]);
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_error_numbers_are_dropped() {
        assert_eq!(
            super::plain("cannot x: Permission denied (os error 13)"),
            "cannot x: Permission denied"
        );
        assert_eq!(super::plain("a (os error 2) b (os error 3)"), "a b");
        assert_eq!(
            super::plain("keep (os error x) and (os error "),
            "keep (os error x) and (os error "
        );
    }
}
