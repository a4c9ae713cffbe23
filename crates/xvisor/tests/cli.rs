//! The command line around the commands: `--version` (with the commit),
//! `xvisor completions bash|zsh|fish` (each script loaded by its own shell
//! and asked for completions) and `xvisor man` (rendered by groff without a
//! warning). The scripts and the page come from the same help texts as
//! `--help`; a unit test in src/cli.rs checks those against the parsers.

#[macro_use]
mod common;

use std::process::Command;

use common::*;

fn shell(name: &str) -> String {
    for dir in ["/usr/bin", "/bin"] {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is needed to check its completion script (scripts/setup installs it)");
}

#[test]
fn version_names_the_commit() {
    let out = ok(&run(Caller::Root, &["--version"]));
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let want = match head {
        Some(commit) => format!("xvisor {} (commit {commit})\n", env!("CARGO_PKG_VERSION")),
        None => format!("xvisor {} (commit unknown)\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(out, want);
    assert_eq!(ok(&run(Caller::Root, &["-V"])), want);
}

/// What bash completes for the words of `line` (the last one is being
/// typed), with the script `xvisor completions bash` prints.
fn bash_completes(script: &str, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\nCOMP_WORDS=({}); COMP_CWORD={}; _xvisor; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words.join(" "),
        line.len() - 1
    );
    let out = Command::new(shell("bash"))
        .args(["--norc", "-c", &program])
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", binary().parent().unwrap().display()),
        )
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_options_and_values() {
    let script = ok(&run(Caller::Root, &["completions", "bash"]));
    let has = |line: &[&str], want: &[&str]| {
        let got = bash_completes(&script, line);
        for w in want {
            assert!(got.iter().any(|g| g == w), "{line:?}: {w} not among {got:?}");
        }
    };
    has(&["xvisor", "r"], &["run", "rm"]);
    has(&["xvisor", "co"], &["completions"]);
    has(&["xvisor", "run", "--me"], &["--memory"]);
    has(
        &["xvisor", "run", "--"],
        &["--env-file", "--read-only", "--tmpfs", "--volume"],
    );
    has(&["xvisor", "run", "--net", ""], &["none", "host"]);
    has(&["xvisor", "run", "--userns", "h"], &["host"]);
    has(&["xvisor", "exec", "-"], &["-i", "--tty", "--user"]);
    has(&["xvisor", "logs", "--"], &["--follow", "--tail"]);
    has(&["xvisor", "completions", ""], &["bash", "zsh", "fish"]);
    has(&["xvisor", "help", "ex"], &["exec"]);
}

#[test]
fn zsh_and_fish_load_their_scripts() {
    let zsh = ok(&run(Caller::Root, &["completions", "zsh"]));
    let dir = TempDir::new("zsh-completion");
    std::fs::write(dir.join("_xvisor"), &zsh).unwrap();
    // Loaded by zsh's completion system, the function is defined and the
    // command is bound to it.
    let program = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -d {}/dump; print -r -- $_comps[xvisor]",
        dir.str(),
        dir.str()
    );
    let out = Command::new(shell("zsh"))
        .args(["-f", "-c", &program])
        .env("HOME", dir.str())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "_xvisor",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = Command::new(shell("zsh"))
        .args(["-n"])
        .arg(dir.join("_xvisor"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let fish = ok(&run(Caller::Root, &["completions", "fish"]));
    let file = dir.join("xvisor.fish");
    std::fs::write(&file, &fish).unwrap();
    let program = format!(
        "source {}; complete -C 'xvisor run --me'; complete -C 'xvisor run --net '; complete -C 'xvisor st'",
        file.display()
    );
    let out = Command::new(shell("fish"))
        .args(["--no-config", "-c", &program])
        .env("HOME", dir.str())
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", binary().parent().unwrap().display()),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for want in ["--memory", "none", "host", "stop"] {
        assert!(
            text.lines().any(|l| l.split('\t').next() == Some(want)),
            "fish does not complete {want}: {text}"
        );
    }
}

#[test]
fn unknown_shells_are_refused_with_one_line() {
    let o = run(Caller::Root, &["completions", "tcsh"]);
    assert_eq!(code(&o), 125);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("bash, zsh or fish"), "{}", stderr(&o));
}

#[test]
fn the_man_page_renders_cleanly_and_lists_every_command() {
    let page = ok(&run(Caller::Root, &["man"]));
    assert!(page.starts_with(".TH XVISOR 1 "), "{}", &page[..page.len().min(200)]);
    let dir = TempDir::new("man");
    std::fs::write(dir.join("xvisor.1"), &page).unwrap();
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(dir.join("xvisor.1"))
        .output()
        .expect("groff is needed to render the man page (apt-get install groff-base)");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && warnings.is_empty(), "groff: {warnings}");
    // groff writes the roff minus as U+2212, and bold as overstrikes
    // (each letter, a backspace, the letter again).
    let raw: Vec<char> = String::from_utf8_lossy(&out.stdout)
        .replace('\u{2212}', "-")
        .chars()
        .collect();
    let text: String = raw
        .iter()
        .enumerate()
        .filter(|(i, c)| **c != '\u{8}' && raw.get(i + 1) != Some(&'\u{8}'))
        .map(|(_, c)| c)
        .collect();
    for section in [
        "xvisor run",
        "xvisor exec",
        "xvisor image",
        "xvisor completions",
        "--memory",
        "--env-file",
        "EXIT STATUS",
    ] {
        assert!(text.contains(section), "the page lacks {section}");
    }
}

/// A reader that stops reading (`xvisor syscalls | head -1`) ends the
/// command quietly, as a SIGPIPE ends a C tool (status 141), never with a
/// panic; a full disk is one line, 125.
#[test]
fn output_to_a_reader_that_went_away_ends_quietly() {
    for args in [&["syscalls"][..], &["man"], &["oci", "features"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(binary()).args(args).stdout(writer).output().unwrap();
        assert_eq!(o.status.code(), Some(141), "{args:?}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = Command::new(binary()).arg("syscalls").stdout(full).output().unwrap();
    assert_eq!(code(&o), 125);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}
