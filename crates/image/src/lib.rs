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
pub use error::{show_size, ImageError};
pub use layer::Limits;
pub use store::{ImageInfo, ImportOptions, Reference, RunImage, Store};

#[cfg(test)]
pub(crate) mod testrng {
    /// A small deterministic generator for property tests.
    pub struct XorShift(pub u64);

    impl XorShift {
        #[allow(clippy::should_implement_trait)]
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }
}
