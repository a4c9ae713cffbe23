//! What an instance does not show of the host, and the volume that would.
//!
//! A program that fails because a host path is not in the instance (a file
//! under `/home`, the host's `/var/log`) gets one line naming the `-v` to
//! add. [`View::of`] says, from the [`RootSpec`] alone, which instance
//! paths are the host's own; [`View::hint`] then asks the host (one
//! `lstat`) whether the path the guest missed is there. Nothing is
//! trapped for it: `--trace` feeds it the paths of calls that failed with
//! `ENOENT`, and `xvisor run` the paths on the guest's command line once
//! the guest has failed.

use std::fmt;

use crate::rootfs::{instance_path_components, RootBase, RootSpec, PACKAGE_DATABASES, SYSTEM_DIRS};

/// Which instance paths show the host's own files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The whole host root is shown (`--host-root`), else its system
    /// directories only.
    host_root: bool,
    /// Trees of the instance's own (`/tmp`, the home directory, and for
    /// the default root `/var` and `/run`): the host's files there are
    /// not shown.
    private: Vec<String>,
    /// Where the user decided what is shown (volumes, `--tmpfs`): never
    /// hinted at.
    chosen: Vec<String>,
}

/// Where an instance path leads, as far as the host is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// The host's own file.
    Host,
    /// In a tree of the instance's own.
    Private,
    /// Nothing of the host's there.
    Absent,
    /// A volume, a tmpfs the user asked for, or the kernel's views
    /// (`/proc`, `/dev`, `/sys`).
    NotOurs,
}

/// One line's worth: the host path the guest missed and the volume that
/// would show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The path the guest named (in the instance).
    pub path: String,
    /// The host path to show at the same place.
    pub volume: String,
    /// The guest wanted to make something there: `:rw` (or `--tmpfs`).
    pub writes: bool,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.volume;
        if self.writes {
            write!(
                f,
                "{} cannot be made: the host's {v} is not in the instance (add -v {v}:{v}:rw, or --tmpfs {v} for an empty private one)",
                self.path
            )
        } else {
            write!(
                f,
                "{} is on the host but not in the instance: add -v {v}:{v}:ro",
                self.path
            )
        }
    }
}

/// `true` when `path` is `prefix` or below it (both absolute, normalised).
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// `path` with `.` components and repeated slashes gone; `None` for a
/// relative path or one with `..` (whose meaning depends on symlinks).
fn normalised(path: &str) -> Option<String> {
    let parts = instance_path_components(path)?;
    Some(format!("/{}", parts.join("/")))
}

impl View {
    /// The view of an instance made from `spec`; `None` for roots that are
    /// not made of the host's directories (an image, `--rootfs`, a
    /// bundle), where a host path means nothing in the instance.
    pub fn of(spec: &RootSpec) -> Option<Self> {
        let host_root = match spec.base {
            RootBase::SystemDirs => false,
            RootBase::HostRoot => true,
            RootBase::Image { .. } | RootBase::Directory { .. } | RootBase::Bundle { .. } => return None,
        };
        let mut private = vec!["/tmp".to_string()];
        private.extend(normalised(&spec.home));
        if !host_root {
            private.extend(["/var".to_string(), "/run".to_string()]);
        }
        let mut chosen: Vec<String> = ["/proc", "/dev", "/sys"].iter().map(|s| s.to_string()).collect();
        chosen.extend(spec.volumes.iter().filter_map(|v| normalised(&v.target)));
        chosen.extend(spec.extras.tmpfs.iter().filter_map(|t| normalised(&t.target)));
        Some(Self {
            host_root,
            private,
            chosen,
        })
    }

    fn shown(&self, path: &str) -> Shown {
        if self.chosen.iter().any(|c| under(path, c)) {
            return Shown::NotOurs;
        }
        let package_database = || !self.host_root && PACKAGE_DATABASES.iter().any(|db| under(path, &format!("/{db}")));
        if package_database() {
            return Shown::Host;
        }
        if self.private.iter().any(|p| under(path, p)) {
            return Shown::Private;
        }
        let top = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if self.host_root || top.is_empty() || SYSTEM_DIRS.contains(&top) {
            Shown::Host
        } else {
            Shown::Absent
        }
    }

    /// The volume to add when the guest missed `path` (an absolute path in
    /// the instance; `writes`: it wanted to make an entry there): `Some`
    /// only when the instance does not show the host's file there and the
    /// host has it — or, for `writes`, has the directory it goes in.
    pub fn hint(&self, path: &str, writes: bool) -> Option<Hint> {
        // The guest chooses the names (a write's last one need not exist on
        // the host): none reaches the user's terminal with control
        // characters in it.
        if path.chars().any(char::is_control) {
            return None;
        }
        let path = normalised(path)?;
        // The instance's own trees themselves are there, if empty.
        if !matches!(self.shown(&path), Shown::Private | Shown::Absent) || self.private.contains(&path) {
            return None;
        }
        let parent = match path.rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((dir, _)) => dir.to_string(),
            None => return None,
        };
        let is_dir = |p: &str| std::fs::metadata(p).is_ok_and(|m| m.is_dir());
        // Where the volume would go: the directory the path is in, unless
        // that is shown already, or is one of the instance's own trees as
        // a whole (the host's /tmp over the private one would be worse).
        let parent_will_do =
            matches!(self.shown(&parent), Shown::Absent | Shown::Private) && !self.private.contains(&parent);
        let volume = if writes {
            if !is_dir(&parent) || !parent_will_do {
                return None;
            }
            parent
        } else {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            if meta.is_dir() || !parent_will_do {
                path.clone()
            } else {
                parent
            }
        };
        Some(Hint { path, volume, writes })
    }

    /// [`Self::hint`] for the words of a command line that name absolute
    /// paths (`/data/x`, `--file=/data/x`), read as reads.
    pub fn hints_for_words<'a>(&self, words: impl IntoIterator<Item = &'a str>) -> Vec<Hint> {
        let mut hints: Vec<Hint> = Vec::new();
        for word in words {
            let path = match word.split_once('=') {
                Some((key, value)) if key.starts_with('-') => value,
                _ => word,
            };
            if !path.starts_with('/') {
                continue;
            }
            if let Some(h) = self.hint(path, false) {
                if !hints.iter().any(|seen| seen.volume == h.volume) {
                    hints.push(h);
                }
            }
        }
        hints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{RootExtras, TmpfsSizes, Volume};

    fn spec(base: RootBase, volumes: &[&str]) -> RootSpec {
        RootSpec {
            base,
            volumes: volumes
                .iter()
                .map(|t| Volume {
                    host_path: "/nowhere".into(),
                    target: t.to_string(),
                    writable: false,
                    slave: false,
                })
                .collect(),
            home: "/root".into(),
            home_owner: (0, 0),
            hostname: "x".into(),
            resolv_conf: None,
            workdir: None,
            extras: RootExtras::default(),
            tmpfs_sizes: TmpfsSizes::default(),
        }
    }

    #[test]
    fn what_the_default_root_shows() {
        let v = View::of(&spec(RootBase::SystemDirs, &["/srv/data"])).unwrap();
        assert_eq!(v.shown("/usr/bin/env"), Shown::Host);
        assert_eq!(v.shown("/etc"), Shown::Host);
        assert_eq!(v.shown("/var/lib/dpkg/status"), Shown::Host);
        assert_eq!(v.shown("/var/lib/dpkgx"), Shown::Private);
        assert_eq!(v.shown("/var/log/syslog"), Shown::Private);
        assert_eq!(v.shown("/run/nginx.pid"), Shown::Private);
        assert_eq!(v.shown("/root/.bashrc"), Shown::Private);
        assert_eq!(v.shown("/tmp"), Shown::Private);
        assert_eq!(v.shown("/home/alice/notes"), Shown::Absent);
        assert_eq!(v.shown("/srv/data/x"), Shown::NotOurs);
        assert_eq!(v.shown("/srv/other"), Shown::Absent);
        assert_eq!(v.shown("/proc/1/status"), Shown::NotOurs);
        assert_eq!(v.shown("/usrx"), Shown::Absent);
    }

    #[test]
    fn a_host_root_shows_all_but_its_own_trees() {
        let v = View::of(&spec(RootBase::HostRoot, &[])).unwrap();
        assert_eq!(v.shown("/var/log/syslog"), Shown::Host);
        assert_eq!(v.shown("/home/alice"), Shown::Host);
        assert_eq!(v.shown("/tmp/x"), Shown::Private);
        assert!(View::of(&spec(RootBase::Image { layers: vec![] }, &[])).is_none());
    }

    #[test]
    fn hints_name_the_directory_the_host_has() {
        let dir = std::env::temp_dir().join(format!("xvisor-absent-{}", std::process::id()));
        let file = dir.join("notes.txt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&file, "x").unwrap();
        let (dir_s, file_s) = (dir.to_str().unwrap(), file.to_str().unwrap());
        let v = View::of(&spec(RootBase::SystemDirs, &[])).unwrap();
        // A file: the directory it is in.
        let h = v.hint(file_s, false).unwrap();
        assert_eq!(h.volume, dir_s);
        assert!(h.to_string().ends_with(&format!("add -v {dir_s}:{dir_s}:ro")), "{h}");
        let h = v.hint(&format!("{dir_s}/new"), true).unwrap();
        assert_eq!(h.volume, dir_s);
        assert!(h.to_string().contains(":rw"), "{h}");
        assert!(v.hint(&format!("{dir_s}/missing"), false).is_none());
        assert!(v.hint("/usr/bin/env", false).is_none());
        assert!(v.hint("relative/path", false).is_none());
        // Never the whole of one of the instance's own trees.
        assert!(v.hint("/tmp/xvisor-absent-none", true).is_none());
        assert!(v.hint("/home/../etc/passwd", false).is_none());
        assert!(v.hint(&format!("{dir_s}/\u{1b}]0;title\u{7}"), true).is_none());
        let words = ["-v", file_s, &format!("--input={file_s}"), "plain"];
        assert_eq!(v.hints_for_words(words).len(), 1);
        assert!(v.hint("/tmp", false).is_none() && v.hint("/var/", false).is_none());
        let shown = View::of(&spec(RootBase::SystemDirs, &[dir_s])).unwrap();
        assert!(shown.hint(file_s, false).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn any_path_a_guest_names_gets_a_sound_answer() {
        let mut rng = xvisor_sys::testing::XorShift(0x9e37_79b9_7f4a_7c15);
        let pieces = [
            "/", "home", "var", "log", "lib", "tmp", "..", ".", "usr", "etc", "\u{1b}", "é", "", "//", "root", "run",
            "srv", "v", "proc", "x",
        ];
        let v = View::of(&spec(RootBase::SystemDirs, &["/srv/v"])).unwrap();
        for _ in 0..5000 {
            let mut path = String::new();
            for _ in 0..rng.below(7) {
                path.push_str(pieces[rng.below(pieces.len() as u64) as usize]);
                if rng.below(3) != 0 {
                    path.push('/');
                }
            }
            for writes in [false, true] {
                let Some(h) = v.hint(&path, writes) else {
                    continue;
                };
                assert!(!h.path.chars().any(char::is_control), "{h:?}");
                assert!(under(&h.path, &h.volume), "{h:?}");
                assert!(h.volume != "/" && !v.private.contains(&h.volume), "{h:?}");
                assert!(matches!(v.shown(&h.volume), Shown::Private | Shown::Absent), "{h:?}");
            }
        }
    }
}
