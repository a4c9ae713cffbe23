//! The files of each crate form a layered graph: no file reaches, through
//! the paths it names (`crate::a::b`, `super::x`, a child module's
//! `child::y`), back to itself. A circle means two files that can only be
//! read together; this test names it.
//!
//! What counts as a reference is read from the source as text: `crate::`,
//! `super::` and `self::` paths, and paths starting with a child module's
//! name, resolved to the file of the longest module path that exists.
//! Declaring a module (`mod x;`) is not a reference to it, nor is a path
//! in a comment, and a file's own tests (from `#[cfg(test)]` on, and
//! `tests.rs` files) are left out: a test may look at everything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's files by module path (`[]` for the root, `["config",
/// "walker"]`), each with the module paths it names.
fn module_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    collect(src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .filter_map(|f| module_of(src, f).map(|m| (m, f.clone())))
        .collect();
    let code_of = |file: &Path| -> String {
        let text = std::fs::read_to_string(file).unwrap();
        text.split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .map(|line| line.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // What each module's `use` declarations bring in, by name: a path to
    // `crate::Digest` leads where `pub use digest::Digest` in the crate
    // root says, as it does for the compiler.
    let mut aliases: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(file);
        for statement in code.split(';') {
            let Some(at) = statement.find("use ") else { continue };
            let before = statement[..at].trim();
            if !(before.is_empty() || before.ends_with("pub") || before.ends_with(')')) {
                continue;
            }
            // Inline modules' own `use` lines are theirs, not the file's.
            let offset = statement.as_ptr() as usize - code.as_ptr() as usize + at;
            if !inline_module_at(&code, offset).is_empty() {
                continue;
            }
            for (_, path) in paths_in(&statement[at + 4..]) {
                if let (Some(name), Some(absolute)) = (path.last(), absolute(module, &path, &modules)) {
                    aliases
                        .entry(module.clone())
                        .or_default()
                        .insert(name.clone(), absolute);
                }
            }
        }
    }
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let mut targets = BTreeSet::new();
        let code = code_of(file);
        for (at, path) in paths_in(&code) {
            // Named inside an inline module (`mod wire { … }`): relative
            // to it.
            let within: Vec<String> = module.iter().cloned().chain(inline_module_at(&code, at)).collect();
            let Some(mut resolved) = absolute(&within, &path, &modules) else {
                continue;
            };
            // The longest module path that exists (through `use` aliases):
            // the file the item lives in.
            let mut target = Vec::new();
            for _ in 0..8 {
                target = resolved.clone();
                while !modules.contains_key(&target) && target.pop().is_some() {}
                let next = resolved.get(target.len());
                match next.and_then(|name| aliases.get(&target).and_then(|a| a.get(name))) {
                    Some(alias) if alias != &resolved[..=target.len()] => {
                        let rest = resolved[target.len() + 1..].to_vec();
                        resolved = alias.iter().cloned().chain(rest).collect();
                    }
                    _ => break,
                }
            }
            if &target != module {
                targets.insert(target);
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The inline modules (`mod name { … }`) around byte `offset` of `code`,
/// outermost first.
fn inline_module_at(code: &str, offset: usize) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < offset.min(bytes.len()) {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if open.last().is_some_and(|(_, d)| *d > depth) {
                    open.pop();
                }
            }
            b'm' if code[i..].starts_with("mod ") && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) => {
                let rest = &code[i + 4..];
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let after = rest[name.len()..].trim_start();
                if !name.is_empty() && after.starts_with('{') {
                    let brace = code.len() - after.len();
                    if brace < offset {
                        depth += 1;
                        open.push((name, depth));
                        i = brace + 1;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    open.into_iter().map(|(name, _)| name).collect()
}

/// `path` as named in `module`, from the crate root; `None` for a path
/// that leaves the crate (`std::…`, another crate's).
fn absolute(module: &[String], path: &[String], modules: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    match path.first().map(String::as_str) {
        Some("crate") => Some(path[1..].to_vec()),
        Some("super") => {
            let mut at = module.to_vec();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                at.pop();
                rest = &rest[1..];
            }
            at.extend(rest.iter().cloned());
            Some(at)
        }
        Some("self") => Some(module.iter().chain(&path[1..]).cloned().collect()),
        Some(first) => {
            let mut child = module.to_vec();
            child.push(first.to_string());
            modules
                .contains_key(&child)
                .then(|| module.iter().chain(path).cloned().collect())
        }
        None => None,
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`; `src/lib.rs`,
/// `src/main.rs` → `[]`; a file under `src/bin/` is a crate of its own.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().map(String::as_str) == Some("bin") {
        return None;
    }
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    Some(parts)
}

/// Every `a::b::c` path in `code` (comments already dropped), split at
/// `::`, braces of a `use` list expanded one level, with where it starts.
fn paths_in(code: &str) -> Vec<(usize, Vec<String>)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i < bytes.len() {
        // The start of an identifier not preceded by `::` or another
        // identifier's letters.
        let starts =
            is_ident(bytes[i]) && (i == 0 || !(is_ident(bytes[i - 1]) || (i >= 2 && &bytes[i - 2..i] == b"::")));
        if !starts {
            i += 1;
            continue;
        }
        let mut parts = Vec::new();
        let mut j = i;
        loop {
            let begin = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            parts.push(code[begin..j].to_string());
            if code[j..].starts_with("::") && code[j + 2..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                j += 2;
            } else if code[j..].starts_with("::{") {
                // `use a::b::{c, d::e}`: each item after the common part.
                let end = code[j..].find('}').map_or(bytes.len(), |e| j + e);
                for item in code[j + 3..end].split(',') {
                    let item: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty() && p.bytes().all(is_ident))
                        .collect();
                    if !item.is_empty() {
                        out.push((i, parts.iter().cloned().chain(item).collect()));
                    }
                }
                j = end;
                break;
            } else {
                break;
            }
        }
        if parts.len() > 1 {
            out.push((i, parts));
        }
        i = j.max(i + 1);
    }
    out
}

/// A circle of the graph, if it has one.
fn circle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        marks: &mut BTreeMap<Vec<String>, Mark>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut found = stack[at..].to_vec();
                found.push(node.clone());
                return Some(found);
            }
            None => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, marks, stack) {
                return Some(found);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

fn show(circle: &[Vec<String>]) -> String {
    circle
        .iter()
        .map(|m| {
            if m.is_empty() {
                "crate".to_string()
            } else {
                m.join("::")
            }
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[test]
fn no_crate_has_an_import_circle_between_its_files() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap().flatten() {
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let graph = module_graph(&src);
        assert!(!graph.is_empty(), "{}: no files read", src.display());
        if let Some(found) = circle(&graph) {
            panic!("{}: import circle: {}", src.display(), show(&found));
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} crates found under {}", crates.display());
}

#[test]
fn a_circle_is_found_and_named() {
    let dir = std::env::temp_dir().join(format!("xvisor-layout-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("config")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod config;\nmod seccomp;\n").unwrap();
    std::fs::write(
        src.join("config/mod.rs"),
        "mod walker;\nuse walker::Obj;\nfn f() { crate::seccomp::compile(); }\n",
    )
    .unwrap();
    std::fs::write(src.join("config/walker.rs"), "pub struct Obj;\n").unwrap();
    std::fs::write(src.join("seccomp.rs"), "use crate::config::{field, Thing};\n").unwrap();
    let graph = module_graph(&src);
    let found = circle(&graph).map(|c| show(&c));
    std::fs::write(src.join("seccomp.rs"), "use crate::config::walker::Obj;\n").unwrap();
    let without = circle(&module_graph(&src)).map(|c| show(&c));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.as_deref(), Some("config -> seccomp -> config"));
    assert_eq!(without, None);
}
