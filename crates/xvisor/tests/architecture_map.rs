//! ARCHITECTURE.md is a map: it must stay true as the code moves.
//!
//! Every `crates/…/file.rs:name` reference in ARCHITECTURE.md,
//! docs/design/*.md and bench/README.md must name a file that exists and
//! declares `name` there (a `fn`, `struct`, `enum`, `mod`, `const`,
//! `static`, `trait` or `type`, or a test made by a macro such as
//! `both_callers!(name, …)`); for `Type::name` the last segment is looked
//! for. Bare paths in backquotes and relative Markdown links must exist.
//! A failure lists every stale reference with the page that makes it.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pages the map is made of.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = vec![root.join("ARCHITECTURE.md"), root.join("bench/README.md")];
    let mut design: Vec<PathBuf> = std::fs::read_dir(root.join("docs/design"))
        .expect("docs/design exists")
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    design.sort();
    pages.extend(design);
    pages
}

/// The text between each pair of backquotes (code spans on one line or
/// wrapped over two).
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A `path.rs:Name::name` reference split into the file and the name
/// looked for (the last segment), or the bare path with no name.
fn reference(span: &str) -> Option<(&str, Option<&str>)> {
    let span = span.trim();
    if !span.starts_with("crates/") || span.contains(['*', '…', ' ', '\n']) {
        return None;
    }
    match span.find(".rs:") {
        Some(end) => {
            let path = &span[..end + 3];
            let rest = &span[end + 4..];
            let len = rest.find(|c: char| !is_ident_char(c) && c != ':').unwrap_or(rest.len());
            let name = rest[..len].rsplit("::").find(|s| !s.is_empty());
            Some((path, name))
        }
        None => Some((span, None)),
    }
}

/// Whether `source` declares `name`: an item keyword before it, or a
/// test macro taking it as its first argument.
fn declares(source: &str, name: &str) -> bool {
    const KEYWORDS: [&str; 9] = [
        "fn", "struct", "enum", "mod", "const", "static", "trait", "type", "union",
    ];
    let mut from = 0;
    while let Some(at) = source[from..].find(name) {
        let start = from + at;
        let end = start + name.len();
        from = end;
        let before_ok = !source[..start].ends_with(is_ident_char);
        let after_ok = !source[end..].starts_with(is_ident_char);
        if !before_ok || !after_ok {
            continue;
        }
        let before = source[..start].trim_end();
        if before.ends_with("!(") {
            return true;
        }
        let word_start = before.rfind(|c: char| !is_ident_char(c)).map_or(0, |i| i + 1);
        if KEYWORDS.contains(&&before[word_start..]) {
            return true;
        }
    }
    false
}

/// Relative Markdown link targets: `](target)`, anchors dropped.
fn links(text: &str) -> Vec<&str> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|t| t.split('#').next().unwrap_or(t))
        .filter(|t| !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}

fn stale_references() -> Vec<String> {
    let root = root();
    let mut stale = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        let shown = page.strip_prefix(&root).unwrap_or(&page).display().to_string();
        for span in code_spans(&text) {
            let Some((path, name)) = reference(span) else { continue };
            let file = root.join(path);
            if !file.exists() {
                stale.push(format!("{shown}: `{}`: {path} does not exist", span.trim()));
                continue;
            }
            if let Some(name) = name {
                let source = std::fs::read_to_string(&file).unwrap_or_default();
                if !declares(&source, name) {
                    stale.push(format!("{shown}: `{}`: {path} declares no {name}", span.trim()));
                }
            }
        }
        let dir = page.parent().expect("a page has a directory");
        for target in links(&text) {
            if !dir.join(target).exists() {
                stale.push(format!("{shown}: link ({target}) leads nowhere"));
            }
        }
    }
    stale
}

#[test]
fn every_reference_of_the_map_exists() {
    let stale = stale_references();
    assert!(stale.is_empty(), "stale references:\n  {}", stale.join("\n  "));
}

#[test]
fn the_map_stays_a_map() {
    let size = std::fs::metadata(root().join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md")
        .len();
    assert!(
        size <= 16 * 1024,
        "ARCHITECTURE.md is {size} bytes: rationale belongs in docs/design/, numbers in bench/README.md"
    );
}

#[test]
fn references_and_declarations_are_recognised() {
    assert_eq!(
        reference("crates/a/src/b.rs:Type::name"),
        Some(("crates/a/src/b.rs", Some("name")))
    );
    assert_eq!(reference("crates/a/src/b.rs:name (a note)"), None);
    assert_eq!(reference("crates/a/src/b.rs"), Some(("crates/a/src/b.rs", None)));
    assert_eq!(reference("crates/*/src"), None);
    let source = "pub(crate) fn start() {}\nboth_callers!(\n    a_test,\n |c| {});\nstruct Thing;\nlet startle = 1;";
    assert!(declares(source, "start"));
    assert!(declares(source, "a_test"));
    assert!(declares(source, "Thing"));
    assert!(!declares(source, "startle"));
    assert!(!declares(source, "missing"));
    assert_eq!(
        links("see [a](a.md#x) and [b](https://x.y) or [c](../c)"),
        vec!["a.md", "../c"]
    );
}
