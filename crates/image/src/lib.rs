//! OCI and docker-archive images without a daemon (DESIGN.md: *image*).
//!
//! - [`tar`]: a streaming tar reader for untrusted archives (and a small
//!   writer for tests);
//! - [`path`]: which entry paths are accepted, and what whiteout names mean;
//! - [`digest`]: sha256 digests, verified while streaming;
//! - [`layer`]: unpacking one layer with the hostile-input rules;
//! - [`spec`]: the OCI and Docker JSON documents;
//! - [`source`]: reading an OCI layout (directory or tarball) or a docker
//!   archive;
//! - [`store`]: the content-addressed store: import, list, inspect, remove,
//!   garbage collection, and what `xvisor run --image` needs;
//! - [`user`]: an image user name resolved from the image's own
//!   `/etc/passwd`, read from the layers.
//!
//! There is no `unsafe` here: system calls go through `xvisor-sys`.

#![forbid(unsafe_code)]

pub mod digest;
mod error;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod layer;
pub mod path;
pub mod source;
pub mod spec;
pub mod store;
pub mod tar;
pub mod user;

pub use digest::Digest;
pub use error::{show_bytes, show_size, ImageError};
pub use layer::Limits;
pub use store::{ImageInfo, ImportOptions, Reference, RunImage, Store};

/// Feeds untrusted bytes to every parser of this crate the way an import
/// would (tar headers and data, entry paths and link targets, gzip, the
/// JSON documents, digests, names). It must never panic, hang or allocate
/// without bound; the fuzz target `image_parse` and the corpus replay test
/// call it (built for them only: the `fuzzing` feature, or tests).
#[cfg(any(test, feature = "fuzzing"))]
pub fn exercise_parsers(data: &[u8]) {
    use std::io::Read;
    fn tar_walk(r: impl Read) {
        let mut reader = tar::Reader::new(r);
        for _ in 0..10_000 {
            match reader.next_entry() {
                Ok(Some(e)) => {
                    if let Ok(p) = path::LayerPath::parse(&e.path) {
                        let _ = p.meaning();
                        let _ = p.split_last();
                    }
                    let _ = path::LayerPath::parse(&e.link);
                    if std::io::copy(&mut (&mut reader).take(1 << 20), &mut std::io::sink()).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }
    tar_walk(data);
    if data.starts_with(&[0x1f, 0x8b]) {
        tar_walk(flate2::read::MultiGzDecoder::new(data).take(4 << 20));
    }
    let _ = spec::parse::<spec::Index>(data, "index");
    let _ = spec::parse::<spec::Manifest>(data, "manifest");
    let _ = spec::parse::<spec::ImageConfig>(data, "config");
    let _ = spec::parse::<Vec<spec::DockerEntry>>(data, "manifest.json");
    let text = String::from_utf8_lossy(data);
    let _ = Digest::parse(&text);
    let _ = store::Reference::parse(&text);
    let _ = layer::Compression::sniff("fuzz", data);
}

#[cfg(test)]
mod corpus {
    /// Replays fuzz/corpus/image_parse on every test run, so an input the
    /// fuzzer once found stays handled.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/image_parse");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            super::exercise_parsers(&bytes);
            seen += 1;
        }
        assert!(seen >= 6, "corpus too small: {seen}");
        let layer = std::fs::read(dir.join("layer.tar")).unwrap();
        let mut r = super::tar::Reader::new(&layer[..]);
        let mut kinds = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            kinds.push(e.kind);
        }
        assert_eq!(kinds.len(), 6, "{kinds:?}");
    }
}
