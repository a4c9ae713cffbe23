//! Path patterns of policy files: `*` and `?` within one component,
//! `[abc]`, `[a-z]`, `[!x]` classes, and `**` as a whole component for any
//! number of directories. Patterns are absolute, matched component by
//! component against paths as the instance sees them.

use std::fmt;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?}: {reason}")]
pub struct GlobError {
    pub pattern: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters (none included).
    AnyRun,
    /// `?`: one character.
    AnyOne,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Component {
    /// `**`
    AnyDepth,
    Name(Vec<Token>),
}

/// A checked pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    components: Vec<Component>,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether `text` uses any pattern character.
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

fn component(pattern: &str, text: &str) -> Result<Component, GlobError> {
    let refuse = |reason| GlobError {
        pattern: pattern.to_string(),
        reason,
    };
    if text == "**" {
        return Ok(Component::AnyDepth);
    }
    if text.contains("**") {
        return Err(refuse("'**' stands alone between slashes (\"/a/**/b\")"));
    }
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => tokens.push(Token::AnyRun),
            '?' => tokens.push(Token::AnyOne),
            '[' => {
                let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                let mut ranges = Vec::new();
                let mut closed = false;
                let mut first = true;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next() {
                            Some(']') => {
                                ranges.push((c, c));
                                ranges.push(('-', '-'));
                                closed = true;
                                break;
                            }
                            Some(end) if end >= c => ranges.push((c, end)),
                            Some(_) => return Err(refuse("a class range runs backwards ([z-a])")),
                            None => break,
                        }
                    } else {
                        ranges.push((c, c));
                    }
                }
                if !closed {
                    return Err(refuse("a '[' class is not closed"));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Literal(c)),
        }
    }
    Ok(Component::Name(tokens))
}

impl Pattern {
    /// Checks `text`: absolute, no empty, `.` or `..` component, classes
    /// closed, `**` alone between slashes, not ending in a `**` that would
    /// also match the directory it starts from ("/a/**" means what is
    /// beneath /a, not /a).
    pub fn parse(text: &str) -> Result<Self, GlobError> {
        let refuse = |reason| GlobError {
            pattern: text.to_string(),
            reason,
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(refuse("paths are absolute (as the instance sees them)"));
        };
        if text.contains('\0') {
            return Err(refuse("no NUL in a path"));
        }
        let mut components = Vec::new();
        for part in rest.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(refuse("no empty, '.' or '..' component"));
            }
            components.push(component(text, part)?);
        }
        if components
            .windows(2)
            .any(|w| w == [Component::AnyDepth, Component::AnyDepth])
        {
            return Err(refuse("'**/**' says '**' twice"));
        }
        if components.first() == Some(&Component::AnyDepth) && components.len() == 1 {
            return Err(refuse("\"/**\" would cover the whole instance"));
        }
        Ok(Self {
            text: text.to_string(),
            components,
        })
    }

    /// The leading components without pattern characters: where a search
    /// for matches starts.
    pub fn literal_prefix(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.components {
            match c {
                Component::Name(tokens) if tokens.iter().all(|t| matches!(t, Token::Literal(_))) => {
                    out.push(
                        tokens
                            .iter()
                            .map(|t| match t {
                                Token::Literal(c) => *c,
                                _ => '?',
                            })
                            .collect(),
                    );
                }
                _ => break,
            }
        }
        out
    }

    /// Whether the path of these components (below `/`) matches.
    pub fn matches(&self, path: &[&str]) -> bool {
        match_components(&self.components, path)
    }

    /// Whether some path below these components could still match (a
    /// search need not enter a directory for which this is false).
    pub fn may_match_below(&self, path: &[&str]) -> bool {
        prefix_may_match(&self.components, path)
    }
}

fn match_components(pattern: &[Component], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((Component::AnyDepth, rest)) => {
            // A trailing "**" stands for at least one component: "/a/**"
            // is what lies beneath /a.
            let least = usize::from(rest.is_empty());
            (least..=path.len()).any(|skip| match_components(rest, &path[skip..]))
        }
        Some((Component::Name(tokens), rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                match_name(tokens, &name.chars().collect::<Vec<_>>()) && match_components(rest, path_rest)
            }
            None => false,
        },
    }
}

fn prefix_may_match(pattern: &[Component], path: &[&str]) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (_, None) => !pattern.is_empty(),
        (None, Some(_)) => false,
        (Some((Component::AnyDepth, _)), Some(_)) => true,
        (Some((Component::Name(tokens), rest)), Some((name, path_rest))) => {
            match_name(tokens, &name.chars().collect::<Vec<_>>()) && prefix_may_match(rest, path_rest)
        }
    }
}

fn match_name(tokens: &[Token], name: &[char]) -> bool {
    // A leading dot is matched only by a literal dot, as shells do: "*"
    // does not reach hidden files unless written ".*".
    if name.first() == Some(&'.') && !matches!(tokens.first(), Some(Token::Literal('.'))) {
        return false;
    }
    match_tokens(tokens, name)
}

fn match_tokens(tokens: &[Token], name: &[char]) -> bool {
    // Iterative with one backtrack point for the last '*': linear in
    // practice, never exponential.
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                star = Some((t, n));
                t += 1;
                continue;
            }
            Some(token) if one(token, name[n]) => {
                t += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((st, sn)) => {
                t = st + 1;
                n = sn + 1;
                star = Some((st, sn + 1));
            }
            None => return false,
        }
    }
    tokens[t.min(tokens.len())..].iter().all(|t| *t == Token::AnyRun)
}

fn one(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyOne => true,
        Token::Class { negated, ranges } => ranges.iter().any(|&(a, b)| a <= c && c <= b) != *negated,
        Token::AnyRun => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        let p = Pattern::parse(pattern).unwrap();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        p.matches(&parts)
    }

    #[test]
    fn components_match_as_shells_do() {
        assert!(m("/etc/*.conf", "/etc/a.conf"));
        assert!(!m("/etc/*.conf", "/etc/sub/a.conf"));
        assert!(!m("/etc/*.conf", "/etc/.hidden.conf"));
        assert!(m("/etc/.*", "/etc/.hidden"));
        assert!(m("/a/?x", "/a/bx"));
        assert!(!m("/a/?x", "/a/x"));
        assert!(m("/k/[a-c]*", "/k/beta"));
        assert!(!m("/k/[!a-c]*", "/k/beta"));
        assert!(m("/k/[]]", "/k/]"));
        assert!(m("/k/[a-]", "/k/-"));
        assert!(m("/k/*a*b*", "/k/xxaxxbxx"));
        assert!(!m("/k/*a*b", "/k/xxaxxbxx"));
    }

    #[test]
    fn any_depth_spans_directories() {
        assert!(m("/home/**/.ssh", "/home/.ssh"));
        assert!(m("/home/**/.ssh", "/home/u/.ssh"));
        assert!(m("/home/**/.ssh", "/home/u/x/y/.ssh"));
        assert!(m("/srv/**/*.pem", "/srv/a/b/key.pem"));
        assert!(!m("/srv/**/*.pem", "/srv/a/b/key.pem.bak"));
        assert!(m("/srv/**", "/srv/a"));
        assert!(!m("/srv/**", "/srv"));
    }

    #[test]
    fn searches_prune_what_cannot_match() {
        let p = Pattern::parse("/home/*/.ssh").unwrap();
        assert_eq!(p.literal_prefix(), ["home"]);
        assert!(p.may_match_below(&["home", "u"]));
        assert!(!p.may_match_below(&["home", "u", ".ssh"]));
        assert!(!p.may_match_below(&["usr"]));
        let deep = Pattern::parse("/srv/**/*.pem").unwrap();
        assert!(deep.may_match_below(&["srv", "a", "b", "c"]));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (text, why) in [
            ("etc/*", "absolute"),
            ("/etc//x", "empty"),
            ("/etc/../x", "'..'"),
            ("/a/b**", "stands alone"),
            ("/a/[bc", "not closed"),
            ("/a/[z-a]", "backwards"),
            ("/a/**/**/b", "twice"),
            ("/**", "whole instance"),
        ] {
            let e = Pattern::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn long_names_match_in_linear_time() {
        let name = "a".repeat(20_000);
        let p = Pattern::parse("/x/*a*a*a*a*a*a*b").unwrap();
        assert!(!p.matches(&["x", &name]));
    }
}
