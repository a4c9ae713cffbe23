//! Entry paths of a layer: what is accepted, and what a name means
//! (an ordinary file, a whiteout, an opaque marker).

use std::fmt;

/// Longest path and component accepted (Linux's `PATH_MAX`, `NAME_MAX`).
pub const MAX_PATH: usize = 4096;
pub const MAX_NAME: usize = 255;

/// Why an entry's path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    Absolute,
    ParentComponent,
    Nul,
    TooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Absolute => "absolute path",
            PathError::ParentComponent => "path with a '..' component",
            PathError::Nul => "path with a NUL byte",
            PathError::TooLong => "path or name too long",
        })
    }
}

/// A relative path inside a layer: non-empty components, none of them `.`
/// or `..`, no NUL. An empty list is the layer's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPath(Vec<Vec<u8>>);

impl LayerPath {
    /// Checks a raw tar path. `./` prefixes, repeated and trailing slashes
    /// and `.` components are dropped; an absolute path or any `..` is
    /// refused (never silently stripped: a layer that tries it is hostile).
    pub fn parse(raw: &[u8]) -> Result<Self, PathError> {
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        if raw.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        if raw.first() == Some(&b'/') {
            return Err(PathError::Absolute);
        }
        let mut parts = Vec::new();
        for c in raw.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err(PathError::ParentComponent),
                name if name.len() > MAX_NAME => return Err(PathError::TooLong),
                name => parts.push(name.to_vec()),
            }
        }
        Ok(Self(parts))
    }

    pub fn components(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// The parent's path (as bytes joined by `/`) and the last name;
    /// `None` for the root.
    pub fn split_last(&self) -> Option<(Vec<u8>, &[u8])> {
        let (last, parent) = self.0.split_last()?;
        Some((parent.join(&b'/'), last.as_slice()))
    }

    /// The path joined by `/`.
    pub fn joined(&self) -> Vec<u8> {
        self.0.join(&b'/')
    }

    /// What the entry means to an overlay: see [`Meaning`].
    pub fn meaning(&self) -> Meaning {
        let Some((parent, last)) = self.split_last() else {
            return Meaning::Plain;
        };
        if last == OPAQUE_MARKER {
            return Meaning::Opaque { dir: parent };
        }
        match last.strip_prefix(WHITEOUT_PREFIX) {
            // Other `.wh..wh.` names are aufs bookkeeping, not files.
            Some(rest) if rest.starts_with(WHITEOUT_PREFIX) => Meaning::Ignored,
            Some(b"") | Some(b".") | Some(b"..") => Meaning::Ignored,
            Some(name) => Meaning::Whiteout {
                dir: parent,
                name: name.to_vec(),
            },
            None => Meaning::Plain,
        }
    }
}

impl fmt::Display for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.joined()))
    }
}

/// The prefix of a whiteout's name in an image layer.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The name that marks its directory opaque.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// What a layer entry's name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// An ordinary entry.
    Plain,
    /// `DIR/.wh.NAME`: NAME of lower layers is deleted.
    Whiteout { dir: Vec<u8>, name: Vec<u8> },
    /// `DIR/.wh..wh..opq`: DIR hides everything lower layers have in it.
    Opaque { dir: Vec<u8> },
    /// Other `.wh..wh.` bookkeeping names: skipped.
    Ignored,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<String>, PathError> {
        LayerPath::parse(s.as_bytes()).map(|l| {
            l.components()
                .iter()
                .map(|c| String::from_utf8(c.clone()).unwrap())
                .collect()
        })
    }

    #[test]
    fn accepted_and_normalised() {
        assert_eq!(p("./a/b/").unwrap(), ["a", "b"]);
        assert_eq!(p("a//./b").unwrap(), ["a", "b"]);
        assert_eq!(p("./").unwrap(), Vec::<String>::new());
        assert_eq!(p("a..b/..c").unwrap(), ["a..b", "..c"]);
    }

    #[test]
    fn hostile_paths_are_refused() {
        assert_eq!(p("/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(p("../x"), Err(PathError::ParentComponent));
        assert_eq!(p("a/../../x"), Err(PathError::ParentComponent));
        assert_eq!(p("a/.."), Err(PathError::ParentComponent));
        assert_eq!(p("a\0b"), Err(PathError::Nul));
        assert_eq!(p(&"x".repeat(256)), Err(PathError::TooLong));
        assert_eq!(p(&"x/".repeat(2049)), Err(PathError::TooLong));
    }

    #[test]
    fn whiteouts_and_opaque_markers() {
        let m = |s: &str| LayerPath::parse(s.as_bytes()).unwrap().meaning();
        assert_eq!(
            m("etc/.wh.motd"),
            Meaning::Whiteout {
                dir: b"etc".to_vec(),
                name: b"motd".to_vec()
            }
        );
        assert_eq!(
            m(".wh.top"),
            Meaning::Whiteout {
                dir: vec![],
                name: b"top".to_vec()
            }
        );
        assert_eq!(m("a/b/.wh..wh..opq"), Meaning::Opaque { dir: b"a/b".to_vec() });
        assert_eq!(m("a/.wh..wh.plnk"), Meaning::Ignored);
        assert_eq!(m("a/.wh."), Meaning::Ignored);
        assert_eq!(m("a/wh.x"), Meaning::Plain);
        assert_eq!(m("a/.whx"), Meaning::Plain);
    }

    /// Property: whatever the input, an accepted path has only plain
    /// components, and joining them gives a path that parses to itself.
    #[test]
    fn accepted_paths_are_plain_and_stable() {
        let alphabet: &[u8] = b"ab./\0.wh";
        let mut rng = xvisor_sys::testing::XorShift(0x1234_5678_9abc_def1);
        for _ in 0..50_000 {
            let len = (rng.next() % 24) as usize;
            let raw: Vec<u8> = (0..len)
                .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
                .collect();
            if let Ok(path) = LayerPath::parse(&raw) {
                for c in path.components() {
                    assert!(!c.is_empty() && c != b"." && c != b"..", "{raw:?}");
                    assert!(!c.contains(&b'/') && !c.contains(&0), "{raw:?}");
                }
                assert_eq!(LayerPath::parse(&path.joined()).as_ref(), Ok(&path));
                assert!(raw.first() != Some(&b'/'));
            }
        }
    }
}
