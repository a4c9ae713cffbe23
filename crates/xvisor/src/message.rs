//! How the command line says what went wrong: one line, without the
//! kernel's error numbers; and how it writes its output, which a reader
//! may stop reading at any moment (`xvisor ps | head -1`).

use std::io::Write;

/// `print!` that never panics: see [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::message::write_out(format_args!($($arg)*), false)
    };
}

/// `println!` that never panics: see [`write_out`].
macro_rules! outln {
    () => {
        $crate::message::write_out(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::message::write_out(format_args!($($arg)*), true)
    };
}

/// Writes to standard output. A reader that went away (a closed pipe)
/// ends the command quietly with 141, the status a shell gives a program
/// a SIGPIPE ended, as a C tool's end would be; any other failure to
/// write is said in one line, status 125. (`print!` would panic.)
pub(crate) fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| if newline { stdout.write_all(b"\n") } else { Ok(()) })
        .and_then(|()| if newline { stdout.flush() } else { Ok(()) });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => {
            eprintln!("xvisor: cannot write the output: {}", plain(&e.to_string()));
            std::process::exit(125);
        }
    }
}

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
