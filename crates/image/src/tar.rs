//! A streaming reader for tar archives (ustar, GNU and PAX headers), written
//! for untrusted input: every field is bounds-checked, numbers overflow into
//! errors, extension records are size-capped, and nothing panics (a fuzz
//! target in `fuzz/` checks that). It only parses: where an entry goes on
//! disk is decided by [`crate::layer`], never here.
//!
//! Also a minimal [`Builder`] (ustar, with PAX records for long names) used
//! by the tests to make archives, hostile ones included.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;
/// GNU long names and PAX extension records larger than this are refused.
pub const MAX_EXTENSION: u64 = 1 << 20;

/// What a tar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

/// One entry's header, with GNU and PAX extensions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path as stored (raw bytes; not yet checked).
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bytes of data that follow (regular files only; zero otherwise).
    pub size: u64,
    /// Target of a symlink or hard link.
    pub link: Vec<u8>,
    pub device: (u32, u32),
}

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("truncated archive (it ends inside {0})")]
    Truncated(&'static str),
    #[error("malformed tar header: {0}")]
    Malformed(String),
    #[error("unsupported tar entry type {0:?}")]
    Unsupported(char),
}

fn malformed(what: impl Into<String>) -> TarError {
    TarError::Malformed(what.into())
}

/// Reads entries one after the other from any byte stream.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    /// Data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    finished: bool,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end of stream
/// before the first byte.
fn read_block(r: &mut impl Read, buf: &mut [u8], inside: &'static str) -> Result<bool, TarError> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else { break };
        match r.read(rest) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(TarError::Truncated(inside)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn skip(r: &mut impl Read, mut n: u64, inside: &'static str) -> Result<(), TarError> {
    let mut buf = [0u8; 8192];
    while n > 0 {
        let want = n.min(buf.len() as u64) as usize;
        let Some(chunk) = buf.get_mut(..want) else { break };
        match r.read(chunk) {
            Ok(0) => return Err(TarError::Truncated(inside)),
            Ok(got) => n -= got as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn field(block: &[u8], start: usize, len: usize) -> &[u8] {
    block.get(start..start + len).unwrap_or(&[])
}

/// A NUL-terminated string field.
fn text(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    raw.get(..end).unwrap_or(&[])
}

/// An octal number field (spaces and NULs around it), or GNU base-256 when
/// the high bit of the first byte is set.
pub fn number(raw: &[u8], what: &str) -> Result<u64, TarError> {
    if let Some((&first, rest)) = raw.split_first() {
        if first & 0x80 != 0 {
            if first & 0x40 != 0 {
                return Err(malformed(format!("negative {what}")));
            }
            let mut v: u64 = u64::from(first & 0x3f);
            for &b in rest {
                v = v
                    .checked_mul(256)
                    .and_then(|v| v.checked_add(u64::from(b)))
                    .ok_or_else(|| malformed(format!("{what} too large")))?;
            }
            return Ok(v);
        }
    }
    let trimmed: Vec<u8> = text(raw).iter().copied().filter(|&b| b != b' ').collect();
    if trimmed.is_empty() {
        return Ok(0);
    }
    let mut v: u64 = 0;
    for b in trimmed {
        if !(b'0'..=b'7').contains(&b) {
            return Err(malformed(format!("{what} is not an octal number")));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| malformed(format!("{what} too large")))?;
    }
    Ok(v)
}

fn small(v: u64, what: &str) -> Result<u32, TarError> {
    u32::try_from(v).map_err(|_| malformed(format!("{what} too large")))
}

fn checksum_ok(block: &[u8]) -> Result<bool, TarError> {
    let stored = number(field(block, 148, 8), "checksum")?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    Ok(stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed))
}

/// PAX overrides collected from an `x` record.
#[derive(Debug, Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
}

fn decimal(v: &[u8], what: &str) -> Result<u64, TarError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| malformed(format!("PAX {what} is not a number")))
}

/// Parses PAX records: `LEN KEY=VALUE\n`, LEN counting the whole record.
fn parse_pax(mut data: &[u8], pax: &mut Pax) -> Result<(), TarError> {
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| malformed("PAX record without a length"))?;
        let len = decimal(data.get(..space).unwrap_or(&[]), "record length")? as usize;
        if len <= space + 1 || len > data.len() {
            return Err(malformed("PAX record length out of range"));
        }
        let record = data.get(space + 1..len).unwrap_or(&[]);
        let record = record
            .strip_suffix(b"\n")
            .ok_or_else(|| malformed("PAX record not ended by a newline"))?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| malformed("PAX record without '='"))?;
        let (key, value) = (record.get(..eq).unwrap_or(&[]), record.get(eq + 1..).unwrap_or(&[]));
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.link = Some(value.to_vec()),
            b"size" => pax.size = Some(decimal(value, "size")?),
            b"uid" => pax.uid = Some(decimal(value, "uid")?),
            b"gid" => pax.gid = Some(decimal(value, "gid")?),
            k if k.starts_with(b"GNU.sparse") => return Err(TarError::Unsupported('S')),
            _ => {}
        }
        data = data.get(len..).unwrap_or(&[]);
    }
    Ok(())
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            remaining: 0,
            padding: 0,
            finished: false,
        }
    }

    /// Gives the underlying stream back (for example to drain what follows
    /// the archive's end).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The underlying stream (positioned at the current entry's unread data).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Skips the current entry's data by seeking instead of reading.
    pub fn seek_past_data(&mut self) -> io::Result<()>
    where
        R: io::Seek,
    {
        let n = self.remaining + self.padding;
        let n = i64::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        self.inner.seek(io::SeekFrom::Current(n))?;
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    /// Reads an extension record's data (GNU long name, PAX), size-capped.
    fn read_extension(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        if size > MAX_EXTENSION {
            return Err(malformed(format!(
                "extension record of {size} bytes (limit {MAX_EXTENSION})"
            )));
        }
        let mut data = vec![0u8; size as usize];
        if !read_block(&mut self.inner, &mut data, "an extension record")? && size > 0 {
            return Err(TarError::Truncated("an extension record"));
        }
        skip(&mut self.inner, padding_of(size), "an extension record")?;
        Ok(data)
    }

    /// The next entry, or `None` at the end of the archive. Data of the
    /// previous entry left unread is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.finished {
            return Ok(None);
        }
        skip(&mut self.inner, self.remaining + self.padding, "an entry's data")?;
        self.remaining = 0;
        self.padding = 0;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax = Pax::default();
        // Extension records precede their entry; a bounded number of them.
        for _ in 0..16 {
            let mut block = [0u8; BLOCK];
            if !read_block(&mut self.inner, &mut block, "a header")? {
                // No end-of-archive blocks: accepted, as GNU tar does; a
                // truncated layer is caught by its digest and size.
                self.finished = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.finished = true;
                return Ok(None);
            }
            if !checksum_ok(&block)? {
                return Err(malformed("bad header checksum"));
            }
            let header_size = number(field(&block, 124, 12), "size")?;
            let typeflag = block.get(156).copied().unwrap_or(0);
            match typeflag {
                b'L' => {
                    long_name = Some(text(&self.read_extension(header_size)?).to_vec());
                    continue;
                }
                b'K' => {
                    long_link = Some(text(&self.read_extension(header_size)?).to_vec());
                    continue;
                }
                b'x' => {
                    let data = self.read_extension(header_size)?;
                    parse_pax(&data, &mut pax)?;
                    continue;
                }
                b'g' => {
                    // Global PAX defaults: nothing in them changes where or
                    // what an entry is for us (path and size are per entry).
                    self.read_extension(header_size)?;
                    continue;
                }
                _ => {}
            }
            let magic = field(&block, 257, 6);
            let ustar = magic == b"ustar\0";
            let mut path = text(field(&block, 0, 100)).to_vec();
            if ustar {
                let prefix = text(field(&block, 345, 155));
                if !prefix.is_empty() {
                    let mut p = prefix.to_vec();
                    p.push(b'/');
                    p.extend_from_slice(&path);
                    path = p;
                }
            }
            if let Some(n) = long_name.take() {
                path = n;
            }
            if let Some(p) = pax.path.take() {
                path = p;
            }
            let mut link = text(field(&block, 157, 100)).to_vec();
            if let Some(l) = long_link.take() {
                link = l;
            }
            if let Some(l) = pax.link.take() {
                link = l;
            }
            let kind = match typeflag {
                b'0' | 0 | b'7' => {
                    if path.ends_with(b"/") {
                        Kind::Directory
                    } else {
                        Kind::File
                    }
                }
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::CharDevice,
                b'4' => Kind::BlockDevice,
                b'5' => Kind::Directory,
                b'6' => Kind::Fifo,
                other => return Err(TarError::Unsupported(other as char)),
            };
            let size = pax.size.unwrap_or(header_size);
            // Only regular files carry data (a hard link's size is ignored,
            // as GNU tar does; a directory's must be zero).
            let data = match kind {
                Kind::File => size,
                Kind::HardLink | Kind::Symlink | Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
                    if size != 0 && kind != Kind::HardLink {
                        return Err(malformed("a non-file entry carries data"));
                    }
                    size
                }
                Kind::Directory => {
                    if size != 0 {
                        return Err(malformed("a directory entry carries data"));
                    }
                    0
                }
            };
            let mode = number(field(&block, 100, 8), "mode")? & 0o7777;
            let uid = small(pax.uid.map_or_else(|| number(field(&block, 108, 8), "uid"), Ok)?, "uid")?;
            let gid = small(pax.gid.map_or_else(|| number(field(&block, 116, 8), "gid"), Ok)?, "gid")?;
            let device = if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
                (
                    small(number(field(&block, 329, 8), "device major")?, "device major")?,
                    small(number(field(&block, 337, 8), "device minor")?, "device minor")?,
                )
            } else {
                (0, 0)
            };
            self.remaining = data;
            self.padding = padding_of(data);
            return Ok(Some(Entry {
                path,
                kind,
                mode: mode as u32,
                uid,
                gid,
                size: if kind == Kind::File { size } else { 0 },
                link,
                device,
            }));
        }
        Err(malformed("too many extension records before one entry"))
    }
}

impl<R: Read> Read for Reader<R> {
    /// Reads the current entry's data; 0 at its end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let Some(chunk) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = self.inner.read(chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated archive (it ends inside a file's data)",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn padding_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Writes tar archives (ustar; PAX records for names longer than 100
/// bytes). Everything is written as given: tests use it to make hostile
/// archives too.
#[derive(Debug)]
pub struct Builder<W: Write> {
    out: W,
}

/// A header for [`Builder::append`].
#[derive(Debug, Clone)]
pub struct Header<'a> {
    pub path: &'a [u8],
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub link: &'a [u8],
    pub device: (u32, u32),
}

impl<'a> Header<'a> {
    pub fn new(kind: Kind, path: &'a str) -> Self {
        let mode = match kind {
            Kind::Directory => 0o755,
            _ => 0o644,
        };
        Self {
            path: path.as_bytes(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            link: b"",
            device: (0, 0),
        }
    }

    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn link(mut self, target: &'a str) -> Self {
        self.link = target.as_bytes();
        self
    }

    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn device(mut self, major: u32, minor: u32) -> Self {
        self.device = (major, minor);
        self
    }
}

fn put_octal(block: &mut [u8], start: usize, len: usize, value: u64) {
    let s = format!("{value:0width$o}", width = len - 1);
    let bytes = s.as_bytes();
    let from = bytes.len().saturating_sub(len - 1);
    if let (Some(dst), Some(src)) = (block.get_mut(start..start + len - 1), bytes.get(from..)) {
        if dst.len() == src.len() {
            dst.copy_from_slice(src);
        }
    }
}

fn put_bytes(block: &mut [u8], start: usize, value: &[u8], max: usize) {
    let n = value.len().min(max);
    if let (Some(dst), Some(src)) = (block.get_mut(start..start + n), value.get(..n)) {
        dst.copy_from_slice(src);
    }
}

impl<W: Write> Builder<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    fn raw_header(&mut self, typeflag: u8, path: &[u8], h: &Header<'_>, size: u64) -> io::Result<()> {
        let mut block = [0u8; BLOCK];
        put_bytes(&mut block, 0, path, 100);
        put_octal(&mut block, 100, 8, u64::from(h.mode));
        put_octal(&mut block, 108, 8, u64::from(h.uid));
        put_octal(&mut block, 116, 8, u64::from(h.gid));
        put_octal(&mut block, 124, 12, size);
        put_octal(&mut block, 136, 12, 0);
        block[156] = typeflag;
        put_bytes(&mut block, 157, h.link, 100);
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        put_octal(&mut block, 329, 8, u64::from(h.device.0));
        put_octal(&mut block, 337, 8, u64::from(h.device.1));
        block[148..156].copy_from_slice(b"        ");
        let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
        put_octal(&mut block, 148, 7, sum);
        block[155] = b' ';
        self.out.write_all(&block)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        self.out.write_all(&vec![0u8; padding_of(size) as usize])
    }

    /// Appends an entry and its data (`data` is written only for files).
    pub fn append(&mut self, h: &Header<'_>, data: &[u8]) -> io::Result<()> {
        if h.path.len() > 100 || h.link.len() > 100 {
            let mut records = Vec::new();
            for (key, value) in [("path", h.path), ("linkpath", h.link)] {
                if value.len() > 100 {
                    let body_len = key.len() + value.len() + 3;
                    let mut len = body_len + body_len.to_string().len();
                    if len.to_string().len() != body_len.to_string().len() {
                        len += 1;
                    }
                    records.extend_from_slice(format!("{len} {key}=").as_bytes());
                    records.extend_from_slice(value);
                    records.push(b'\n');
                }
            }
            self.raw_header(b'x', b"PaxHeader", &Header::new(Kind::File, ""), records.len() as u64)?;
            self.out.write_all(&records)?;
            self.pad(records.len() as u64)?;
        }
        let typeflag = match h.kind {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Directory => b'5',
            Kind::Fifo => b'6',
        };
        let size = if h.kind == Kind::File { data.len() as u64 } else { 0 };
        self.raw_header(typeflag, h.path, h, size)?;
        if h.kind == Kind::File {
            self.out.write_all(data)?;
            self.pad(size)?;
        }
        Ok(())
    }

    /// Convenience: a regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.append(&Header::new(Kind::File, path).mode(mode), data)
    }

    /// Convenience: a directory.
    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        self.append(&Header::new(Kind::Directory, path), b"")
    }

    /// Convenience: a symlink.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.append(&Header::new(Kind::Symlink, path).mode(0o777).link(target), b"")
    }

    /// Writes the end-of-archive blocks and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(data: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>, TarError> {
        let mut r = Reader::new(data);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            let mut body = Vec::new();
            r.read_to_end(&mut body)?;
            out.push((e, body));
        }
        Ok(out)
    }

    #[test]
    fn round_trip_with_long_names() {
        let long = format!("{}/file", "d".repeat(150));
        let target = "t".repeat(120);
        let mut b = Builder::new(Vec::new());
        b.dir("a/").unwrap();
        b.file("a/x", 0o755, b"hello").unwrap();
        b.file(&long, 0o644, &[7u8; 1000]).unwrap();
        b.symlink("a/l", &target).unwrap();
        b.append(&Header::new(Kind::HardLink, "a/h").link("a/x"), b"").unwrap();
        let data = b.finish().unwrap();
        let got = entries(&data).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].0.kind, Kind::Directory);
        assert_eq!((got[1].0.mode, got[1].1.as_slice()), (0o755, &b"hello"[..]));
        assert_eq!(got[2].0.path, long.as_bytes());
        assert_eq!(got[2].1.len(), 1000);
        assert_eq!(got[3].0.link, target.as_bytes());
        assert_eq!(got[4].0.kind, Kind::HardLink);
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        let mut b = Builder::new(Vec::new());
        b.file("f", 0o644, &[1u8; 3000]).unwrap();
        let data = b.finish().unwrap();
        for cut in [100, 512, 700, 2000, 3550] {
            let e = entries(&data[..cut]).unwrap_err();
            assert!(e.to_string().contains("truncated"), "{cut}: {e}");
        }
    }

    #[test]
    fn numbers_octal_and_base256() {
        assert_eq!(number(b"0000644\0", "m").unwrap(), 0o644);
        assert_eq!(number(b"  755 \0", "m").unwrap(), 0o755);
        assert_eq!(number(&[0x80, 0, 0, 1, 0], "s").unwrap(), 256);
        assert!(number(&[0xff; 12], "s").is_err());
        assert!(number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "s").is_err());
        assert!(number(b"12x", "m").is_err());
    }

    #[test]
    fn bad_checksum_and_sparse_are_refused() {
        let mut b = Builder::new(Vec::new());
        b.file("f", 0o644, b"x").unwrap();
        let mut data = b.finish().unwrap();
        data[0] = b'g';
        assert!(matches!(entries(&data), Err(TarError::Malformed(_))));
        data[0] = b'f';
        data[156] = b'S';
        // Fix the checksum for the new type flag.
        data[148..156].copy_from_slice(b"        ");
        let sum: u64 = data[..512].iter().map(|&b| u64::from(b)).sum();
        data[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(matches!(entries(&data), Err(TarError::Unsupported('S'))));
    }

    #[test]
    fn oversized_extension_records_are_refused() {
        let mut block = [0u8; BLOCK];
        put_bytes(&mut block, 0, b"././@LongLink", 100);
        put_octal(&mut block, 124, 12, MAX_EXTENSION + 1);
        block[156] = b'L';
        block[148..156].copy_from_slice(b"        ");
        let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
        put_octal(&mut block, 148, 7, sum);
        let e = entries(&block).unwrap_err();
        assert!(e.to_string().contains("extension record"), "{e}");
    }

    /// Random bytes and random mutations of a valid archive never panic.
    #[test]
    fn arbitrary_input_never_panics() {
        let mut b = Builder::new(Vec::new());
        b.dir("d/").unwrap();
        b.file(&"n".repeat(130), 0o644, b"data").unwrap();
        b.symlink("d/l", "../x").unwrap();
        let valid = b.finish().unwrap();
        let mut rng = xvisor_sys::testing::XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..3000 {
            let mut data = valid.clone();
            for _ in 0..(rng.next() % 8) {
                let i = (rng.next() as usize) % data.len();
                data[i] = rng.next() as u8;
            }
            let cut = (rng.next() as usize) % (data.len() + 1);
            let _ = entries(&data[..cut]);
        }
        for _ in 0..2000 {
            let len = (rng.next() % 2048) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = entries(&data);
        }
    }
}
