//! Where an import reads from: an OCI image layout (a directory or a tar of
//! one) or a docker archive (`docker save`: `manifest.json`, a config and
//! layer tars), and the plan of what to import from it.
//!
//! An archive is never extracted: its members are located by one pass over
//! the headers (seeking past the data) and read in place. Member names are
//! only ever looked up, never used as host paths; symlinks between members
//! (old docker archives share layers that way) are followed inside the
//! archive. A layout directory is read with `RESOLVE_BENEATH`, so a blob
//! that is a symlink cannot make xvisor read outside it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::digest::read_verified;
use crate::layer::Compression;
use crate::spec::{self, Descriptor, DockerEntry, ImageConfig, Index, LayoutMarker, Manifest, MAX_JSON};
use crate::tar;
use crate::{Digest, ImageError};

/// How an archive read from standard input is named in messages.
pub const STDIN: &str = "standard input";

/// A member of an archive: where its data is, or which member it links to.
#[derive(Debug, Clone)]
pub enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// A member's data and its size.
pub type MemberReader<'a> = (Box<dyn Read + 'a>, u64);

/// An image source.
#[derive(Debug)]
pub enum Source {
    Directory {
        path: PathBuf,
        dir: OwnedFd,
    },
    Archive {
        path: PathBuf,
        file: File,
        members: HashMap<String, Member>,
    },
}

/// Normalises an archive member name: no leading `/` or `./`, `.`
/// dropped, `..` applied (never above the top).
fn normalise(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Source {
    /// Opens `path`: a directory is read as an OCI layout (or an extracted
    /// docker archive); a file as a tar archive of either.
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| ImageError::io(&shown, e))?;
        if meta.is_dir() {
            let dir = File::open(path).map_err(|e| ImageError::io(&shown, e))?;
            return Ok(Source::Directory {
                path: path.to_path_buf(),
                dir: OwnedFd::from(dir),
            });
        }
        let file = File::open(path).map_err(|e| ImageError::io(&shown, e))?;
        Self::archive(file, path)
    }

    /// Reads `file` as a tar archive (an OCI layout's or a docker
    /// archive), from its start; `path` names it in messages.
    pub fn archive(mut file: File, path: &Path) -> Result<Self, ImageError> {
        let shown = path.display().to_string();
        let meta = file.metadata().map_err(|e| ImageError::io(&shown, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| ImageError::io(&shown, e))?;
        let mut head = [0u8; 6];
        let n = file.read(&mut head).map_err(|e| ImageError::io(&shown, e))?;
        if let Some([0x1f, 0x8b]) = head.get(..2).and_then(|h| <&[u8; 2]>::try_from(h).ok()) {
            let how = if path == Path::new(STDIN) {
                "pipe it through gunzip".to_string()
            } else {
                format!("gunzip -k {shown}")
            };
            return Err(ImageError::Format(format!(
                "{shown}: a gzip-compressed archive; decompress it first ({how})"
            )));
        }
        if n < 6 && meta.len() < 512 {
            return Err(ImageError::Format(format!("{shown}: not a tar archive (too short)")));
        }
        file.seek(SeekFrom::Start(0)).map_err(|e| ImageError::io(&shown, e))?;
        let len = meta.len();
        let mut members = HashMap::new();
        let mut reader = tar::Reader::new(&mut file);
        loop {
            let entry = match reader.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(ImageError::Format(format!("{shown}: {e}"))),
            };
            let Ok(name) = String::from_utf8(entry.path.clone()) else {
                reader.seek_past_data().map_err(|e| ImageError::io(&shown, e))?;
                continue;
            };
            let name = normalise(&name);
            let offset = reader
                .get_mut()
                .stream_position()
                .map_err(|e| ImageError::io(&shown, e))?;
            let member = match entry.kind {
                tar::Kind::File => {
                    if offset.checked_add(entry.size).is_none_or(|end| end > len) {
                        return Err(ImageError::Format(format!(
                            "{shown}: truncated archive (member {name} ends past the end of the file)"
                        )));
                    }
                    Some(Member::File {
                        offset,
                        size: entry.size,
                    })
                }
                tar::Kind::Symlink => {
                    let target = String::from_utf8_lossy(&entry.link).into_owned();
                    let base = name.rsplit_once('/').map_or("", |(d, _)| d);
                    Some(Member::Link(normalise(&format!("{base}/{target}"))))
                }
                tar::Kind::HardLink => Some(Member::Link(normalise(&String::from_utf8_lossy(&entry.link)))),
                _ => None,
            };
            if let Some(m) = member {
                members.insert(name, m);
            }
            reader.seek_past_data().map_err(|e| ImageError::io(&shown, e))?;
        }
        Ok(Source::Archive {
            path: path.to_path_buf(),
            file,
            members,
        })
    }

    /// The path the user gave.
    pub fn path(&self) -> &Path {
        match self {
            Source::Directory { path, .. } | Source::Archive { path, .. } => path,
        }
    }

    /// Where a member is in an archive, links followed (a few hops).
    fn locate(members: &HashMap<String, Member>, name: &str) -> Option<(u64, u64)> {
        let mut name = normalise(name);
        for _ in 0..8 {
            match members.get(&name)? {
                Member::File { offset, size } => return Some((*offset, *size)),
                Member::Link(target) => name = target.clone(),
            }
        }
        None
    }

    /// Opens member `name` for reading with its size; `Ok(None)` when the
    /// source has no such member.
    pub fn member(&self, name: &str) -> Result<Option<MemberReader<'_>>, ImageError> {
        let what = format!("{}: {name}", self.path().display());
        match self {
            Source::Directory { dir, .. } => {
                match xvisor_sys::tree::open_read_beneath(dir.as_fd(), normalise(name).as_bytes(), true) {
                    Ok(fd) => {
                        let f = File::from(fd);
                        let meta = f.metadata().map_err(|e| ImageError::io(&what, e))?;
                        if !meta.is_file() {
                            return Ok(None);
                        }
                        Ok(Some((
                            Box::new(io::BufReader::with_capacity(256 * 1024, f)),
                            meta.len(),
                        )))
                    }
                    Err(e) if e.raw_os_error() == Some(xvisor_sys::errno::ENOENT) => Ok(None),
                    Err(e) => Err(ImageError::io(what, e)),
                }
            }
            Source::Archive { file, members, .. } => {
                let Some((offset, size)) = Self::locate(members, name) else {
                    return Ok(None);
                };
                let mut f = file.try_clone().map_err(|e| ImageError::io(&what, e))?;
                f.seek(SeekFrom::Start(offset)).map_err(|e| ImageError::io(&what, e))?;
                Ok(Some((
                    Box::new(io::BufReader::with_capacity(256 * 1024, f.take(size))),
                    size,
                )))
            }
        }
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Source::Directory { dir, .. } => {
                xvisor_sys::tree::open_read_beneath(dir.as_fd(), name.as_bytes(), true).is_ok()
            }
            Source::Archive { members, .. } => Self::locate(members, name).is_some(),
        }
    }

    /// Reads a small member whole (JSON), checking a digest when one is
    /// expected; absent → `MissingBlob` for `what`.
    fn read_small(
        &self,
        name: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
        what: &str,
    ) -> Result<(Vec<u8>, Digest), ImageError> {
        let Some((reader, _)) = self.member(name)? else {
            return Err(ImageError::MissingBlob {
                what: what.to_string(),
                digest: expected.map_or_else(|| name.to_string(), Digest::to_string),
            });
        };
        read_verified(reader, MAX_JSON, expected, size, &format!("{what} ({name})"))
    }
}

/// The archive's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    OciLayout,
    DockerArchive,
}

/// One layer to import.
#[derive(Debug, Clone)]
pub struct PlannedLayer {
    /// The member holding the blob.
    pub member: String,
    pub compression: Compression,
    /// Media type as the manifest names it (docker archives: none).
    pub media_type: Option<String>,
    /// Blob digest and size promised by the manifest (when it names them).
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    /// Digest of the uncompressed tar, from the image config.
    pub diff_id: Digest,
    /// Size of the member in the source.
    pub member_size: u64,
}

/// What an import will do, every small document already verified.
#[derive(Debug, Clone)]
pub struct Plan {
    pub format: Format,
    pub config_bytes: Vec<u8>,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// The manifest (OCI layouts).
    pub manifest: Option<(Vec<u8>, Digest)>,
    pub layers: Vec<PlannedLayer>,
    /// Names the archive gives the image (may be tags only, e.g. "latest").
    pub names: Vec<String>,
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

const MAX_DEPTH: usize = 4;

/// Finds the image in `source` and reads and verifies its manifest and
/// config. The first image for linux/amd64 is chosen.
pub fn plan(source: &Source) -> Result<Plan, ImageError> {
    if source.has("index.json") {
        return plan_oci(source);
    }
    if source.has("manifest.json") {
        return plan_docker(source);
    }
    Err(ImageError::Format(format!(
        "{}: neither an OCI image layout (no index.json) nor a docker archive (no manifest.json)",
        source.path().display()
    )))
}

fn platform_ok(p: &Option<spec::Platform>) -> bool {
    p.as_ref().is_none_or(|p| {
        (p.os.is_empty() || p.os == "linux") && (p.architecture.is_empty() || p.architecture == "amd64")
    })
}

fn check_config(config: &ImageConfig, what: &str) -> Result<(), ImageError> {
    if !config.architecture.is_empty() && config.architecture != "amd64" {
        return Err(ImageError::Format(format!(
            "{what}: the image is for {}, xvisor runs x86_64 (amd64) programs",
            config.architecture
        )));
    }
    if !config.os.is_empty() && config.os != "linux" {
        return Err(ImageError::Format(format!(
            "{what}: the image is for {}, not linux",
            config.os
        )));
    }
    Ok(())
}

fn diff_ids(config: &ImageConfig, layers: usize, what: &str) -> Result<Vec<Digest>, ImageError> {
    let ids = config.rootfs.as_ref().map(|r| r.diff_ids.clone()).unwrap_or_default();
    if ids.len() != layers {
        return Err(ImageError::Format(format!(
            "{what}: the config lists {} layer digests (rootfs.diff_ids) but the manifest {layers} layers",
            ids.len()
        )));
    }
    Ok(ids)
}

fn plan_oci(source: &Source) -> Result<Plan, ImageError> {
    if let Some((r, _)) = source.member("oci-layout")? {
        let (bytes, _) = read_verified(r, MAX_JSON, None, None, "oci-layout")?;
        let marker: LayoutMarker = spec::parse(&bytes, "oci-layout")?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(ImageError::Format(format!(
                "oci-layout: unsupported imageLayoutVersion {:?}",
                marker.image_layout_version
            )));
        }
    }
    let (bytes, _) = source.read_small("index.json", None, None, "index.json")?;
    let index: Index = spec::parse(&bytes, "index.json")?;
    // Depth-first through nested indexes, keeping the outermost names.
    let mut stack: Vec<(Descriptor, usize, Vec<String>)> =
        index.manifests.into_iter().rev().map(|d| (d, 0, Vec::new())).collect();
    let mut skipped = 0;
    while let Some((desc, depth, mut names)) = stack.pop() {
        for key in [spec::ANNOTATION_CONTAINERD_NAME, spec::ANNOTATION_REF_NAME] {
            if let Some(n) = desc.annotations.get(key) {
                names.push(n.clone());
            }
        }
        if !platform_ok(&desc.platform) {
            skipped += 1;
            continue;
        }
        let what = format!("manifest {}", desc.digest);
        match desc.media_type.as_str() {
            spec::MEDIA_OCI_INDEX | spec::MEDIA_DOCKER_LIST => {
                if depth >= MAX_DEPTH {
                    return Err(ImageError::Format("index.json: indexes nested too deep".into()));
                }
                let (bytes, _) =
                    source.read_small(&blob_name(&desc.digest), Some(&desc.digest), Some(desc.size), &what)?;
                let inner: Index = spec::parse(&bytes, &what)?;
                for d in inner.manifests.into_iter().rev() {
                    stack.push((d, depth + 1, names.clone()));
                }
            }
            spec::MEDIA_OCI_MANIFEST | spec::MEDIA_DOCKER_MANIFEST | "" => {
                let (bytes, digest) =
                    source.read_small(&blob_name(&desc.digest), Some(&desc.digest), Some(desc.size), &what)?;
                let manifest: Manifest = spec::parse(&bytes, &what)?;
                return plan_manifest(source, manifest, (bytes, digest), names);
            }
            other => {
                return Err(ImageError::Format(format!(
                    "index.json: unsupported manifest media type {other}"
                )))
            }
        }
    }
    Err(ImageError::Format(if skipped > 0 {
        "index.json: no image for linux/amd64 in this layout".to_string()
    } else {
        "index.json: the layout holds no image".to_string()
    }))
}

fn plan_manifest(
    source: &Source,
    manifest: Manifest,
    raw: (Vec<u8>, Digest),
    names: Vec<String>,
) -> Result<Plan, ImageError> {
    let what = format!("manifest {}", raw.1);
    let cd = &manifest.config;
    let (config_bytes, config_digest) = source.read_small(
        &blob_name(&cd.digest),
        Some(&cd.digest),
        Some(cd.size),
        &format!("config {}", cd.digest),
    )?;
    let config: ImageConfig = spec::parse(&config_bytes, &format!("config {}", cd.digest))?;
    check_config(&config, &what)?;
    let ids = diff_ids(&config, manifest.layers.len(), &what)?;
    let mut layers = Vec::with_capacity(ids.len());
    for (desc, diff_id) in manifest.layers.into_iter().zip(ids) {
        let compression = Compression::from_media_type(&desc.digest.to_string(), &desc.media_type)?;
        let member = blob_name(&desc.digest);
        let Some((_, member_size)) = source.member(&member)? else {
            return Err(ImageError::MissingBlob {
                what: what.clone(),
                digest: desc.digest.to_string(),
            });
        };
        layers.push(PlannedLayer {
            member,
            compression,
            media_type: Some(desc.media_type.clone()),
            digest: Some(desc.digest.clone()),
            size: Some(desc.size),
            diff_id,
            member_size,
        });
    }
    Ok(Plan {
        format: Format::OciLayout,
        config_bytes,
        config_digest,
        config,
        manifest: Some(raw),
        layers,
        names,
    })
}

/// A digest written in a member's name (`<hex>.json`, `<hex>/layer.tar`,
/// `blobs/sha256/<hex>`), which the content must then match.
fn digest_in_name(name: &str) -> Option<Digest> {
    let name = normalise(name);
    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex);
    }
    if let Some(hex) = name.strip_suffix(".json") {
        return Digest::from_hex(hex);
    }
    None
}

fn plan_docker(source: &Source) -> Result<Plan, ImageError> {
    let (bytes, _) = source.read_small("manifest.json", None, None, "manifest.json")?;
    let entries: Vec<DockerEntry> = spec::parse(&bytes, "manifest.json")?;
    let Some(entry) = entries.into_iter().next() else {
        return Err(ImageError::Format("manifest.json: the archive holds no image".into()));
    };
    let expected = digest_in_name(&entry.config);
    let what = format!("config {}", entry.config);
    let (config_bytes, config_digest) = source.read_small(&entry.config, expected.as_ref(), None, &what)?;
    let config: ImageConfig = spec::parse(&config_bytes, &what)?;
    check_config(&config, "manifest.json")?;
    let ids = diff_ids(&config, entry.layers.len(), "manifest.json")?;
    let mut layers = Vec::with_capacity(ids.len());
    for (member, diff_id) in entry.layers.into_iter().zip(ids) {
        let Some((mut r, member_size)) = source.member(&member)? else {
            return Err(ImageError::MissingBlob {
                what: "manifest.json".into(),
                digest: member,
            });
        };
        let mut head = [0u8; 6];
        let n = r.read(&mut head).map_err(|e| ImageError::io(&member, e))?;
        let compression = Compression::sniff(&member, head.get(..n).unwrap_or(&[]))?;
        layers.push(PlannedLayer {
            digest: digest_in_name(&member),
            member,
            compression,
            media_type: None,
            size: None,
            diff_id,
            member_size,
        });
    }
    Ok(Plan {
        format: Format::DockerArchive,
        config_bytes,
        config_digest,
        config,
        manifest: None,
        layers,
        names: entry.repo_tags.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn member_names_normalise() {
        assert_eq!(normalise("./manifest.json"), "manifest.json");
        assert_eq!(normalise("/a//b/./c"), "a/b/c");
        assert_eq!(normalise("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalise("../../x"), "x");
    }
}
