//! The report of one run: what an instance did, read from its trace
//! (`--trace` JSON lines), as one self-contained HTML page and as JSON.
//!
//! - [`read`]: trace lines → records, with the problems of a bad trace
//!   (a line that is not a record, a cut-short end, a newer version) named
//!   by line number; what could be read is still reported.
//! - [`model`]: records → a [`Report`](model::Report), aggregated as they
//!   come (memory grows with the number of distinct names, paths and
//!   processes, each kept up to a bound, never with the number of calls).
//! - [`html`]: a report → one HTML page: inline CSS and SVG, no script,
//!   and a content security policy that forbids scripts and any fetch;
//!   everything that came from the guest is escaped.
//! - [`sink`]: trace lines as the supervisor writes them, fed to a
//!   report while they are also written to a trace file.

#![forbid(unsafe_code)]

pub mod html;
pub mod model;
pub mod read;
pub mod sink;

pub use model::{Builder, Report};

/// What can go wrong writing or reading a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("cannot write the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}
