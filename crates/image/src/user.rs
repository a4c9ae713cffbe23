//! The image's user: `uid[:gid]` or a name from the image's own
//! `/etc/passwd` and `/etc/group`, read from the unpacked layers as the
//! overlay would show them (top layer first, whiteouts and opaque
//! directories honoured), never following a symlink, size-capped.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use xvisor_sys::tree::{self, EntryType};

use crate::layer::OPAQUE_XATTR;
use crate::ImageError;

const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// A user of the image, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub uid: u32,
    pub gid: u32,
    /// From /etc/passwd, when the user is listed there.
    pub home: Option<String>,
}

/// `USER[:GROUP]` in a running instance: names from its own account
/// files, read through the root of one of its processes
/// (`/proc/PID/root`: the files the instance sees, whatever its root is
/// made of), the last of `pids` first. The instance's init may not let
/// others see its root (it is not dumpable); the guest's processes do, to
/// their owner. Files are opened in that root, as the instance resolves
/// them: the guest's symlinks lead where they lead for it, never to the
/// host's files.
pub fn resolve_in_processes(pids: &[i32], spec: &str) -> Result<ImageUser, ImageError> {
    let read_in = |root: &OwnedFd, file: &str| -> Option<String> {
        let fd = xvisor_sys::fs::open_path_in_root(root.as_fd(), file).ok()?;
        let mut text = String::new();
        std::fs::File::open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    };
    let mut last = None;
    for pid in pids.iter().rev() {
        let Ok(root) = xvisor_sys::fs::open_dir(None, &format!("/proc/{pid}/root")) else {
            continue;
        };
        let Some(passwd) = read_in(&root, "etc/passwd") else {
            continue;
        };
        let group = read_in(&root, "etc/group").unwrap_or_default();
        let accounts = Accounts::Read {
            passwd: &passwd,
            group: &group,
        };
        match resolve_in(spec, accounts, "--user") {
            Ok(u) => return Ok(u),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| ImageError::Format(format!("--user {spec:?}: the instance's /etc/passwd cannot be read"))))
}

/// Reads `path` (relative, `/`-separated) from the merged view of
/// `layers` (bottom first). `None` when absent, deleted, reached through a
/// symlink, or not a regular file.
pub fn read_merged(layers: &[PathBuf], path: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (name, parents) = parts.split_last()?;
    for layer in layers.iter().rev() {
        let root = OwnedFd::from(std::fs::File::open(layer).ok()?);
        let mut dir = tree::open_dir_beneath(root.as_fd(), b"").ok()?;
        let mut opaque = false;
        let mut present = true;
        for part in parents {
            match tree::stat_entry(dir.as_fd(), part.as_bytes()).ok()? {
                None => {
                    present = false;
                    break;
                }
                Some(s) if s.kind == EntryType::Directory => {
                    dir = tree::open_dir_beneath(dir.as_fd(), part.as_bytes()).ok()?;
                    if tree::get_xattr(dir.as_fd(), OPAQUE_XATTR).ok()?.as_deref() == Some(b"y") {
                        opaque = true;
                    }
                }
                // A whiteout, a file or a symlink hides everything below.
                Some(_) => return None,
            }
        }
        if present {
            match tree::stat_entry(dir.as_fd(), name.as_bytes()).ok()? {
                None => {}
                Some(s) if s.kind == EntryType::Regular => {
                    let fd = tree::open_read_beneath(dir.as_fd(), name.as_bytes(), false).ok()?;
                    let mut data = Vec::new();
                    std::fs::File::from(fd)
                        .take(MAX_ACCOUNT_FILE)
                        .read_to_end(&mut data)
                        .ok()?;
                    return Some(data);
                }
                Some(_) => return None,
            }
        }
        if opaque {
            return None;
        }
    }
    None
}

/// `name → (id, primary gid, home)` from passwd-format text.
fn passwd_entries(text: &str) -> impl Iterator<Item = (&str, u32, u32, &str)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let uid = f.get(2)?.parse().ok()?;
        let gid = f.get(3)?.parse().ok()?;
        Some((*f.first()?, uid, gid, *f.get(5).unwrap_or(&"")))
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        Some((*f.first()?, f.get(2)?.parse().ok()?))
    })
}

fn id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|&n| n < u32::MAX)
}

/// `UID[:GID]` as numbers (the group defaults to the uid's number); `None`
/// for anything else (names, an empty part, -1).
pub fn numeric_ids(spec: &str) -> Option<(u32, u32)> {
    let (uid, gid) = spec.split_once(':').unwrap_or((spec, spec));
    Some((id(uid)?, id(gid)?))
}

/// Where user and group names are looked up.
#[derive(Debug, Clone, Copy)]
pub enum Accounts<'a> {
    /// An image's files, from its layers (bottom first).
    Image(&'a [PathBuf]),
    /// A root directory's own files, never through a symlink.
    Directory(&'a Path),
    /// The host's: what an instance whose /etc is the host's sees.
    Host,
    /// Files already read (a running instance's, read through its root).
    Read { passwd: &'a str, group: &'a str },
}

impl Accounts<'_> {
    fn read(&self, file: &str) -> String {
        let bytes = match self {
            Accounts::Image(layers) => read_merged(layers, file),
            Accounts::Directory(dir) => read_merged(&[dir.to_path_buf()], file),
            Accounts::Host => std::fs::File::open(Path::new("/").join(file)).ok().and_then(|f| {
                let mut data = Vec::new();
                f.take(MAX_ACCOUNT_FILE).read_to_end(&mut data).ok().map(|_| data)
            }),
            Accounts::Read { passwd, group } => {
                let text = if file.ends_with("passwd") { passwd } else { group };
                return text.chars().take(MAX_ACCOUNT_FILE as usize).collect();
            }
        };
        bytes
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn whose(&self) -> &'static str {
        match self {
            Accounts::Image(_) => "the image's",
            Accounts::Directory(_) => "the root directory's",
            Accounts::Host => "the host's",
            Accounts::Read { .. } => "the instance's",
        }
    }
}

/// Resolves an image config `User` (`""`, `uid`, `uid:gid`, `name`,
/// `name:group`) against the image's own account files.
pub fn resolve(spec: &str, layers: &[PathBuf]) -> Result<ImageUser, ImageError> {
    resolve_in(spec, Accounts::Image(layers), "image user")
}

/// Resolves `uid`, `uid:gid`, `name`, `name:group` (or `""`: root) against
/// `accounts`, as Docker does: a name's primary group is its passwd entry's,
/// a bare uid's is that uid's entry's, else 0. `label` starts each message
/// (`image user`, `--user`).
pub fn resolve_in(spec: &str, accounts: Accounts<'_>, label: &str) -> Result<ImageUser, ImageError> {
    let whose = accounts.whose();
    let passwd = accounts.read("etc/passwd");
    let passwd = passwd.as_str();
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary, home) = if user.is_empty() {
        (0, 0, None)
    } else if let Some(uid) = id(user) {
        match passwd_entries(passwd).find(|e| e.1 == uid) {
            Some((_, _, gid, home)) => (uid, gid, Some(home)),
            None => (uid, 0, None),
        }
    } else {
        match passwd_entries(passwd).find(|e| e.0 == user) {
            Some((_, uid, gid, home)) => (uid, gid, Some(home)),
            None => {
                return Err(ImageError::Format(format!(
                    "{label} {user:?}: not in {whose} /etc/passwd (give --user UID[:GID] or a name listed there)"
                )))
            }
        }
    };
    let gid = match group {
        None | Some("") => primary,
        Some(g) => match id(g) {
            Some(gid) => gid,
            None => {
                let groups = accounts.read("etc/group");
                let found = group_entries(&groups).find(|e| e.0 == g).map(|e| e.1);
                match found {
                    Some(gid) => gid,
                    None => {
                        return Err(ImageError::Format(format!(
                        "{label} group {g:?}: not in {whose} /etc/group (give --user UID:GID or a group listed there)"
                    )))
                    }
                }
            }
        },
    };
    let home = home
        .map(str::to_string)
        .filter(|h| h.starts_with('/'))
        .or_else(|| passwd_entries(passwd).find(|e| e.1 == uid).map(|e| e.3.to_string()))
        .filter(|h| h.starts_with('/'));
    Ok(ImageUser { uid, gid, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_are_uid_and_gid_or_nothing() {
        assert_eq!(numeric_ids("1000"), Some((1000, 1000)));
        assert_eq!(numeric_ids("0:5"), Some((0, 5)));
        for not_numbers in ["", ":", "5:", ":5", "root", "1:wheel", "4294967295", "1:2:3", "-1"] {
            assert_eq!(numeric_ids(not_numbers), None, "{not_numbers:?}");
        }
    }

    fn layer(tag: &str, files: &[(&str, &str)]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("xvisor-user-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        for (path, content) in files {
            let f = p.join(path);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, content).unwrap();
        }
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn names_numbers_and_layers() {
        let low = layer(
            "low",
            &[
                (
                    "etc/passwd",
                    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
                ),
                ("etc/group", "root:x:0:\nstaff:x:50:\n"),
            ],
        );
        let high = layer("high", &[("etc/other", "")]);
        let layers = vec![low.clone(), high.clone()];
        assert_eq!(
            resolve("app", &layers).unwrap(),
            ImageUser {
                uid: 1000,
                gid: 1001,
                home: Some("/home/app".into())
            }
        );
        assert_eq!(resolve("app:staff", &layers).unwrap().gid, 50);
        assert_eq!(
            resolve("7:8", &layers).unwrap(),
            ImageUser {
                uid: 7,
                gid: 8,
                home: None
            }
        );
        assert_eq!(resolve("", &layers).unwrap().home.as_deref(), Some("/root"));
        assert!(resolve("nobody", &layers)
            .unwrap_err()
            .to_string()
            .contains("/etc/passwd"));
        assert!(resolve("app:wheel", &layers).is_err());
        // A whiteout in the upper layer deletes the file.
        let hidden = layer("hidden", &[]);
        std::fs::create_dir_all(hidden.join("etc")).unwrap();
        let etc = OwnedFd::from(std::fs::File::open(hidden.join("etc")).unwrap());
        tree::make_whiteout(etc.as_fd(), b"passwd").unwrap();
        assert_eq!(read_merged(&[low.clone(), hidden.clone()], "etc/passwd"), None);
        // An opaque etc hides the lower one.
        let opaque = layer("opaque", &[("etc/hosts", "")]);
        let etc = OwnedFd::from(std::fs::File::open(opaque.join("etc")).unwrap());
        tree::set_xattr(etc.as_fd(), OPAQUE_XATTR, b"y").unwrap();
        assert_eq!(read_merged(&[low.clone(), opaque.clone()], "etc/passwd"), None);
        assert!(read_merged(&[low.clone(), high.clone()], "etc/passwd").is_some());
        // A symlinked /etc/passwd is not followed.
        let linked = layer("linked", &[]);
        std::fs::create_dir_all(linked.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", linked.join("etc/passwd")).unwrap();
        assert_eq!(read_merged(std::slice::from_ref(&linked), "etc/passwd"), None);
        for p in [low, high, hidden, opaque, linked] {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}
