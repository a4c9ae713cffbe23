//! Sizes and durations as users type them.

pub use xvisor_confine::units::{parse_duration, parse_size};

/// The smallest `--log-size` of a detached instance.
pub const MINIMUM_LOG_SIZE: u64 = 4096;
/// The default `--log-size`.
pub const DEFAULT_LOG_SIZE: u64 = 1024 * 1024;

/// A size for messages: "256 MiB".
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, size) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{} {name}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_show_in_their_largest_whole_unit() {
        assert_eq!(show_size(256 << 20), "256 MiB");
        assert_eq!(show_size(1 << 30), "1 GiB");
        assert_eq!(show_size(1000), "1000 bytes");
    }
}
