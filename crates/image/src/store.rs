//! The local, content-addressed image store.
//!
//! ```text
//! STORE/                    mode 0700: layers keep the image's modes
//!   lock                    flock: importers and removers take it exclusively
//!   in-use                  flock: running instances hold it shared; garbage
//!                           collection deletes layers only when it can take
//!                           it exclusively
//!   refs.json               NAME:TAG → image id (the config's digest)
//!   images/<hex>.json       one record per image: format, manifest, layers
//!   blobs/sha256/<hex>      configs and manifests, as imported (verified)
//!   layers/<hex>/root/      one unpacked layer, keyed by its diff id (the
//!   layers/<hex>/info.json  digest of its uncompressed tar): shared by every
//!                           image that has it, however it was compressed
//!   tmp/                    work in progress; emptied by the next writer
//! ```
//!
//! Every file is written in `tmp/` (or beside its final name) and renamed
//! into place once complete and verified, so an interrupted import leaves
//! nothing half-done visible; the `lock` file serialises writers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xvisor_sys::tree::{self, LockKind};

use crate::layer::{self, LayerStats, Limits, UnpackOptions};
use crate::source::{self, Format, Source};
use crate::spec::{self, ImageConfig, RunConfig, MAX_JSON};
use crate::{Digest, ImageError};

/// An image name: `NAME:TAG`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub name: String,
    pub tag: String,
}

impl Reference {
    /// Parses `[REGISTRY/]NAME[:TAG]` (tag `latest` when absent); Docker
    /// Hub's names are kept as Docker shows them: `docker.io/library/`,
    /// `docker.io/` (and `index.docker.io/`) are dropped, and so is a lone
    /// `library/`.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        Self::parse_given(s).map(|(r, _)| r)
    }

    /// As [`Reference::parse`], also saying how much was given: a tag, a
    /// registry (`docker.io` included). A short name, or one without a tag,
    /// may stand for more (see [`resolve_name`]).
    fn parse_given(s: &str) -> Result<(Self, Given), ImageError> {
        let bad = || ImageError::BadName(s.to_string());
        let (name, tag, tagged) = match s.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t, true),
            _ => (s, "latest", false),
        };
        let hub = [
            "docker.io/library/",
            "index.docker.io/library/",
            "docker.io/",
            "index.docker.io/",
        ]
        .iter()
        .find_map(|p| name.strip_prefix(p));
        let name = hub.unwrap_or(name);
        let name = match name.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest,
            _ => name,
        };
        let host = registry_host(name);
        let path = match host {
            Some(h) => &name[h.len() + 1..],
            None => name,
        };
        let plain = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if let Some(h) = host {
            let (hn, port) = h.split_once(':').unwrap_or((h, "0"));
            if !hn.bytes().all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
                || !hn.split('.').all(|p| !p.is_empty() && !p.starts_with('-'))
                || port.is_empty()
                || !port.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
        }
        if name.len() > 255 || !path.split('/').all(plain) {
            return Err(bad());
        }
        if tag.is_empty()
            || tag.len() > 128
            || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            || tag.starts_with(['.', '-'])
        {
            return Err(bad());
        }
        Ok((
            Self {
                name: name.to_string(),
                tag: tag.to_string(),
            },
            Given {
                tag: tagged,
                registry: hub.is_some() || host.is_some(),
            },
        ))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// What a name spelled out.
#[derive(Debug, Clone, Copy)]
struct Given {
    tag: bool,
    registry: bool,
}

/// The registry host a name starts with (`localhost`, `quay.io`,
/// `host:5000`), as Docker tells one from a path component.
fn registry_host(name: &str) -> Option<&str> {
    match name.split_once('/') {
        Some((h, _)) if h.contains('.') || h.contains(':') || h == "localhost" => Some(h),
        _ => None,
    }
}

/// Which stored name (`NAME:TAG`, as in `refs.json`) `wanted` stands for,
/// as podman resolves a short name against its local images: the name as
/// given (Docker Hub's names are stored without `docker.io/library/`),
/// then `localhost/NAME`, then any other registry's or path's `…/NAME`; a
/// name given with its registry stands only for itself. Without a tag,
/// `latest` is looked for first; when no candidate has a `latest`, a
/// name's only tag is taken, since a local store has no registry to fetch
/// `latest` from and the user asked for that name. Several matches at the
/// first level that has any is an error listing them, never a guess.
pub fn resolve_name<'a>(wanted: &str, stored: impl IntoIterator<Item = &'a str>) -> Result<String, ImageError> {
    let no_such = || ImageError::NoSuchImage(wanted.to_string());
    let (reference, given) = Reference::parse_given(wanted).map_err(|_| no_such())?;
    let stored: Vec<(&str, &str)> = stored.into_iter().filter_map(|k| k.rsplit_once(':')).collect();
    let short = !given.registry;
    let localhost = format!("localhost/{}", reference.name);
    let suffix = format!("/{}", reference.name);
    let level = |name: &str| -> Option<u8> {
        if name == reference.name {
            Some(0)
        } else if short && name == localhost {
            Some(1)
        } else if short && name.ends_with(&suffix) {
            Some(2)
        } else {
            None
        }
    };
    let passes: &[bool] = if given.tag { &[true] } else { &[true, false] };
    for &want_tag in passes {
        for l in 0..3 {
            let found: Vec<String> = stored
                .iter()
                .filter(|(n, t)| level(n) == Some(l) && (!want_tag || *t == reference.tag))
                .map(|(n, t)| format!("{n}:{t}"))
                .collect();
            match &found[..] {
                [] => continue,
                [one] => return Ok(one.clone()),
                _ => {
                    return Err(ImageError::Ambiguous {
                        wanted: wanted.to_string(),
                        candidates: found,
                    })
                }
            }
        }
    }
    Err(no_such())
}

/// One layer of an image record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub diff_id: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Bytes of the layer as imported (compressed when it was).
    pub size: u64,
    pub unpacked: LayerStats,
}

/// What the store keeps about one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: Digest,
    pub format: Format,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Digest>,
    pub layers: Vec<LayerRecord>,
}

/// Everything `image inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub names: Vec<String>,
    pub id: Digest,
    pub format: Format,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Digest>,
    pub architecture: String,
    pub os: String,
    pub layers: Vec<LayerRecord>,
    /// Bytes of file data once unpacked.
    pub size: u64,
    pub config: RunConfig,
}

/// What `run --image` needs.
#[derive(Debug)]
pub struct RunImage {
    pub id: Digest,
    /// The unpacked layers' root directories, bottom first.
    pub layers: Vec<PathBuf>,
    pub config: RunConfig,
    /// Held shared while the instance runs, so no garbage collection
    /// removes its layers.
    pub lease: File,
}

/// How an import goes.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The name to give the image; default: the one in the archive, else
    /// the file's name.
    pub name: Option<String>,
    pub limits: Limits,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub reference: Reference,
    pub id: Digest,
    pub layers: usize,
    /// Layers already in the store, reused.
    pub reused: usize,
    pub size: u64,
}

/// What a removal did.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted_images: usize,
    pub deleted_layers: usize,
    /// Unreferenced layers kept because an instance is running.
    pub kept_in_use: usize,
}

/// Progress of a long import (the bytes of layers read from the source).
pub trait Progress {
    fn begin(&mut self, _total: u64) {}
    fn advance(&mut self, _bytes: u64) {}
    fn end(&mut self) {}
}

/// No progress shown.
#[derive(Debug)]
pub struct Quiet;
impl Progress for Quiet {}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> ImageError + '_ {
    move |e| ImageError::io(path.display().to_string(), e)
}

/// Writes `data` to `path` through a temporary file renamed into place.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ImageError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_at(&tmp))?;
    f.write_all(data).map_err(io_at(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_at(path))
}

/// Removes a tree of the store, first making its directories writable
/// (a layer may hold read-only ones, which an unprivileged owner could not
/// empty). Never follows a symlink.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    fn open_up(p: &Path) {
        let Ok(meta) = std::fs::symlink_metadata(p) else { return };
        if meta.is_dir() {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
            if let Ok(entries) = std::fs::read_dir(p) {
                for e in entries.flatten() {
                    open_up(&e.path());
                }
            }
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => return std::fs::remove_file(path),
        Ok(_) => {}
    }
    open_up(path);
    std::fs::remove_dir_all(path)
}

fn lock_file(path: &Path, kind: LockKind, wait: bool) -> Result<Option<File>, ImageError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_at(path))?;
    if tree::lock(f.as_fd(), kind, wait).map_err(io_at(path))? {
        Ok(Some(f))
    } else {
        Ok(None)
    }
}

impl Store {
    /// Where the store is: `$XVISOR_STORE` when set; `/var/lib/xvisor` for
    /// root; else `$XDG_DATA_HOME/xvisor` (default `~/.local/share/xvisor`).
    pub fn default_location() -> Result<PathBuf, ImageError> {
        if let Some(p) = std::env::var_os("XVISOR_STORE").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        if xvisor_sys::process::geteuid() == 0 {
            return Ok(PathBuf::from("/var/lib/xvisor"));
        }
        if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p).join("xvisor"));
        }
        match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".local/share/xvisor")),
            None => Err(ImageError::Format(
                "no image store: set XVISOR_STORE, XDG_DATA_HOME or HOME".into(),
            )),
        }
    }

    /// The store at [`Store::default_location`].
    pub fn open_default() -> Result<Self, ImageError> {
        Ok(Self::at(Self::default_location()?))
    }

    /// The store at `root` (created on first write).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn ensure(&self) -> Result<(), ImageError> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        b.create(&self.root).map_err(io_at(&self.root))?;
        // The store holds layers with the image's modes: nobody else may
        // walk into it.
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700)).map_err(io_at(&self.root))?;
        for d in ["images", "blobs/sha256", "layers", "tmp"] {
            let p = self.root.join(d);
            b.create(&p).map_err(io_at(&p))?;
        }
        Ok(())
    }

    fn refs(&self) -> Result<BTreeMap<String, Digest>, ImageError> {
        let p = self.root.join("refs.json");
        match std::fs::read(&p) {
            Ok(bytes) => spec::parse(&bytes, &p.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(ImageError::io(p.display().to_string(), e)),
        }
    }

    fn write_refs(&self, refs: &BTreeMap<String, Digest>) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(refs).map_err(|e| ImageError::json("refs.json", e))?;
        write_atomic(&self.root.join("refs.json"), &bytes)
    }

    fn record(&self, id: &Digest) -> Result<Record, ImageError> {
        let p = self.root.join("images").join(format!("{}.json", id.hex()));
        let bytes = std::fs::read(&p).map_err(io_at(&p))?;
        spec::parse(&bytes, &p.display().to_string())
    }

    fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    fn blob(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    fn config(&self, id: &Digest) -> Result<ImageConfig, ImageError> {
        let p = self.blob(id);
        let bytes = std::fs::read(&p).map_err(io_at(&p))?;
        if bytes.len() as u64 > MAX_JSON || Digest::of(&bytes) != *id {
            return Err(ImageError::Format(format!(
                "{}: the stored config no longer matches its digest",
                p.display()
            )));
        }
        spec::parse(&bytes, &format!("config {id}"))
    }

    /// Finds an image by `NAME[:TAG]` (see [`resolve_name`]), or by id
    /// (`sha256:…` or at least 12 hex digits of it); returns its id and the
    /// names that matched.
    fn find(&self, wanted: &str, refs: &BTreeMap<String, Digest>) -> Result<(Digest, Vec<String>), ImageError> {
        let hex = wanted.strip_prefix("sha256:").unwrap_or(wanted);
        if hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ids: BTreeSet<&Digest> = refs.values().filter(|d| d.hex().starts_with(hex)).collect();
            if let [id] = ids.into_iter().collect::<Vec<_>>()[..] {
                let names = refs.iter().filter(|(_, d)| *d == id).map(|(n, _)| n.clone()).collect();
                return Ok((id.clone(), names));
            }
        }
        let key = resolve_name(wanted, refs.keys().map(String::as_str))?;
        match refs.get(&key) {
            Some(id) => Ok((id.clone(), vec![key])),
            None => Err(ImageError::NoSuchImage(wanted.to_string())),
        }
    }

    /// Imports the image at `path` (see [`Source`]).
    pub fn import(
        &self,
        path: &Path,
        options: &ImportOptions,
        progress: &mut dyn Progress,
    ) -> Result<Imported, ImageError> {
        self.import_source(Source::open(path)?, options, progress)
    }

    /// Imports an archive streamed in (`image import -`). The tar is read
    /// in place, with seeks, so the stream is first copied to a file in the
    /// store's `tmp/` that has no name once opened: it goes when the import
    /// ends, however it ends (a crash before the unlink leaves it to the
    /// next writer's emptying of `tmp/`). The copy is held to the largest
    /// layer allowed (`limits.max_size`): no archive from a pipe fills the
    /// store's disk unasked.
    pub fn import_stream(
        &self,
        input: &mut dyn std::io::Read,
        options: &ImportOptions,
        progress: &mut dyn Progress,
    ) -> Result<Imported, ImageError> {
        self.ensure()?;
        let shown = Path::new(source::STDIN);
        static SPOOLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SPOOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let spool_path = self
            .root
            .join("tmp")
            .join(format!("stdin-{}-{n}.tar", std::process::id()));
        // Only a crashed process that had our pid can have left this name.
        let _ = std::fs::remove_file(&spool_path);
        let mut spool = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&spool_path)
            .map_err(io_at(&spool_path))?;
        std::fs::remove_file(&spool_path).map_err(io_at(&spool_path))?;
        let cap = options.limits.max_size;
        let copied = std::io::copy(&mut input.take(cap.saturating_add(1)), &mut spool)
            .map_err(|e| ImageError::io(source::STDIN, e))?;
        if copied > cap {
            return Err(ImageError::Format(format!(
                "{}: the archive is larger than {} (--max-layer-size); raise it or import from a file",
                source::STDIN,
                crate::show_size(cap)
            )));
        }
        self.import_source(Source::archive(spool, shown)?, options, progress)
    }

    fn import_source(
        &self,
        source: Source,
        options: &ImportOptions,
        progress: &mut dyn Progress,
    ) -> Result<Imported, ImageError> {
        let plan = source::plan(&source)?;
        let reference = match &options.name {
            Some(n) => Reference::parse(n)?,
            None => default_reference(&plan.names, source.path())?,
        };
        self.ensure()?;
        let _lock = lock_file(&self.root.join("lock"), LockKind::Exclusive, true)?;
        self.clear_tmp()?;
        let result = self.import_locked(&source, &plan, reference, options, progress);
        if result.is_err() {
            // Layers this import completed before failing belong to no image.
            let _ = self.refs().and_then(|refs| self.collect_garbage(&refs));
        }
        result
    }

    fn import_locked(
        &self,
        source: &Source,
        plan: &source::Plan,
        reference: Reference,
        options: &ImportOptions,
        progress: &mut dyn Progress,
    ) -> Result<Imported, ImageError> {
        let keep_owners = xvisor_sys::process::geteuid() == 0;
        let mut records = Vec::with_capacity(plan.layers.len());
        let missing: Vec<bool> = plan
            .layers
            .iter()
            .map(|l| !self.layer_dir(&l.diff_id).join("info.json").exists())
            .collect();
        let total: u64 = plan
            .layers
            .iter()
            .zip(&missing)
            .filter(|(_, m)| **m)
            .map(|(l, _)| l.member_size)
            .sum();
        progress.begin(total);
        let mut reused = 0;
        for (l, missing) in plan.layers.iter().zip(missing) {
            let dest = self.layer_dir(&l.diff_id);
            let name = l.digest.as_ref().unwrap_or(&l.diff_id).to_string();
            if !missing {
                let info = dest.join("info.json");
                let stats: LayerStats = spec::parse(&std::fs::read(&info).map_err(io_at(&info))?, "info.json")?;
                records.push(LayerRecord {
                    diff_id: l.diff_id.clone(),
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                    size: l.member_size,
                    unpacked: stats,
                });
                reused += 1;
                continue;
            }
            let work = self
                .root
                .join("tmp")
                .join(format!("{}-{}", l.diff_id.hex(), std::process::id()));
            let result = self.unpack_layer(source, l, &name, &work, options.limits, keep_owners, progress);
            let stats = match result {
                Ok(stats) => stats,
                Err(e) => {
                    let _ = remove_tree(&work);
                    progress.end();
                    return Err(e);
                }
            };
            let _ = remove_tree(&dest);
            std::fs::rename(&work, &dest).map_err(io_at(&dest))?;
            records.push(LayerRecord {
                diff_id: l.diff_id.clone(),
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.member_size,
                unpacked: stats,
            });
        }
        progress.end();
        write_atomic(&self.blob(&plan.config_digest), &plan.config_bytes)?;
        if let Some((bytes, digest)) = &plan.manifest {
            write_atomic(&self.blob(digest), bytes)?;
        }
        let record = Record {
            id: plan.config_digest.clone(),
            format: plan.format,
            manifest: plan.manifest.as_ref().map(|(_, d)| d.clone()),
            layers: records,
        };
        let size = record.layers.iter().map(|l| l.unpacked.bytes).sum();
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| ImageError::json("image record", e))?;
        write_atomic(
            &self.root.join("images").join(format!("{}.json", record.id.hex())),
            &bytes,
        )?;
        let mut refs = self.refs()?;
        refs.insert(reference.to_string(), record.id.clone());
        self.write_refs(&refs)?;
        self.collect_garbage(&refs)?;
        Ok(Imported {
            reference,
            id: record.id,
            layers: record.layers.len(),
            reused,
            size,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn unpack_layer(
        &self,
        source: &Source,
        l: &source::PlannedLayer,
        name: &str,
        work: &Path,
        limits: Limits,
        keep_owners: bool,
        progress: &mut dyn Progress,
    ) -> Result<LayerStats, ImageError> {
        let _ = remove_tree(work);
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o700);
        b.create(work).map_err(io_at(work))?;
        let root = work.join("root");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&root)
            .map_err(io_at(&root))?;
        let root_fd = OwnedFd::from(File::open(&root).map_err(io_at(&root))?);
        let Some((reader, _)) = source.member(&l.member)? else {
            return Err(ImageError::MissingBlob {
                what: "the manifest".into(),
                digest: name.to_string(),
            });
        };
        let unpacked = layer::unpack(
            reader,
            root_fd.as_fd(),
            name,
            UnpackOptions {
                compression: l.compression,
                limits,
                keep_owners,
            },
            &mut |n| progress.advance(n),
        )?;
        if let Some(size) = l.size {
            if size != unpacked.blob_size {
                return Err(ImageError::Layer {
                    layer: name.to_string(),
                    reason: format!(
                        "{} bytes where the manifest says {size} (truncated or padded)",
                        unpacked.blob_size
                    ),
                });
            }
        }
        if let Some(expected) = &l.digest {
            if *expected != unpacked.blob_digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("layer {name}"),
                    expected: expected.to_string(),
                    actual: unpacked.blob_digest.to_string(),
                });
            }
        }
        if l.diff_id != unpacked.diff_id {
            return Err(ImageError::DigestMismatch {
                what: format!("layer {name} (uncompressed, rootfs.diff_ids)"),
                expected: l.diff_id.to_string(),
                actual: unpacked.diff_id.to_string(),
            });
        }
        let info = serde_json::to_vec(&unpacked.stats).map_err(|e| ImageError::json("info.json", e))?;
        write_atomic(&work.join("info.json"), &info)?;
        Ok(unpacked.stats)
    }

    /// Empties `tmp/` (call with the lock held: only a crashed writer can
    /// have left anything there).
    fn clear_tmp(&self) -> Result<(), ImageError> {
        let tmp = self.root.join("tmp");
        for e in std::fs::read_dir(&tmp).map_err(io_at(&tmp))?.flatten() {
            remove_tree(&e.path()).map_err(io_at(&e.path()))?;
        }
        Ok(())
    }

    /// Deletes records, blobs and layers no name refers to. Layers are kept
    /// while an instance runs (it holds `in-use`); the next removal or
    /// import deletes them.
    fn collect_garbage(&self, refs: &BTreeMap<String, Digest>) -> Result<Removed, ImageError> {
        let mut out = Removed::default();
        let live_ids: BTreeSet<&Digest> = refs.values().collect();
        let mut live_blobs: BTreeSet<String> = BTreeSet::new();
        let mut live_layers: BTreeSet<String> = BTreeSet::new();
        for id in &live_ids {
            let r = self.record(id)?;
            live_blobs.insert(id.hex().to_string());
            if let Some(m) = &r.manifest {
                live_blobs.insert(m.hex().to_string());
            }
            for l in r.layers {
                live_layers.insert(l.diff_id.hex().to_string());
            }
        }
        let images = self.root.join("images");
        for e in std::fs::read_dir(&images).map_err(io_at(&images))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.strip_suffix(".json").unwrap_or(&name);
            if !live_ids.iter().any(|d| d.hex() == hex) {
                std::fs::remove_file(e.path()).map_err(io_at(&e.path()))?;
                out.deleted_images += 1;
            }
        }
        let blobs = self.root.join("blobs/sha256");
        for e in std::fs::read_dir(&blobs).map_err(io_at(&blobs))?.flatten() {
            if !live_blobs.contains(&*e.file_name().to_string_lossy()) {
                std::fs::remove_file(e.path()).map_err(io_at(&e.path()))?;
            }
        }
        let layers = self.root.join("layers");
        let dead: Vec<PathBuf> = std::fs::read_dir(&layers)
            .map_err(io_at(&layers))?
            .flatten()
            .filter(|e| !live_layers.contains(&*e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        if dead.is_empty() {
            return Ok(out);
        }
        let Some(_gc) = lock_file(&self.root.join("in-use"), LockKind::Exclusive, false)? else {
            out.kept_in_use = dead.len();
            return Ok(out);
        };
        for p in dead {
            // Out of sight first (atomic), then deleted.
            let doomed = self.root.join("tmp").join(format!(
                "gc-{}-{}",
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            std::fs::rename(&p, &doomed).map_err(io_at(&p))?;
            remove_tree(&doomed).map_err(io_at(&doomed))?;
            out.deleted_layers += 1;
        }
        Ok(out)
    }

    /// Every name with its image; none when nothing was imported yet (the
    /// store is not created by looking at it).
    pub fn list_if_any(&self) -> Result<Vec<ImageInfo>, ImageError> {
        if self.root.join("refs.json").exists() {
            self.list()
        } else {
            Ok(Vec::new())
        }
    }

    /// Every name with its image.
    pub fn list(&self) -> Result<Vec<ImageInfo>, ImageError> {
        let refs = self.refs()?;
        let mut out = Vec::new();
        for (name, id) in &refs {
            let mut info = self.info(id)?;
            info.names = vec![name.clone()];
            out.push(info);
        }
        Ok(out)
    }

    fn info(&self, id: &Digest) -> Result<ImageInfo, ImageError> {
        let record = self.record(id)?;
        let config = self.config(id)?;
        Ok(ImageInfo {
            names: Vec::new(),
            id: id.clone(),
            format: record.format,
            manifest: record.manifest.clone(),
            architecture: config.architecture,
            os: config.os,
            size: record.layers.iter().map(|l| l.unpacked.bytes).sum(),
            layers: record.layers,
            config: config.config.unwrap_or_default(),
        })
    }

    /// One image, by name or id.
    pub fn inspect(&self, wanted: &str) -> Result<ImageInfo, ImageError> {
        let refs = self.refs()?;
        let (id, _) = self.find(wanted, &refs)?;
        let mut info = self.info(&id)?;
        info.names = refs.iter().filter(|(_, d)| **d == id).map(|(n, _)| n.clone()).collect();
        Ok(info)
    }

    /// Removes a name (or, given an id, every name of that image), then
    /// whatever no name needs any more.
    pub fn remove(&self, wanted: &str) -> Result<Removed, ImageError> {
        if !self.root.join("refs.json").exists() {
            return Err(ImageError::NoSuchImage(wanted.to_string()));
        }
        let _lock = lock_file(&self.root.join("lock"), LockKind::Exclusive, true)?;
        self.clear_tmp()?;
        let mut refs = self.refs()?;
        let (_, names) = self.find(wanted, &refs)?;
        for n in &names {
            refs.remove(n);
        }
        self.write_refs(&refs)?;
        let mut out = self.collect_garbage(&refs)?;
        out.untagged = names;
        Ok(out)
    }

    /// Resolves an image for a run and takes the lease that keeps its
    /// layers until the process ends.
    pub fn for_run(&self, wanted: &str) -> Result<RunImage, ImageError> {
        if !self.root.join("refs.json").exists() {
            return Err(ImageError::NoSuchImage(wanted.to_string()));
        }
        let lease = lock_file(&self.root.join("in-use"), LockKind::Shared, true)?
            .ok_or_else(|| ImageError::Format("cannot lock the image store".into()))?;
        let refs = self.refs()?;
        let (id, _) = self.find(wanted, &refs)?;
        let record = self.record(&id)?;
        let config = self.config(&id)?;
        let mut layers = Vec::with_capacity(record.layers.len());
        for l in &record.layers {
            let root = self.layer_dir(&l.diff_id).join("root");
            if !root.is_dir() {
                return Err(ImageError::Format(format!(
                    "image {wanted}: layer {} is missing from the store; import the image again",
                    l.diff_id
                )));
            }
            layers.push(root);
        }
        Ok(RunImage {
            id,
            layers,
            config: config.config.unwrap_or_default(),
            lease,
        })
    }
}

/// The name an import gives when none is asked for: the archive's first
/// full name; a bare tag (an OCI `ref.name` such as `latest`) goes with
/// the file's name.
fn default_reference(names: &[String], path: &Path) -> Result<Reference, ImageError> {
    for n in names {
        if n.contains(':') || n.contains('/') {
            if let Ok(r) = Reference::parse(n) {
                return Ok(r);
            }
        }
    }
    let stem = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".tar").unwrap_or(&stem).to_ascii_lowercase();
    let tag = names.first().map_or("latest", String::as_str);
    Reference::parse(&format!("{stem}:{tag}"))
        .or_else(|_| Reference::parse(&stem))
        .map_err(|_| {
            ImageError::Format(format!(
                "{}: the archive names no image; give one with --name NAME[:TAG]",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "busybox:latest");
        assert_eq!(
            Reference::parse("docker.io/library/alpine:3.19").unwrap().to_string(),
            "alpine:3.19"
        );
        assert_eq!(
            Reference::parse("localhost:5000/team/app:v1.2").unwrap().to_string(),
            "localhost:5000/team/app:v1.2"
        );
        for bad in [
            "",
            "UPPER",
            "a b",
            "x:",
            "x:-t",
            "../x",
            "a//b",
            "/a",
            "a:b/c:d:e",
            "x:\u{e9}",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_names_resolve_as_podman_does() {
        let one = ["localhost/busybox:1"];
        for wanted in ["busybox:1", "localhost/busybox:1", "busybox", "localhost/busybox"] {
            assert_eq!(resolve_name(wanted, one).unwrap(), "localhost/busybox:1", "{wanted}");
        }
        for wanted in ["busybox:2", "docker.io/library/busybox", "quay.io/busybox:1", "box"] {
            assert!(
                matches!(resolve_name(wanted, one), Err(ImageError::NoSuchImage(_))),
                "{wanted}"
            );
        }
        // Docker Hub's names are stored as Docker shows them, and found
        // under every spelling Docker accepts; the bare name comes first,
        // then localhost, then other registries.
        let hub = ["busybox:latest", "localhost/busybox:latest", "quay.io/x/busybox:latest"];
        for wanted in [
            "busybox",
            "busybox:latest",
            "docker.io/busybox",
            "docker.io/library/busybox:latest",
            "library/busybox",
            "index.docker.io/library/busybox",
        ] {
            assert_eq!(resolve_name(wanted, hub).unwrap(), "busybox:latest", "{wanted}");
        }
        assert_eq!(
            resolve_name("busybox", ["quay.io/x/busybox:latest", "localhost/busybox:latest"]).unwrap(),
            "localhost/busybox:latest"
        );
        assert_eq!(
            resolve_name("busybox", ["quay.io/x/busybox:3"]).unwrap(),
            "quay.io/x/busybox:3"
        );
        // `latest` wins over a name's only other tag, at any level.
        assert_eq!(
            resolve_name("busybox", ["busybox:1", "localhost/busybox:latest"]).unwrap(),
            "localhost/busybox:latest"
        );
        // A given tag is never replaced by another.
        assert!(resolve_name("busybox:latest", ["localhost/busybox:1"]).is_err());
        // Ambiguity is named, not guessed.
        for (wanted, stored, listed) in [
            (
                "busybox",
                &["localhost/busybox:1", "localhost/busybox:2"][..],
                "localhost/busybox:1, localhost/busybox:2",
            ),
            (
                "busybox:1",
                &["quay.io/a/busybox:1", "example.com/busybox:1"][..],
                "example.com/busybox:1, quay.io/a/busybox:1",
            ),
        ] {
            let mut stored = stored.to_vec();
            stored.sort();
            let e = resolve_name(wanted, stored).unwrap_err();
            assert!(matches!(e, ImageError::Ambiguous { .. }), "{e}");
            assert!(e.to_string().contains(listed), "{e}");
            assert_eq!(e.to_string().lines().count(), 1);
        }
        // A name with a registry stands only for itself.
        assert!(resolve_name("localhost/busybox", ["busybox:latest"]).is_err());
        assert!(resolve_name("Not A Name", ["busybox:latest"]).is_err());
    }

    #[test]
    fn default_names() {
        let p = Path::new("/x/my-app.tar");
        assert_eq!(
            default_reference(&["latest".into()], p).unwrap().to_string(),
            "my-app:latest"
        );
        assert_eq!(
            default_reference(&["docker.io/library/busybox:1.36".into(), "1.36".into()], p)
                .unwrap()
                .to_string(),
            "busybox:1.36"
        );
        assert_eq!(default_reference(&[], p).unwrap().to_string(), "my-app:latest");
        assert!(default_reference(&[], Path::new("/x/???.tar")).is_err());
    }

    use crate::fixtures::{tar_of, write_dir, Fixture};
    use crate::tar::Builder;

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = remove_tree(&self.0);
        }
    }
    fn scratch(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("xvisor-store-{tag}-{}-{n}", std::process::id()));
        let _ = remove_tree(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn fixture() -> Fixture {
        let mut b = Builder::new(Vec::new());
        b.dir("bin/").unwrap();
        b.file("bin/hello", 0o755, b"hello\n").unwrap();
        b.file("etc/motd", 0o644, b"motd\n").unwrap();
        let base = b.finish().unwrap();
        let mut b = Builder::new(Vec::new());
        b.file("etc/.wh.motd", 0o644, b"").unwrap();
        let top = b.finish().unwrap();
        Fixture::new(
            vec![base, top],
            serde_json::json!({"Cmd": ["/bin/hello"], "Env": ["A=1"], "WorkingDir": "/bin"}),
        )
    }

    fn empty_store(store: &Store) -> bool {
        ["images", "blobs/sha256", "layers", "tmp"]
            .iter()
            .all(|d| std::fs::read_dir(store.root().join(d)).unwrap().next().is_none())
    }

    #[test]
    fn import_every_format_list_inspect_remove() {
        let s = scratch("formats");
        let store = Store::at(s.0.join("store"));
        let f = fixture();
        let dir = s.0.join("layout");
        write_dir(&f.oci_files(), &dir).unwrap();
        std::fs::write(s.0.join("oci.tar"), tar_of(&f.oci_files())).unwrap();
        std::fs::write(s.0.join("docker.tar"), tar_of(&f.docker_files())).unwrap();
        let a = store.import(&dir, &ImportOptions::default(), &mut Quiet).unwrap();
        assert_eq!(
            (a.reference.to_string(), a.layers, a.reused),
            ("test:latest".into(), 2, 0)
        );
        let opts = |n: &str| ImportOptions {
            name: Some(n.into()),
            ..ImportOptions::default()
        };
        let b = store
            .import(&s.0.join("oci.tar"), &opts("oci:tar"), &mut Quiet)
            .unwrap();
        assert_eq!((b.id.clone(), b.reused), (a.id.clone(), 2));
        // Docker archives hold uncompressed layers: the same diff ids, so
        // the same unpacked layers.
        let c = store
            .import(&s.0.join("docker.tar"), &opts("docker"), &mut Quiet)
            .unwrap();
        assert_eq!(c.reused, 2);
        assert_eq!(std::fs::read_dir(store.root().join("layers")).unwrap().count(), 2);
        let names: Vec<String> = store.list().unwrap().into_iter().flat_map(|i| i.names).collect();
        assert_eq!(names, ["docker:latest", "oci:tar", "test:latest"]);
        let info = store.inspect("test").unwrap();
        assert_eq!(info.config.cmd.as_deref(), Some(&["/bin/hello".to_string()][..]));
        assert_eq!(info.size, 11);
        let run = store.for_run(&a.id.hex()[..12]).unwrap();
        assert_eq!(run.layers.len(), 2);
        assert!(run.layers[0].join("bin/hello").exists());
        drop(run);
        for n in ["test", "oci:tar"] {
            let r = store.remove(n).unwrap();
            assert_eq!(r.deleted_layers, 0, "{n}");
        }
        let r = store.remove("docker:latest").unwrap();
        assert_eq!((r.deleted_layers, r.deleted_images), (2, 1));
        assert!(empty_store(&store));
        assert!(matches!(store.remove("docker"), Err(ImageError::NoSuchImage(_))));
    }

    #[test]
    fn a_running_instance_keeps_its_layers() {
        let s = scratch("lease");
        let store = Store::at(s.0.join("store"));
        write_dir(&fixture().oci_files(), &s.0.join("l")).unwrap();
        store
            .import(&s.0.join("l"), &ImportOptions::default(), &mut Quiet)
            .unwrap();
        let run = store.for_run("test:latest").unwrap();
        let r = store.remove("test").unwrap();
        assert_eq!((r.deleted_layers, r.kept_in_use), (0, 2));
        assert!(run.layers.iter().all(|l| l.is_dir()));
        drop(run);
        write_dir(&fixture().oci_files(), &s.0.join("l")).unwrap();
        store
            .import(
                &s.0.join("l"),
                &ImportOptions {
                    name: Some("again".into()),
                    ..Default::default()
                },
                &mut Quiet,
            )
            .unwrap();
        store.remove("again").unwrap();
        assert!(empty_store(&store));
    }

    fn import_err(files: Vec<(String, Vec<u8>)>, tag: &str) -> String {
        let s = scratch(tag);
        let store = Store::at(s.0.join("store"));
        write_dir(&files, &s.0.join("src")).unwrap();
        let e = store
            .import(&s.0.join("src"), &ImportOptions::default(), &mut Quiet)
            .unwrap_err();
        if store.root().exists() {
            assert!(empty_store(&store), "{tag}: something was left in the store");
            assert!(!store.root().join("refs.json").exists() || store.list().unwrap().is_empty());
        }
        e.to_string()
    }

    #[test]
    fn hostile_layouts_are_refused_and_leave_nothing() {
        let f = fixture();
        let blob_of = |files: &[(String, Vec<u8>)], i: usize| {
            files
                .iter()
                .filter(|(n, _)| n.starts_with("blobs/"))
                .nth(i)
                .unwrap()
                .0
                .clone()
        };
        // A layer whose bytes do not match its digest.
        let mut files = f.oci_files();
        let layer = blob_of(&files, 1);
        let other = crate::fixtures::gzip(&tar_of(&[("x".into(), b"y".to_vec())]));
        files.iter_mut().find(|(n, _)| *n == layer).unwrap().1 = other;
        let e = import_err(files, "mismatch");
        assert!(
            e.contains("digest mismatch") || e.contains("where the manifest says"),
            "{e}"
        );
        // A blob named by the manifest but absent.
        let mut files = f.oci_files();
        let layer = blob_of(&files, 0);
        files.retain(|(n, _)| *n != layer);
        let e = import_err(files, "missing");
        assert!(e.contains("which is not in the archive"), "{e}");
        // Malformed JSON.
        let mut files = f.oci_files();
        files.iter_mut().find(|(n, _)| n == "index.json").unwrap().1 = b"{\"manifests\": [".to_vec();
        assert!(import_err(files, "json").contains("index.json: malformed JSON"));
        // zstd layers.
        let mut z = fixture();
        z.media_type = Some("application/vnd.oci.image.layer.v1.tar+zstd".into());
        let files = z.oci_files();
        let e = import_err(files, "zstd");
        assert!(
            e.contains("unsupported media type application/vnd.oci.image.layer.v1.tar+zstd"),
            "{e}"
        );
        // A layer with an entry climbing out: refused, nothing left.
        let mut b = Builder::new(Vec::new());
        b.file("../../escaped", 0o644, b"x").unwrap();
        let evil = Fixture::new(vec![b.finish().unwrap()], serde_json::json!({}));
        let e = import_err(evil.oci_files(), "dotdot");
        assert!(e.contains("'..'"), "{e}");
    }

    #[test]
    fn truncated_archives_are_refused() {
        let s = scratch("trunc");
        let store = Store::at(s.0.join("store"));
        let data = tar_of(&fixture().docker_files());
        let cut = data.len() / 2;
        std::fs::write(s.0.join("t.tar"), &data[..cut]).unwrap();
        let e = store
            .import(&s.0.join("t.tar"), &ImportOptions::default(), &mut Quiet)
            .unwrap_err();
        assert!(
            e.to_string().contains("truncated") || e.to_string().contains("manifest.json"),
            "{e}"
        );
    }

    #[test]
    fn concurrent_imports_share_the_store() {
        let s = scratch("conc");
        let store = Store::at(s.0.join("store"));
        write_dir(&fixture().oci_files(), &s.0.join("l")).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let store = store.clone();
                let src = s.0.join("l");
                std::thread::spawn(move || {
                    let o = ImportOptions {
                        name: Some(format!("c{i}")),
                        ..Default::default()
                    };
                    store.import(&src, &o, &mut Quiet).map(|r| r.id)
                })
            })
            .collect();
        let ids: BTreeSet<Digest> = threads.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(store.list().unwrap().len(), 4);
        assert_eq!(std::fs::read_dir(store.root().join("layers")).unwrap().count(), 2);
        for i in 0..4 {
            store.remove(&format!("c{i}")).unwrap();
        }
        assert!(empty_store(&store));
    }
}
