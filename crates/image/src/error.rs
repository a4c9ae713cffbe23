//! The one error type of the image crate: every variant reads as one line
//! that names the input at fault.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
    /// Malformed or inconsistent input, described in full.
    #[error("{0}")]
    Format(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: malformed JSON: {error}")]
    Json { what: String, error: serde_json::Error },
    #[error("{what} names blob {digest}, which is not in the archive")]
    MissingBlob { what: String, digest: String },
    #[error("layer {layer}: unsupported media type {media_type} (xvisor reads uncompressed and gzip layers; recompress it with gzip)")]
    UnsupportedMediaType { layer: String, media_type: String },
    /// A layer entry that would escape the layer or is not allowed.
    #[error("layer {layer}: entry {entry:?}: {reason}; refusing the archive")]
    Refused {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    #[error("layer {layer}: expands past {limit} (--max-layer-size); refusing it as a possible decompression bomb")]
    TooLarge { layer: String, limit: String },
    #[error("layer {layer}: expands more than {ratio} times its compressed size past {floor} (--max-ratio); refusing it as a possible decompression bomb")]
    Ratio { layer: String, ratio: u64, floor: String },
    #[error("no image {0:?} (see 'xvisor image ls')")]
    NoSuchImage(String),
    #[error("image name {wanted:?} is ambiguous: it could be {} (give the full name)", candidates.join(", "))]
    Ambiguous { wanted: String, candidates: Vec<String> },
    #[error("{0:?}: not a valid image name (use [REGISTRY/]NAME[:TAG] with lower-case letters, digits, '.', '_', '-' and '/'; TAG up to 128 of letters, digits, '.', '_', '-')")]
    BadName(String),
}

impl ImageError {
    pub(crate) fn io(what: impl Into<String>, error: io::Error) -> Self {
        ImageError::Io {
            what: what.into(),
            error,
        }
    }

    pub(crate) fn json(what: impl Into<String>, error: serde_json::Error) -> Self {
        ImageError::Json {
            what: what.into(),
            error,
        }
    }
}

/// Shows a byte count the way the limits are given (`16G`, `512M`, `300K`).
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    for (unit, name) in UNITS {
        if bytes >= unit {
            return format!("{:.1}{name}", bytes as f64 / unit as f64);
        }
    }
    format!("{bytes}B")
}

/// Shows a size for people to read, always in the same binary units with
/// one decimal (`512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB`): what `image ls`,
/// `inspect` and `import` print (`--json` gives bytes).
pub fn show_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Rounding to one decimal must not print "1024.0 KiB".
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_one_unit_system() {
        for (bytes, shown) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            ((1 << 20) - 1, "1.0 MiB"),
            (12_897_485, "12.3 MiB"),
            (16 << 30, "16.0 GiB"),
            (u64::MAX, "16.0 EiB"),
        ] {
            assert_eq!(super::show_bytes(bytes), shown, "{bytes}");
        }
    }
}
