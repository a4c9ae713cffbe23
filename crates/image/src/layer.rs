//! Unpacking one layer into a directory, from a stream that is hashed,
//! decompressed, size-checked and parsed on the fly (no layer is ever held
//! in memory or written to disk compressed).
//!
//! Rules for hostile input (each refusal is one line naming the entry):
//! - a path that is absolute or has a `..` component is refused, never
//!   stripped;
//! - every parent directory is opened with `RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS` from the layer's root, so no write can pass
//!   through a symlink, even one this layer just made; the final name is
//!   created with calls that do not follow it;
//! - symlinks are stored as they are, whatever they point to: they are
//!   resolved inside the instance's root at run time;
//! - a hard link must point at an entry already unpacked in this layer;
//! - device nodes are refused (the instance mounts layers `nodev` and has
//!   its own `/dev`, so they could never be used; rootless they could not
//!   be created anyway); FIFOs are kept;
//! - setuid and setgid bits of files are dropped (the store is on the host);
//! - the expanded size is capped, and so is the expansion ratio past a
//!   floor (decompression bombs).
//!
//! Whiteouts `.wh.NAME` become overlayfs whiteouts (character device 0/0)
//! and `.wh..wh..opq` marks its directory opaque with the
//! `user.overlay.opaque` xattr, the form an overlay mounted with
//! `userxattr` (as the instance's is) understands.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};
use xvisor_sys::tree::{self, EntryType};

use crate::digest::Digest;
use crate::error::show_size;
use crate::path::{LayerPath, Meaning};
use crate::tar::{self, Kind};
use crate::ImageError;

/// The xattr that makes a directory opaque to an overlay mounted with
/// `userxattr`.
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Bounds on what one layer may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a layer's tar stream may have once decompressed.
    pub max_size: u64,
    /// Past `ratio_floor` expanded bytes, a compressed layer may expand at
    /// most this many times its compressed size read so far (0: no check).
    pub max_ratio: u64,
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_size: 16 << 30,
            max_ratio: 200,
            ratio_floor: 256 << 20,
        }
    }
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

impl Compression {
    /// From an OCI or Docker layer media type; anything else (zstd,
    /// foreign layers) is refused with the media type named.
    pub fn from_media_type(layer: &str, media_type: &str) -> Result<Self, ImageError> {
        let base = media_type.replace(".nondistributable", "");
        match base.as_str() {
            "application/vnd.oci.image.layer.v1.tar" | "application/vnd.docker.image.rootfs.diff.tar" => {
                Ok(Compression::None)
            }
            "application/vnd.oci.image.layer.v1.tar+gzip" | "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
                Ok(Compression::Gzip)
            }
            _ => Err(ImageError::UnsupportedMediaType {
                layer: layer.to_string(),
                media_type: media_type.to_string(),
            }),
        }
    }

    /// From the first bytes of a blob (docker archives name no media type).
    pub fn sniff(layer: &str, head: &[u8]) -> Result<Self, ImageError> {
        match head {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Err(ImageError::UnsupportedMediaType {
                layer: layer.to_string(),
                media_type: "zstd-compressed tar".into(),
            }),
            [0x42, 0x5a, 0x68, ..] => Err(ImageError::UnsupportedMediaType {
                layer: layer.to_string(),
                media_type: "bzip2-compressed tar".into(),
            }),
            [0xfd, b'7', b'z', b'X', b'Z', ..] => Err(ImageError::UnsupportedMediaType {
                layer: layer.to_string(),
                media_type: "xz-compressed tar".into(),
            }),
            _ => Ok(Compression::None),
        }
    }
}

/// What went through the pipeline, shared by its stages.
#[derive(Default)]
struct Meter {
    blob: Sha256,
    blob_bytes: u64,
    diff: Sha256,
    diff_bytes: u64,
    hit: Option<LimitHit>,
}

#[derive(Debug, Clone, Copy)]
enum LimitHit {
    Size,
    Ratio,
}

/// The compressed side: hashes and counts the blob, reports progress.
struct BlobSide<'p, R> {
    inner: R,
    meter: Rc<RefCell<Meter>>,
    progress: &'p mut dyn FnMut(u64),
}

impl<R: Read> Read for BlobSide<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut m = self.meter.borrow_mut();
        if let Some(data) = buf.get(..n) {
            m.blob.update(data);
        }
        m.blob_bytes += n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// The expanded side: hashes (the layer's diff id), counts, enforces limits.
struct DiffSide<R> {
    inner: R,
    meter: Rc<RefCell<Meter>>,
    limits: Limits,
    compressed: bool,
}

impl<R: Read> Read for DiffSide<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut m = self.meter.borrow_mut();
        if let Some(data) = buf.get(..n) {
            m.diff.update(data);
        }
        m.diff_bytes += n as u64;
        let hit = if m.diff_bytes > self.limits.max_size {
            Some(LimitHit::Size)
        } else if self.compressed
            && self.limits.max_ratio > 0
            && m.diff_bytes > self.limits.ratio_floor
            && m.diff_bytes / m.blob_bytes.max(1) > self.limits.max_ratio
        {
            Some(LimitHit::Ratio)
        } else {
            None
        };
        if let Some(hit) = hit {
            m.hit = Some(hit);
            return Err(io::Error::other("layer size limit reached"));
        }
        Ok(n)
    }
}

/// What one unpacked layer holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerStats {
    pub entries: u64,
    /// Bytes of regular-file data.
    pub bytes: u64,
}

/// The result of [`unpack`]: digests of the blob and of its tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub blob_digest: Digest,
    pub blob_size: u64,
    pub diff_id: Digest,
    pub stats: LayerStats,
}

/// Options of one unpack.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    pub compression: Compression,
    pub limits: Limits,
    /// Keep the archive's owners (only root can); otherwise every entry is
    /// owned by the caller.
    pub keep_owners: bool,
}

/// Unpacks the layer blob `source` into the empty directory `root`.
/// `name` names the layer in errors. The caller checks the returned digests
/// against what the manifest and config promise, and only then publishes
/// the directory.
pub fn unpack(
    source: impl Read,
    root: BorrowedFd<'_>,
    name: &str,
    options: UnpackOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Unpacked, ImageError> {
    let meter = Rc::new(RefCell::new(Meter::default()));
    let blob = BlobSide {
        inner: source,
        meter: meter.clone(),
        progress,
    };
    let expanded: Box<dyn Read + '_> = match options.compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
    };
    let diff = DiffSide {
        inner: expanded,
        meter: meter.clone(),
        limits: options.limits,
        compressed: options.compression != Compression::None,
    };
    let mut reader = tar::Reader::new(diff);
    let mut unpacker = Unpacker {
        root,
        layer: name,
        keep_owners: options.keep_owners,
        dir_modes: Vec::new(),
        cached: None,
        stats: LayerStats::default(),
    };
    let stream_error = |e: io::Error, meter: &Rc<RefCell<Meter>>| -> ImageError {
        match meter.borrow().hit {
            Some(LimitHit::Size) => ImageError::TooLarge {
                layer: name.to_string(),
                limit: show_size(options.limits.max_size),
            },
            Some(LimitHit::Ratio) => ImageError::Ratio {
                layer: name.to_string(),
                ratio: options.limits.max_ratio,
                floor: show_size(options.limits.ratio_floor),
            },
            None if e.kind() == io::ErrorKind::UnexpectedEof => ImageError::Layer {
                layer: name.to_string(),
                reason: "truncated (the stream ends early)".into(),
            },
            None => ImageError::Layer {
                layer: name.to_string(),
                reason: e.to_string(),
            },
        }
    };
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(tar::TarError::Io(e)) => return Err(stream_error(e, &meter)),
            Err(e) => {
                return Err(ImageError::Layer {
                    layer: name.to_string(),
                    reason: e.to_string(),
                })
            }
        };
        match unpacker.entry(&entry, &mut reader) {
            Ok(()) => {}
            Err(EntryError::Stream(e)) => return Err(stream_error(e, &meter)),
            Err(EntryError::Refused(reason)) => {
                return Err(ImageError::Refused {
                    layer: name.to_string(),
                    entry: String::from_utf8_lossy(&entry.path).into_owned(),
                    reason,
                })
            }
        }
    }
    // What follows the end of the archive still counts for both digests.
    let mut rest = reader.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| stream_error(e, &meter))?;
    drop(rest);
    unpacker.apply_dir_modes()?;
    let stats = unpacker.stats;
    let m = Rc::try_unwrap(meter).map_err(|_| ImageError::Layer {
        layer: name.to_string(),
        reason: "internal error: pipeline still shared".into(),
    })?;
    let m = m.into_inner();
    Ok(Unpacked {
        blob_digest: Digest::from_hasher(m.blob),
        blob_size: m.blob_bytes,
        diff_id: Digest::from_hasher(m.diff),
        stats,
    })
}

enum EntryError {
    /// Reading the stream failed (truncation, limits, gzip).
    Stream(io::Error),
    /// The entry is refused; the reason.
    Refused(String),
}

fn refused(reason: impl Into<String>) -> EntryError {
    EntryError::Refused(reason.into())
}

fn os(action: &str) -> impl Fn(io::Error) -> EntryError + '_ {
    move |e| EntryError::Refused(format!("cannot {action}: {e}"))
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    layer: &'a str,
    keep_owners: bool,
    /// Directory modes, applied once everything is unpacked (a read-only
    /// directory must still take its entries).
    dir_modes: Vec<(Vec<u8>, u32)>,
    /// The last parent directory opened, by path.
    cached: Option<(Vec<u8>, OwnedFd)>,
    stats: LayerStats,
}

impl Unpacker<'_> {
    /// Opens directory `path` of the layer, creating missing components
    /// (mode 0755, as other engines do); refuses to pass through anything
    /// but a real directory.
    fn parent(&mut self, path: &[u8]) -> Result<BorrowedFd<'_>, EntryError> {
        let hit = matches!(&self.cached, Some((p, _)) if p.as_slice() == path);
        if !hit {
            let mut dir = tree::open_dir_beneath(self.root, b"").map_err(os("open the layer directory"))?;
            for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
                match tree::stat_entry(dir.as_fd(), part).map_err(os("inspect a parent directory"))? {
                    None => tree::make_dir(dir.as_fd(), part, 0o755).map_err(os("create a parent directory"))?,
                    Some(s) if s.kind == EntryType::Directory => {}
                    Some(s) if s.kind == EntryType::Symlink => {
                        return Err(refused("its path passes through a symlink of the layer"))
                    }
                    Some(_) => return Err(refused("its path passes through something that is not a directory")),
                }
                dir = tree::open_dir_beneath(dir.as_fd(), part).map_err(|e| {
                    if e.raw_os_error() == Some(xvisor_sys::errno::ELOOP) {
                        refused("its path passes through a symlink of the layer")
                    } else {
                        os("open a parent directory")(e)
                    }
                })?;
            }
            self.cached = Some((path.to_vec(), dir));
        }
        match &self.cached {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(refused("internal error: no parent directory")),
        }
    }

    /// Makes room for a new non-directory entry `name`: an older entry of
    /// the same name (a later one wins, as in tar) is removed; a directory
    /// is not replaced.
    fn clear(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), EntryError> {
        match tree::stat_entry(dir, name).map_err(os("inspect an existing entry"))? {
            None => Ok(()),
            Some(s) if s.kind == EntryType::Directory => Err(refused("it would replace a directory of the same layer")),
            Some(_) => tree::remove_entry(dir, name, false).map_err(os("replace an existing entry")),
        }
    }

    fn entry<R: Read>(&mut self, e: &tar::Entry, data: &mut tar::Reader<R>) -> Result<(), EntryError> {
        let path = LayerPath::parse(&e.path).map_err(|p| refused(format!("{p} (it would land outside the layer)")))?;
        self.stats.entries += 1;
        let keep_owners = self.keep_owners;
        match path.meaning() {
            Meaning::Ignored => Ok(()),
            Meaning::Opaque { dir } => {
                let parent = self.parent(&dir)?;
                let fd = tree::open_dir_beneath(parent, b"").map_err(os("open an opaque directory"))?;
                tree::set_xattr(fd.as_fd(), OPAQUE_XATTR, b"y").map_err(|err| {
                    refused(format!(
                        "cannot mark the directory opaque ({err}); the store's file system must support user xattrs"
                    ))
                })
            }
            Meaning::Whiteout { dir, name } => {
                if e.kind == Kind::Directory {
                    return Err(refused("a whiteout that is a directory"));
                }
                let parent = self.parent(&dir)?;
                if tree::stat_entry(parent, &name)
                    .map_err(os("inspect a whiteout"))?
                    .is_some()
                {
                    return Err(refused("a whiteout for an entry of the same layer"));
                }
                tree::make_whiteout(parent, &name).map_err(os("create an overlay whiteout (character device 0/0)"))
            }
            Meaning::Plain => {
                let Some((parent_path, name)) = path.split_last() else {
                    // The layer's root itself: only its mode matters.
                    if e.kind != Kind::Directory {
                        return Err(refused("the layer's root must be a directory"));
                    }
                    self.dir_modes.push((Vec::new(), e.mode));
                    return Ok(());
                };
                let name = name.to_vec();
                let full = path.joined();
                match e.kind {
                    Kind::Directory => {
                        let parent = self.parent(&parent_path)?;
                        match tree::stat_entry(parent, &name).map_err(os("inspect a directory"))? {
                            Some(s) if s.kind == EntryType::Directory => {}
                            Some(_) => {
                                tree::remove_entry(parent, &name, false).map_err(os("replace an entry"))?;
                                tree::make_dir(parent, &name, 0o700).map_err(os("create a directory"))?;
                            }
                            None => tree::make_dir(parent, &name, 0o700).map_err(os("create a directory"))?,
                        }
                        if keep_owners {
                            tree::chown_entry(parent, &name, e.uid, e.gid).map_err(os("set an owner"))?;
                        }
                        self.dir_modes.push((full, e.mode));
                        Ok(())
                    }
                    Kind::File => {
                        let parent = self.parent(&parent_path)?;
                        Self::clear(parent, &name)?;
                        let fd = tree::create_new_file(parent, &name, 0o600).map_err(os("create a file"))?;
                        let mut file = std::fs::File::from(fd);
                        let copied = copy(data, &mut file)?;
                        if keep_owners {
                            tree::chown_entry(parent, &name, e.uid, e.gid).map_err(os("set an owner"))?;
                        }
                        // No setuid or setgid file in a store on the host.
                        tree::chmod_fd(file.as_fd(), e.mode & 0o1777).map_err(os("set a mode"))?;
                        self.stats.bytes += copied;
                        Ok(())
                    }
                    Kind::Symlink => {
                        if e.link.is_empty() || e.link.contains(&0) {
                            return Err(refused("a symlink with an empty or invalid target"));
                        }
                        let parent = self.parent(&parent_path)?;
                        Self::clear(parent, &name)?;
                        tree::make_symlink(&e.link, parent, &name).map_err(os("create a symlink"))?;
                        if keep_owners {
                            tree::chown_entry(parent, &name, e.uid, e.gid).map_err(os("set an owner"))?;
                        }
                        Ok(())
                    }
                    Kind::HardLink => {
                        let target = LayerPath::parse(&e.link)
                            .map_err(|p| refused(format!("a hard link whose target is an {p} (outside the layer)")))?;
                        let Some((target_dir, target_name)) = target.split_last() else {
                            return Err(refused("a hard link to the layer's root"));
                        };
                        let not_here = || {
                            refused(format!(
                                "a hard link to {:?}, which is not (yet) in the layer",
                                target.to_string()
                            ))
                        };
                        let target_parent = tree::open_dir_beneath(self.root, &target_dir).map_err(|_| not_here())?;
                        match tree::stat_entry(target_parent.as_fd(), target_name).map_err(|_| not_here())? {
                            None => return Err(not_here()),
                            Some(s) if s.kind == EntryType::Directory => {
                                return Err(refused("a hard link to a directory"))
                            }
                            Some(s) if s.is_whiteout() => return Err(not_here()),
                            Some(_) => {}
                        }
                        if target.joined() == full {
                            return Ok(());
                        }
                        let parent = self.parent(&parent_path)?;
                        Self::clear(parent, &name)?;
                        tree::make_hard_link(target_parent.as_fd(), target_name, parent, &name)
                            .map_err(os("create a hard link"))
                    }
                    Kind::Fifo => {
                        let parent = self.parent(&parent_path)?;
                        Self::clear(parent, &name)?;
                        tree::make_fifo(parent, &name, e.mode).map_err(os("create a FIFO"))?;
                        if keep_owners {
                            tree::chown_entry(parent, &name, e.uid, e.gid).map_err(os("set an owner"))?;
                        }
                        Ok(())
                    }
                    Kind::CharDevice | Kind::BlockDevice => Err(refused(
                        "a device node (layers are mounted nodev and the instance has its own /dev)",
                    )),
                }
            }
        }
    }

    /// Sets every directory's mode, deepest first.
    fn apply_dir_modes(&mut self) -> Result<(), ImageError> {
        self.cached = None;
        let mut modes = std::mem::take(&mut self.dir_modes);
        // Later entries for the same directory win; deepest first so a
        // read-only parent is set after its children.
        modes.reverse();
        let mut seen = std::collections::HashSet::new();
        modes.retain(|(p, _)| seen.insert(p.clone()));
        modes.sort_by_key(|(p, _)| {
            std::cmp::Reverse(p.iter().filter(|&&b| b == b'/').count() + usize::from(!p.is_empty()))
        });
        for (path, mode) in modes {
            let fd = tree::open_dir_beneath(self.root, &path).map_err(|e| ImageError::Layer {
                layer: self.layer.to_string(),
                reason: format!("cannot open directory {:?}: {e}", String::from_utf8_lossy(&path)),
            })?;
            tree::chmod_fd(fd.as_fd(), mode & 0o7777).map_err(|e| ImageError::Layer {
                layer: self.layer.to_string(),
                reason: format!("cannot set the mode of {:?}: {e}", String::from_utf8_lossy(&path)),
            })?;
        }
        Ok(())
    }
}

/// Copies an entry's data; a read failure is the stream's, a write failure
/// the store's.
fn copy(from: &mut impl Read, to: &mut impl Write) -> Result<u64, EntryError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EntryError::Stream(e)),
        };
        to.write_all(buf.get(..n).unwrap_or(&[]))
            .map_err(|e| EntryError::Refused(format!("cannot write into the store: {e}")))?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::{Builder, Header};
    use std::path::{Path, PathBuf};

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = crate::store::remove_tree(&self.0);
        }
    }

    fn scratch(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("xvisor-layer-{tag}-{}-{n}", std::process::id()));
        let _ = crate::store::remove_tree(&p);
        std::fs::create_dir_all(p.join("root")).unwrap();
        Scratch(p)
    }

    fn unpack_into(dir: &Path, blob: &[u8], compression: Compression, limits: Limits) -> Result<Unpacked, ImageError> {
        let root = OwnedFd::from(std::fs::File::open(dir.join("root")).unwrap());
        unpack(
            blob,
            root.as_fd(),
            "test",
            UnpackOptions {
                compression,
                limits,
                keep_owners: false,
            },
            &mut |_| {},
        )
    }

    fn refused_with(build: impl FnOnce(&mut Builder<Vec<u8>>), needle: &str) {
        let mut b = Builder::new(Vec::new());
        build(&mut b);
        let data = b.finish().unwrap();
        let s = scratch("hostile");
        let e = unpack_into(&s.0, &data, Compression::None, Limits::default()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
        // Nothing outside the layer directory.
        assert!(!s.0.join("escaped").exists());
        assert!(!Path::new("/tmp/xvisor-escaped").exists());
    }

    #[test]
    fn files_links_modes_and_digests() {
        let mut b = Builder::new(Vec::new());
        b.dir("./").unwrap();
        b.dir("bin/").unwrap();
        b.file("bin/tool", 0o4755, b"#!/bin/sh\n").unwrap();
        b.symlink("bin/sh", "/bin/tool").unwrap();
        b.symlink("abs", "/etc/passwd").unwrap();
        b.append(&Header::new(Kind::HardLink, "bin/tool2").link("bin/tool"), b"")
            .unwrap();
        b.append(&Header::new(Kind::Directory, "ro").mode(0o555), b"").unwrap();
        b.file("ro/inside", 0o444, b"x").unwrap();
        b.file("bin/tool", 0o755, b"second wins").unwrap();
        b.append(&Header::new(Kind::Fifo, "pipe"), b"").unwrap();
        let data = b.finish().unwrap();
        let s = scratch("plain");
        let u = unpack_into(&s.0, &data, Compression::None, Limits::default()).unwrap();
        assert_eq!(u.diff_id, Digest::of(&data));
        assert_eq!(u.blob_digest, Digest::of(&data));
        let root = s.0.join("root");
        assert_eq!(std::fs::read(root.join("bin/tool")).unwrap(), b"second wins");
        assert_eq!(std::fs::read_link(root.join("abs")).unwrap(), Path::new("/etc/passwd"));
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("ro"), 0o555);
        assert_eq!(mode("ro/inside"), 0o444);
        // The first tool (setuid dropped) is the hard link's inode.
        assert_eq!(mode("bin/tool2"), 0o755);
        assert_eq!(std::fs::read(root.join("bin/tool2")).unwrap(), b"#!/bin/sh\n");
        assert!(std::fs::symlink_metadata(root.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(std::fs::metadata(root.join("bin/tool2")).unwrap().nlink(), 1);
        use std::os::unix::fs::FileTypeExt;
    }

    #[test]
    fn whiteouts_and_opaque_directories() {
        let mut b = Builder::new(Vec::new());
        b.file("etc/.wh.motd", 0o644, b"").unwrap();
        b.dir("var/cache/").unwrap();
        b.file("var/cache/.wh..wh..opq", 0o644, b"").unwrap();
        b.file("var/cache/new", 0o644, b"n").unwrap();
        b.file(".wh..wh.plnk", 0o644, b"").unwrap();
        let data = b.finish().unwrap();
        let s = scratch("wh");
        unpack_into(&s.0, &data, Compression::None, Limits::default()).unwrap();
        let root = s.0.join("root");
        let etc = OwnedFd::from(std::fs::File::open(root.join("etc")).unwrap());
        assert!(tree::stat_entry(etc.as_fd(), b"motd").unwrap().unwrap().is_whiteout());
        assert!(!root.join("etc/.wh.motd").exists());
        let cache = OwnedFd::from(std::fs::File::open(root.join("var/cache")).unwrap());
        assert_eq!(
            tree::get_xattr(cache.as_fd(), OPAQUE_XATTR).unwrap().as_deref(),
            Some(&b"y"[..])
        );
        assert!(root.join("var/cache/new").exists());
        assert!(!root.join("var/cache/.wh..wh..opq").exists());
        assert!(!root.join(".wh..wh.plnk").exists());
    }

    #[test]
    fn hostile_entries_are_refused() {
        refused_with(|b| b.file("../escaped", 0o644, b"x").unwrap(), "'..'");
        refused_with(|b| b.file("/tmp/xvisor-escaped", 0o644, b"x").unwrap(), "absolute");
        refused_with(
            |b| {
                b.symlink("up", "..").unwrap();
                b.file("up/escaped", 0o644, b"x").unwrap();
            },
            "through a symlink",
        );
        refused_with(
            |b| {
                b.symlink("tmp", "/tmp").unwrap();
                b.file("tmp/xvisor-escaped", 0o644, b"x").unwrap();
            },
            "through a symlink",
        );
        refused_with(
            |b| {
                b.append(&Header::new(Kind::HardLink, "h").link("../../etc/passwd"), b"")
                    .unwrap()
            },
            "outside the layer",
        );
        refused_with(
            |b| {
                b.append(&Header::new(Kind::HardLink, "h").link("/etc/passwd"), b"")
                    .unwrap()
            },
            "outside the layer",
        );
        refused_with(
            |b| b.append(&Header::new(Kind::HardLink, "h").link("later"), b"").unwrap(),
            "not (yet) in the layer",
        );
        refused_with(
            |b| {
                b.symlink("l", "/etc/passwd").unwrap();
                b.append(&Header::new(Kind::HardLink, "h").link("l/x"), b"").unwrap();
            },
            "not (yet) in the layer",
        );
        refused_with(
            |b| {
                b.append(&Header::new(Kind::CharDevice, "dev/mem").device(1, 1), b"")
                    .unwrap()
            },
            "device node",
        );
        refused_with(
            |b| {
                b.append(&Header::new(Kind::BlockDevice, "sda").device(8, 0), b"")
                    .unwrap()
            },
            "device node",
        );
        refused_with(
            |b| {
                b.file("f", 0o644, b"x").unwrap();
                b.file("f/escaped", 0o644, b"x").unwrap();
            },
            "not a directory",
        );
    }

    #[test]
    fn truncated_and_corrupt_streams() {
        let mut b = Builder::new(Vec::new());
        b.file("big", 0o644, &vec![5u8; 100_000]).unwrap();
        let data = b.finish().unwrap();
        let s = scratch("trunc");
        let e = unpack_into(&s.0, &data[..50_000], Compression::None, Limits::default()).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let gz = crate::fixtures::gzip(&data);
        let s = scratch("trunc-gz");
        let e = unpack_into(&s.0, &gz[..gz.len() / 2], Compression::Gzip, Limits::default()).unwrap_err();
        assert!(
            e.to_string().contains("truncated") || e.to_string().contains("layer test"),
            "{e}"
        );
        let s = scratch("not-gz");
        assert!(unpack_into(&s.0, &data, Compression::Gzip, Limits::default()).is_err());
    }

    #[test]
    fn decompression_bombs_are_refused() {
        // 64 MiB of zeros, about 64 KiB compressed.
        let mut b = Builder::new(Vec::new());
        b.file("zeros", 0o644, &vec![0u8; 64 << 20]).unwrap();
        let gz = crate::fixtures::gzip(&b.finish().unwrap());
        let s = scratch("bomb-size");
        let limits = Limits {
            max_size: 8 << 20,
            ..Limits::default()
        };
        let e = unpack_into(&s.0, &gz, Compression::Gzip, limits).unwrap_err();
        assert!(e.to_string().contains("expands past 8M (--max-layer-size)"), "{e}");
        let s = scratch("bomb-ratio");
        let limits = Limits {
            max_ratio: 100,
            ratio_floor: 1 << 20,
            ..Limits::default()
        };
        let e = unpack_into(&s.0, &gz, Compression::Gzip, limits).unwrap_err();
        assert!(e.to_string().contains("more than 100 times"), "{e}");
        // The same data uncompressed is no bomb.
        let s = scratch("bomb-ok");
        let mut b = Builder::new(Vec::new());
        b.file("zeros", 0o644, &vec![0u8; 2 << 20]).unwrap();
        assert!(unpack_into(&s.0, &b.finish().unwrap(), Compression::None, limits).is_ok());
    }

    #[test]
    fn media_types_and_magic() {
        assert_eq!(
            Compression::from_media_type("l", "application/vnd.oci.image.layer.v1.tar+gzip").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::from_media_type("l", "application/vnd.docker.image.rootfs.diff.tar").unwrap(),
            Compression::None
        );
        let e = Compression::from_media_type("l", "application/vnd.oci.image.layer.v1.tar+zstd").unwrap_err();
        assert!(e.to_string().contains("tar+zstd"), "{e}");
        assert!(Compression::sniff("l", &[0x28, 0xb5, 0x2f, 0xfd]).is_err());
        assert_eq!(Compression::sniff("l", b"ustar").unwrap(), Compression::None);
    }
}
