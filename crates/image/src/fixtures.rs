//! Image archives made in memory, for tests (here and in the black-box
//! tests of `xvisor`) and fuzz seeds: an OCI layout (files of a directory,
//! or a tar of them) and a docker archive, from uncompressed layer tars and
//! the `config` section of an image config. Tests make hostile variants by
//! changing the returned files.

use std::io::Write;
use std::path::Path;

use crate::tar::{Builder, Header, Kind};
use crate::Digest;

/// An image to write out.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Uncompressed layer tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    /// The image config's `config` object (Entrypoint, Cmd, Env …).
    pub config: serde_json::Value,
    /// gzip the layers of the OCI layout.
    pub gzip: bool,
    /// `org.opencontainers.image.ref.name` / docker `RepoTags` entry.
    pub ref_name: String,
    /// A layer media type to write instead of the right one.
    pub media_type: Option<String>,
}

/// gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// A tar of `files` (directories for their parents are not added).
pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (name, data) in files {
        let _ = b.append(&Header::new(Kind::File, name), data);
    }
    b.finish().unwrap_or_default()
}

/// Writes `files` under `dir`, creating parents.
pub fn write_dir(files: &[(String, Vec<u8>)], dir: &Path) -> std::io::Result<()> {
    for (name, data) in files {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, data)?;
    }
    Ok(())
}

impl Fixture {
    pub fn new(layers: Vec<Vec<u8>>, config: serde_json::Value) -> Self {
        Self {
            layers,
            config,
            gzip: true,
            ref_name: "test:latest".into(),
            media_type: None,
        }
    }

    /// The image config document, diff ids computed.
    pub fn config_bytes(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| Digest::of(l).to_string()).collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap_or_default()
    }

    /// The files of an OCI image layout.
    pub fn oci_files(&self) -> Vec<(String, Vec<u8>)> {
        let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        let mut files = vec![("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec())];
        let config = self.config_bytes();
        let config_digest = Digest::of(&config);
        let mut layers = Vec::new();
        for l in &self.layers {
            let (data, media) = if self.gzip {
                (gzip(l), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (l.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            let d = Digest::of(&data);
            let media = self.media_type.as_deref().unwrap_or(media);
            layers.push(serde_json::json!({"mediaType": media, "digest": d.to_string(), "size": data.len()}));
            files.push((blob(&d), data));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": layers,
        }))
        .unwrap_or_default();
        let manifest_digest = Digest::of(&manifest);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest.to_string(),
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": self.ref_name},
                "platform": {"architecture": "amd64", "os": "linux"},
            }],
        }))
        .unwrap_or_default();
        files.push((blob(&config_digest), config));
        files.push((blob(&manifest_digest), manifest));
        files.push(("index.json".into(), index));
        files
    }

    /// The files of a docker archive (`docker save`, classic layout:
    /// `<id>.json` config, `<n>/layer.tar` uncompressed layers).
    pub fn docker_files(&self) -> Vec<(String, Vec<u8>)> {
        let config = self.config_bytes();
        let config_name = format!("{}.json", Digest::of(&config).hex());
        let mut files = Vec::new();
        let mut layer_names = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let name = format!("layer{i}/layer.tar");
            files.push((name.clone(), l.clone()));
            layer_names.push(name);
        }
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": config_name,
            "RepoTags": [self.ref_name],
            "Layers": layer_names,
        }]))
        .unwrap_or_default();
        files.push((config_name, config));
        files.push(("manifest.json".into(), manifest));
        files
    }
}
