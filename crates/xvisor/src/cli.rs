//! The command line described once: every command's `--help` text is the
//! source its options are read from, for shell completion (`xvisor
//! completions bash|zsh|fish`) and the man page (`xvisor man`). A test
//! checks that each parser accepts exactly the options its help lists.

use std::fmt::Write as _;

/// One `xvisor` command and its `--help`.
pub struct Command {
    pub name: &'static str,
    /// One line for completion menus.
    pub summary: &'static str,
    pub help: &'static str,
}

/// Every command a person types, in the order `xvisor --help` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "run",
        summary: "run a program in a new instance",
        help: crate::run::HELP,
    },
    Command {
        name: "pool",
        summary: "keep instances built and waiting for fast starts",
        help: crate::pool::HELP,
    },
    Command {
        name: "ps",
        summary: "list instances, or one instance's tasks",
        help: crate::manage::PS_HELP,
    },
    Command {
        name: "exec",
        summary: "run another program in a running instance",
        help: crate::exec::HELP,
    },
    Command {
        name: "logs",
        summary: "show a detached instance's output",
        help: crate::detach::LOGS_HELP,
    },
    Command {
        name: "stop",
        summary: "stop an instance: TERM, then KILL",
        help: crate::detach::STOP_HELP,
    },
    Command {
        name: "wait",
        summary: "wait for a detached instance, print its status",
        help: crate::detach::WAIT_HELP,
    },
    Command {
        name: "inspect",
        summary: "everything about an instance, as JSON",
        help: crate::detach::INSPECT_HELP,
    },
    Command {
        name: "rm",
        summary: "remove an ended detached instance",
        help: crate::detach::RM_HELP,
    },
    Command {
        name: "kill",
        summary: "send a signal to a running instance",
        help: crate::manage::KILL_HELP,
    },
    Command {
        name: "image",
        summary: "import, list, inspect and remove images",
        help: crate::image::HELP,
    },
    Command {
        name: "report",
        summary: "a run's trace as one HTML page",
        help: crate::report::HELP,
    },
    Command {
        name: "syscalls",
        summary: "how each system call is treated under a profile",
        help: crate::syscalls::HELP,
    },
    Command {
        name: "policy",
        summary: "check a policy file, show the built-in profiles",
        help: crate::policy::HELP,
    },
    Command {
        name: "oci",
        summary: "the OCI runtime command line (for engines)",
        help: crate::oci::HELP,
    },
    Command {
        name: "completions",
        summary: "print a shell completion script",
        help: COMPLETIONS_HELP,
    },
    Command {
        name: "man",
        summary: "print the manual page (roff)",
        help: MAN_HELP,
    },
    Command {
        name: "help",
        summary: "show the help of xvisor or of a command",
        help: HELP_HELP,
    },
];

pub const COMPLETIONS_HELP: &str = "\
Print a completion script for a shell: commands, options, option values,
instance and image names.

Usage: xvisor completions bash|zsh|fish

Examples:
  xvisor completions bash > /etc/bash_completion.d/xvisor
  xvisor completions zsh > \"${fpath[1]}/_xvisor\"
  xvisor completions fish > ~/.config/fish/completions/xvisor.fish
";

pub const MAN_HELP: &str = "\
Print xvisor's manual page (roff): every command's help, from the same
text as --help.

Usage: xvisor man

Examples:
  xvisor man > xvisor.1 && man -l xvisor.1
";

const HELP_HELP: &str = "\
Show the help of xvisor, or of a command.

Usage: xvisor help [COMMAND]
";

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// One option as a help text lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub shorts: Vec<char>,
    pub longs: Vec<String>,
    /// The value's placeholder (`SIZE`, `none|host`), if it takes one.
    pub value: Option<String>,
    /// Its description, on one line.
    pub about: String,
}

impl Opt {
    /// The words a value may be, when the help lists them (`none|host`).
    pub fn choices(&self) -> Vec<&str> {
        match &self.value {
            Some(v) if v.contains('|') && v.bytes().all(|b| b.is_ascii_lowercase() || b == b'|') => {
                v.split('|').collect()
            }
            _ => Vec::new(),
        }
    }

    /// What kind of value completes it: a file, an instance, an image.
    fn value_kind(&self) -> ValueKind {
        let v = self.value.as_deref().unwrap_or("");
        if self.longs.iter().any(|l| l == "image") {
            ValueKind::Image
        } else if ["FILE", "DIR", "PATH", "SRC", "PROG", "SOCK"]
            .iter()
            .any(|w| v.contains(w))
        {
            ValueKind::File
        } else {
            ValueKind::Other
        }
    }

    /// `-v, --volume` as a man page shows it.
    fn names(&self) -> Vec<String> {
        self.shorts
            .iter()
            .map(|c| format!("-{c}"))
            .chain(self.longs.iter().map(|l| format!("--{l}")))
            .collect()
    }
}

#[derive(PartialEq)]
enum ValueKind {
    File,
    Image,
    Other,
}

/// The options a help text lists: lines indented by at most six spaces
/// that start with `-`, names separated by commas, then the value's
/// placeholder, then (after two spaces, or on the next lines) the
/// description.
pub fn options(help: &str) -> Vec<Opt> {
    let mut found: Vec<Opt> = Vec::new();
    let mut continuing = false;
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        if body.starts_with('-') && (1..=6).contains(&indent) {
            let (head, about) = match body.find("  ") {
                Some(at) => (&body[..at], body[at..].trim()),
                None => (body, ""),
            };
            let mut opt = Opt {
                shorts: Vec::new(),
                longs: Vec::new(),
                value: None,
                about: about.to_string(),
            };
            for part in head.split(", ") {
                let (name, value) = part.split_once([' ', '=']).unwrap_or((part, ""));
                if let Some(long) = name.strip_prefix("--") {
                    opt.longs.push(long.to_string());
                } else if let Some(short) = name.strip_prefix('-') {
                    opt.shorts.extend(short.chars().next());
                }
                if !value.is_empty() {
                    opt.value = Some(value.trim().to_string());
                }
            }
            found.push(opt);
            continuing = true;
        } else if continuing && indent > 6 && !body.is_empty() {
            let last = found.last_mut().expect("continuing follows an option");
            if !last.about.is_empty() {
                last.about.push(' ');
            }
            last.about.push_str(body);
        } else {
            continuing = false;
        }
    }
    found
}

/// The first sentence of a description, for completion menus.
fn short_about(about: &str) -> String {
    let end = about
        .find(": ")
        .or_else(|| about.find("; "))
        .or_else(|| about.find(". "));
    let s = end.map_or(about, |e| &about[..e]);
    s.trim_end_matches('.').to_string()
}

/// Names that take a value, for one command (its options that have one).
fn valued(opts: &[Opt]) -> Vec<String> {
    opts.iter().filter(|o| o.value.is_some()).flat_map(Opt::names).collect()
}

/// Commands whose words after the options are instance names.
const TAKES_INSTANCE: &[&str] = &["ps", "exec", "logs", "stop", "wait", "inspect", "rm", "kill"];

pub fn completions(shell: &str) -> Option<String> {
    match shell {
        "bash" => Some(bash()),
        "zsh" => Some(zsh()),
        "fish" => Some(fish()),
        _ => None,
    }
}

fn bash() -> String {
    let mut s = String::new();
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    s.push_str("# bash completion for xvisor (xvisor completions bash)\n");
    s.push_str("_xvisor_instances() { xvisor ps -a 2>/dev/null | awk 'NR > 1 { print $1 }'; }\n");
    s.push_str("_xvisor_images() { xvisor image ls 2>/dev/null | awk 'NR > 1 { print $1 }'; }\n");
    s.push_str("_xvisor() {\n");
    s.push_str("    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n");
    s.push_str("    local cmd=\"${COMP_WORDS[1]}\" opts=\"\" valued=\"\"\n");
    s.push_str("    COMPREPLY=()\n");
    let _ = writeln!(
        s,
        "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n        COMPREPLY=($(compgen -W \"{} --help --version\" -- \"$cur\"))\n        return\n    fi",
        names.join(" ")
    );
    s.push_str("    case \"$cmd\" in\n");
    for c in COMMANDS {
        let opts = options(c.help);
        let all: Vec<String> = opts.iter().flat_map(Opt::names).collect();
        let _ = writeln!(
            s,
            "        {}) opts=\"{}\"; valued=\" {} \" ;;",
            c.name,
            all.join(" "),
            valued(&opts).join(" ")
        );
        // Value choices the help lists, and what else a value is.
        let mut cases = String::new();
        for o in &opts {
            let pattern = o.names().join("|");
            if pattern.is_empty() || o.value.is_none() {
                continue;
            }
            let choices = o.choices();
            let line = if !choices.is_empty() {
                format!("COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))", choices.join(" "))
            } else if o.value_kind() == ValueKind::Image {
                "COMPREPLY=($(compgen -W \"$(_xvisor_images)\" -- \"$cur\"))".to_string()
            } else if o.value_kind() == ValueKind::File {
                "COMPREPLY=($(compgen -f -- \"$cur\"))".to_string()
            } else {
                continue;
            };
            let _ = writeln!(
                cases,
                "            {pattern}) [ \"$cmd\" = {} ] && {{ {line}; return; }} ;;",
                c.name
            );
        }
        if !cases.is_empty() {
            s.push_str(&format!(
                "    esac\n    case \"$prev\" in\n{cases}    esac\n    case \"$cmd\" in\n"
            ));
        }
    }
    s.push_str("    esac\n");
    s.push_str("    case \"$valued\" in *\" $prev \"*) return ;; esac\n");
    s.push_str("    if [[ \"$cur\" == -* ]]; then\n        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n        return\n    fi\n");
    s.push_str("    case \"$cmd\" in\n");
    let _ = writeln!(
        s,
        "        {}) COMPREPLY=($(compgen -W \"$(_xvisor_instances)\" -- \"$cur\")) ;;",
        TAKES_INSTANCE.join("|")
    );
    s.push_str("        image) COMPREPLY=($(compgen -W \"import ls inspect rm $(_xvisor_images)\" -- \"$cur\")) ;;\n");
    let _ = writeln!(
        s,
        "        help) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")) ;;",
        names.join(" ")
    );
    s.push_str("        completions) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\")) ;;\n");
    s.push_str("        *) COMPREPLY=($(compgen -c -f -- \"$cur\")) ;;\n");
    s.push_str("    esac\n}\ncomplete -F _xvisor xvisor\n");
    s
}

/// Quotes for a zsh `_arguments` spec inside single quotes.
fn zsh_text(text: &str) -> String {
    text.replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

fn zsh() -> String {
    let mut s = String::from("#compdef xvisor\n# zsh completion for xvisor (xvisor completions zsh)\n\n");
    s.push_str("_xvisor_instances() { local -a n; n=(${(f)\"$(xvisor ps -a 2>/dev/null | awk 'NR > 1 { print $1 }')\"}); _describe instance n; }\n");
    s.push_str("_xvisor_images() { local -a n; n=(${(f)\"$(xvisor image ls 2>/dev/null | awk 'NR > 1 { print $1 }')\"}); _describe image n; }\n\n");
    s.push_str("_xvisor() {\n    local -a commands\n    commands=(\n");
    for c in COMMANDS {
        let _ = writeln!(s, "        '{}:{}'", c.name, zsh_text(c.summary));
    }
    s.push_str("    )\n    if (( CURRENT == 2 )); then\n        _describe command commands\n        return\n    fi\n");
    s.push_str("    local cmd=$words[2]\n    shift words\n    (( CURRENT-- ))\n    case $cmd in\n");
    for c in COMMANDS {
        let _ = write!(s, "        {})\n            _arguments -s -S", c.name);
        for o in options(c.help) {
            let names = o.names();
            let about = zsh_text(&short_about(&o.about));
            let action = match o.value.as_deref() {
                None => String::new(),
                Some(v) => {
                    let choices = o.choices();
                    let what = if !choices.is_empty() {
                        format!("({})", choices.join(" "))
                    } else if o.value_kind() == ValueKind::Image {
                        "_xvisor_images".into()
                    } else if o.value_kind() == ValueKind::File {
                        "_files".into()
                    } else {
                        " ".into()
                    };
                    format!(":{}:{what}", zsh_text(v))
                }
            };
            let repeat = if o.about.contains("repeatable") { "*" } else { "" };
            if names.len() == 1 {
                let _ = write!(s, " \\\n                '{repeat}{}[{about}]{action}'", names[0]);
            } else {
                let exclusive = if repeat.is_empty() {
                    format!("({})", names.join(" "))
                } else {
                    "*".into()
                };
                let _ = write!(
                    s,
                    " \\\n                '{exclusive}'{{{}}}'[{about}]{action}'",
                    names.join(",")
                );
            }
        }
        let rest = match c.name {
            "run" => "'*::command:_normal'",
            "help" => {
                "'1:command:(run ps exec logs stop wait inspect rm kill image report syscalls policy oci completions man)'"
            }
            "completions" => "'1:shell:(bash zsh fish)'",
            "image" => "'1:command:(import ls inspect rm)' '*:image:_xvisor_images'",
            name if TAKES_INSTANCE.contains(&name) => "'1:instance:_xvisor_instances' '*::command:_normal'",
            _ => "'*:file:_files'",
        };
        let _ = writeln!(s, " \\\n                {rest}\n            ;;");
    }
    s.push_str("    esac\n}\n\n_xvisor \"$@\"\n");
    s
}

/// Quotes for fish, inside single quotes.
fn fish_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

fn fish() -> String {
    let mut s = String::from("# fish completion for xvisor (xvisor completions fish)\n");
    s.push_str("function __xvisor_instances; xvisor ps -a 2>/dev/null | awk 'NR > 1 { print $1 }'; end\n");
    s.push_str("function __xvisor_images; xvisor image ls 2>/dev/null | awk 'NR > 1 { print $1 }'; end\n");
    s.push_str("complete -c xvisor -f\n");
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    for c in COMMANDS {
        let _ = writeln!(
            s,
            "complete -c xvisor -n '__fish_use_subcommand' -a {} -d '{}'",
            c.name,
            fish_text(c.summary)
        );
    }
    for c in COMMANDS {
        let when = format!("-n '__fish_seen_subcommand_from {}'", c.name);
        for o in options(c.help) {
            let mut line = format!("complete -c xvisor {when}");
            for short in &o.shorts {
                let _ = write!(line, " -s {short}");
            }
            for long in &o.longs {
                let _ = write!(line, " -l {long}");
            }
            if o.value.is_some() {
                let choices = o.choices();
                if !choices.is_empty() {
                    let _ = write!(line, " -x -a '{}'", choices.join(" "));
                } else if o.value_kind() == ValueKind::Image {
                    line.push_str(" -x -a '(__xvisor_images)'");
                } else if o.value_kind() == ValueKind::File {
                    line.push_str(" -r -F");
                } else {
                    line.push_str(" -x");
                }
            }
            s.push_str(&line);
            let _ = writeln!(s, " -d '{}'", fish_text(&short_about(&o.about)));
        }
    }
    let _ = writeln!(
        s,
        "complete -c xvisor -n '__fish_seen_subcommand_from {}' -a '(__xvisor_instances)'",
        TAKES_INSTANCE.join(" ")
    );
    s.push_str(
        "complete -c xvisor -n '__fish_seen_subcommand_from image' -a 'import ls inspect rm (__xvisor_images)'\n",
    );
    let _ = writeln!(
        s,
        "complete -c xvisor -n '__fish_seen_subcommand_from help' -a '{}'",
        names.join(" ")
    );
    s.push_str("complete -c xvisor -n '__fish_seen_subcommand_from completions' -a 'bash zsh fish'\n");
    s.push_str("complete -c xvisor -n '__fish_seen_subcommand_from run exec' -F\n");
    s
}

/// Text for roff: backslashes and hyphens escaped, no line starting with
/// a control character.
fn roff(text: &str) -> String {
    let mut t = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => t.push_str("\\e"),
            '-' => t.push_str("\\-"),
            c if c.is_ascii() => t.push(c),
            c => {
                let _ = write!(t, "\\[u{:04X}]", c as u32);
            }
        }
    }
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The manual page, `man 1 xvisor`: xvisor's help, then each command's,
/// its options as tagged paragraphs.
pub fn man(main_help: &str, version: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, ".TH XVISOR 1 \"\" \"xvisor {}\" \"User Commands\"", roff(version));
    s.push_str(".SH NAME\nxvisor \\- secure user\\-space process virtualization for Linux\n");
    s.push_str(".SH SYNOPSIS\n.B xvisor\n.I COMMAND\n[\\fIOPTIONS\\fR]\n");
    s.push_str(".SH DESCRIPTION\n");
    page_body(&mut s, main_help.split_once('\n').map_or("", |(_, rest)| rest));
    s.push_str(".SH COMMANDS\n");
    for c in COMMANDS.iter().filter(|c| c.name != "help") {
        let _ = writeln!(s, ".SS \"xvisor {}\"", c.name);
        page_body(&mut s, c.help);
    }
    s.push_str(".SH ENVIRONMENT\n.TP\n.B XVISOR_STORE\nthe image store (default /var/lib/xvisor for root, $XDG_DATA_HOME/xvisor otherwise)\n");
    s.push_str(".TP\n.B XVISOR_STATE_DIR\nthe records of detached instances (default /run/xvisor/detached for root, $XDG_RUNTIME_DIR/xvisor/detached otherwise)\n");
    s.push_str(".SH EXIT STATUS\nThe program's own; 128+N if it was killed by signal N; 124 if \\-\\-timeout fired; 125 if xvisor failed; 126 if the program cannot be executed; 127 if it was not found.\n");
    s
}

/// One help text as man page paragraphs: option lines become tagged
/// paragraphs, other indented lines are kept as they are laid out.
fn page_body(s: &mut String, help: &str) {
    let opts = options(help);
    let mut next = opts.iter();
    let mut in_option = false;
    let mut in_verbatim = false;
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        let is_option = body.starts_with('-') && (1..=6).contains(&indent);
        if in_option && indent > 6 && !body.is_empty() {
            continue; // the option's description, already written
        }
        in_option = false;
        if is_option {
            if in_verbatim {
                s.push_str(".fi\n");
                in_verbatim = false;
            }
            let o = next.next().expect("options() found this line");
            let names: Vec<String> = o.names().iter().map(|n| format!("\\fB{}\\fR", roff(n))).collect();
            let value = o
                .value
                .as_deref()
                .map(|v| format!(" \\fI{}\\fR", roff(v)))
                .unwrap_or_default();
            let _ = writeln!(s, ".TP\n{}{value}\n{}", names.join(", "), roff(&o.about));
            in_option = true;
        } else if body.is_empty() {
            if in_verbatim {
                s.push_str(".fi\n");
                in_verbatim = false;
            }
            s.push_str(".PP\n");
        } else if indent > 0 {
            if !in_verbatim {
                s.push_str(".nf\n");
                in_verbatim = true;
            }
            let _ = writeln!(s, "{}", roff(line));
        } else if body.ends_with(':') && !body.contains(". ") {
            if in_verbatim {
                s.push_str(".fi\n");
                in_verbatim = false;
            }
            let _ = writeln!(s, ".PP\n.B {}", roff(body));
        } else {
            if in_verbatim {
                s.push_str(".fi\n");
                in_verbatim = false;
            }
            let _ = writeln!(s, "{}", roff(body));
        }
    }
    if in_verbatim {
        s.push_str(".fi\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option names a parser's source matches (`Long("x")`,
    /// `Short('x')`), between `start` and the end of the function.
    fn parsed(source: &str, start: &str) -> (Vec<String>, Vec<char>) {
        let at = source.find(start).unwrap_or_else(|| panic!("{start} not found"));
        let body = &source[at..];
        let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
        let mut longs: Vec<String> = body
            .split("Long(\"")
            .skip(1)
            .map(|r| r[..r.find('"').unwrap()].to_string())
            .collect();
        let mut shorts: Vec<char> = body
            .split("Short('")
            .skip(1)
            .map(|r| r.chars().next().unwrap())
            .collect();
        longs.sort();
        longs.dedup();
        shorts.sort();
        shorts.dedup();
        (longs, shorts)
    }

    fn listed(help: &str) -> (Vec<String>, Vec<char>) {
        let opts = options(help);
        let mut longs: Vec<String> = opts.iter().flat_map(|o| o.longs.clone()).collect();
        let mut shorts: Vec<char> = opts.iter().flat_map(|o| o.shorts.clone()).collect();
        longs.sort();
        longs.dedup();
        shorts.sort();
        shorts.dedup();
        (longs, shorts)
    }

    #[test]
    fn every_option_parsed_is_in_the_help_and_back() {
        // (command, its parser's source, where the parser starts, aliases
        // the help does not list)
        let parsers: [(&str, &str, &str, &[&str]); 5] = [
            ("run", include_str!("run.rs"), "pub fn parse(", &["network"]),
            ("exec", include_str!("exec.rs"), "pub fn user_command(", &["cwd"]),
            ("syscalls", include_str!("syscalls.rs"), "pub fn main(", &[]),
            ("image", include_str!("image.rs"), "fn import(", &[]),
            ("report", include_str!("report.rs"), "pub fn main(", &[]),
        ];
        for (name, source, start, aliases) in parsers {
            // Every command takes -h and --help, listed or not.
            let (mut longs, mut shorts) = parsed(source, start);
            longs.retain(|l| !aliases.contains(&l.as_str()) && l != "help");
            shorts.retain(|&c| c != 'h');
            let (mut help_longs, mut help_shorts) = listed(find(name).unwrap().help);
            help_longs.retain(|l| l != "help");
            help_shorts.retain(|&c| c != 'h');
            assert_eq!(longs, help_longs, "{name}: long options parsed vs listed in --help");
            assert_eq!(shorts, help_shorts, "{name}: short options parsed vs listed in --help");
        }
    }

    #[test]
    fn options_are_read_from_help_lines() {
        let opts = options(
            "Options:\n  -v, --volume SRC:DST[:ro|rw]\n                           make it\n                           visible\n      --net none|host      the network\n  -h, --help  show\nExamples:\n  xvisor -x\n",
        );
        assert_eq!(opts.len(), 3);
        assert_eq!(opts[0].shorts, vec!['v']);
        assert_eq!(opts[0].longs, vec!["volume".to_string()]);
        assert_eq!(opts[0].value.as_deref(), Some("SRC:DST[:ro|rw]"));
        assert_eq!(opts[0].about, "make it visible");
        assert_eq!(opts[1].choices(), vec!["none", "host"]);
        assert_eq!(opts[2].value, None);
    }

    #[test]
    fn completions_and_man_name_every_option_of_every_command() {
        let page = man(COMMANDS[0].help, "0.0.0");
        for shell in ["bash", "zsh", "fish"] {
            let script = completions(shell).unwrap();
            for c in COMMANDS {
                assert!(script.contains(c.name), "{shell}: {}", c.name);
                for o in options(c.help) {
                    for l in &o.longs {
                        let want = match shell {
                            "fish" => format!("-l {l}"),
                            _ => format!("--{l}"),
                        };
                        assert!(script.contains(&want), "{shell}: {} --{l}", c.name);
                        assert!(page.contains(&roff(&format!("--{l}"))), "man: {} --{l}", c.name);
                    }
                }
            }
        }
        assert!(completions("tcsh").is_none());
    }
}
