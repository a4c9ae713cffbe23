//! The JSON documents of OCI image layouts and docker archives, as far as
//! xvisor reads them. Unknown fields are ignored; missing optional ones
//! default; anything malformed is an error naming the document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Digest, ImageError};

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Largest JSON document read (manifests, configs, indexes).
pub const MAX_JSON: u64 = 8 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutMarker {
    pub image_layout_version: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The image configuration (OCI image-spec `config`; Docker's is the same
/// shape for the fields read here).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct RootFs {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// The defaults an image gives its containers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
}

/// One image of a docker archive's `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// Parses a JSON document, naming it in the error.
pub fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::json(what, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_fields_and_nulls() {
        let c: ImageConfig = parse(
            br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,"WorkingDir":"","User":"1:2"},
                "rootfs":{"type":"layers","diff_ids":["sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]},"history":[]}"#,
            "config",
        )
        .unwrap();
        let rc = c.config.unwrap();
        assert_eq!(rc.cmd.unwrap(), ["sh"]);
        assert_eq!(rc.entrypoint, None);
        assert_eq!(rc.user.as_deref(), Some("1:2"));
        assert_eq!(c.rootfs.unwrap().diff_ids.len(), 1);
    }

    #[test]
    fn malformed_documents_are_named() {
        let e = parse::<Manifest>(b"{\"config\": 3}", "manifest sha256:x").unwrap_err();
        assert!(e.to_string().starts_with("manifest sha256:x: malformed JSON"), "{e}");
        let e = parse::<Index>(br#"{"manifests":[{"digest":"sha256:../x","size":1}]}"#, "index.json").unwrap_err();
        assert!(e.to_string().contains("index.json: malformed JSON"), "{e}");
        assert!(parse::<Vec<DockerEntry>>(b"[{]", "manifest.json").is_err());
    }
}
