//! Content digests (`sha256:<64 hex>`), and readers that hash what passes
//! through them.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// A sha256 content digest. Other algorithms are refused when parsed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(format!("{s:?} is not a digest (expected sha256:<hex>)"));
        };
        if algorithm != "sha256" {
            return Err(format!("digest {s:?}: only sha256 is supported"));
        }
        Self::from_hex(hex).ok_or_else(|| format!("{s:?} is not a valid sha256 digest"))
    }

    /// From 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(hex.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    pub(crate) fn from_hasher(h: Sha256) -> Self {
        let out = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in out {
            hex.push_str(&format!("{b:02x}"));
        }
        Self(hex)
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as image ids are usually shown.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

/// Hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R> fmt::Debug for HashingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashingReader").field("count", &self.count).finish()
    }
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Digest and length of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(data) = buf.get(..n) {
            self.hasher.update(data);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads all of `r` (at most `limit` bytes, else an error naming `what`),
/// checking its digest and, when known, its size.
pub fn read_verified(
    r: impl Read,
    limit: u64,
    expected: Option<&Digest>,
    size: Option<u64>,
    what: &str,
) -> Result<(Vec<u8>, Digest), crate::ImageError> {
    let mut h = HashingReader::new(r.take(limit + 1));
    let mut data = Vec::new();
    h.read_to_end(&mut data).map_err(|e| crate::ImageError::io(what, e))?;
    if data.len() as u64 > limit {
        return Err(crate::ImageError::Format(format!(
            "{what}: larger than {limit} bytes; refusing it"
        )));
    }
    let (digest, len) = h.finish();
    if let Some(expected) = expected {
        if *expected != digest {
            return Err(crate::ImageError::DigestMismatch {
                what: what.to_string(),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    if let Some(size) = size {
        if size != len {
            return Err(crate::ImageError::Format(format!(
                "{what}: {len} bytes where its descriptor says {size}"
            )));
        }
    }
    Ok((data, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_parsing() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&d.to_string()), Ok(d.clone()));
        assert_eq!(d.short(), "ba7816bf8f01");
        assert!(Digest::parse("sha512:abcd").is_err());
        assert!(Digest::parse("sha256:ABC").is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        assert!(Digest::from_hex(&"g".repeat(64)).is_none());
    }

    #[test]
    fn verification_catches_mismatch_size_and_excess() {
        let good = Digest::of(b"hello");
        assert!(read_verified(&b"hello"[..], 100, Some(&good), Some(5), "blob").is_ok());
        let e = read_verified(&b"hellO"[..], 100, Some(&good), None, "blob").unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        let e = read_verified(&b"hello"[..], 100, Some(&good), Some(6), "blob").unwrap_err();
        assert!(e.to_string().contains("descriptor says 6"), "{e}");
        let e = read_verified(&b"hello"[..], 4, None, None, "blob").unwrap_err();
        assert!(e.to_string().contains("larger than 4"), "{e}");
    }

    /// Property: hashing in arbitrary chunks gives the one-shot digest.
    #[test]
    fn streaming_equals_one_shot() {
        let mut rng = xvisor_sys::testing::XorShift(77);
        for _ in 0..200 {
            let len = (rng.next() % 5000) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut r = HashingReader::new(&data[..]);
            let mut buf = vec![0u8; 1 + (rng.next() % 700) as usize];
            while r.read(&mut buf).unwrap() > 0 {}
            assert_eq!(r.finish(), (Digest::of(&data), len as u64));
        }
    }
}
