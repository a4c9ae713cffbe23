//! Rules only the supervisor can hold: network destinations by address
//! range and unix socket path (`[net].connect`), and programs pinned by
//! their sha256 (`[exec].allow`). This module is their meaning, as data and
//! pure decisions; the supervisor reads the guest's arguments once, asks
//! these, and performs the call itself.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A transport whose destinations a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A range of addresses: `*` (any, both families) or a prefix of one
/// family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRange {
    Any,
    V4 { network: Ipv4Addr, prefix: u8 },
    V6 { network: Ipv6Addr, prefix: u8 },
}

impl AddressRange {
    /// Whether `address` is in the range. An IPv4 address mapped into IPv6
    /// (`::ffff:a.b.c.d`, what an IPv6 socket uses to reach an IPv4 host)
    /// is matched as the IPv4 address it reaches, by IPv4 ranges, and as
    /// itself by IPv6 ranges.
    pub fn contains(&self, address: IpAddr) -> bool {
        let v4 = match address {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(a) => a.to_ipv4_mapped(),
        };
        match (*self, address) {
            (Self::Any, _) => true,
            (Self::V4 { network, prefix }, _) => v4.is_some_and(|a| {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(a) & mask == u32::from(network) & mask
            }),
            (Self::V6 { network, prefix }, IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(a) & mask == u128::from(network) & mask
            }
            (Self::V6 { .. }, IpAddr::V4(_)) => false,
        }
    }

    /// Parses `*`, `A.B.C.D`, `A.B.C.D/N`, `[V6]` or `[V6]/N`. Bits set
    /// beyond the prefix are refused: `10.1.0.0/8` is probably a mistake.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let prefix = |max: u8| -> Result<u8, String> {
            match prefix {
                None => Ok(max),
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| format!("the prefix length is a number from 0 to {max}")),
            }
        };
        if let Some(inner) = address.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
            let network: Ipv6Addr = inner.parse().map_err(|_| format!("{inner:?} is not an IPv6 address"))?;
            let prefix = prefix(128)?;
            let range = Self::V6 { network, prefix };
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            if u128::from(network) & !mask != 0 {
                return Err(format!("{text}: bits are set beyond the /{prefix} prefix"));
            }
            return Ok(range);
        }
        let network: Ipv4Addr = address.parse().map_err(|_| {
            format!("{address:?} is not an IPv4 address (IPv6 addresses are written in brackets: [::1])")
        })?;
        let prefix = prefix(32)?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        if u32::from(network) & !mask != 0 {
            return Err(format!("{text}: bits are set beyond the /{prefix} prefix"));
        }
        Ok(Self::V4 { network, prefix })
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::V4 { network, prefix: 32 } => write!(f, "{network}"),
            Self::V4 { network, prefix } => write!(f, "{network}/{prefix}"),
            Self::V6 { network, prefix: 128 } => write!(f, "[{network}]"),
            Self::V6 { network, prefix } => write!(f, "[{network}]/{prefix}"),
        }
    }
}

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An address range and a port (`None`: any port).
    Inet {
        transport: Transport,
        range: AddressRange,
        port: Option<u16>,
    },
    /// A unix socket file, by its absolute path in the instance.
    UnixPath(String),
    /// An abstract unix socket, by its name (`unix:@name`: the bytes after
    /// the address's leading NUL).
    UnixAbstract(Vec<u8>),
}

/// An abstract name as written in a rule: `@` and the name, bytes outside
/// printable ASCII as `\xNN`.
fn show_abstract(f: &mut fmt::Formatter<'_>, name: &[u8]) -> fmt::Result {
    f.write_str("unix:@")?;
    for &b in name {
        if b.is_ascii_graphic() || b == b' ' {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

impl Destination {
    /// Whether Landlock's TCP port rules hold this exactly (any address).
    pub fn is_tcp_port_only(&self) -> bool {
        matches!(
            self,
            Self::Inet {
                transport: Transport::Tcp,
                range: AddressRange::Any,
                port: Some(_),
            }
        )
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet { transport, range, port } => {
                write!(f, "{}:{range}:", transport.name())?;
                match port {
                    Some(p) => write!(f, "{p}"),
                    None => f.write_str("*"),
                }
            }
            Self::UnixPath(p) => write!(f, "unix:{p}"),
            Self::UnixAbstract(name) => show_abstract(f, name),
        }
    }
}

/// What a connect is asked to reach, as read once from the guest's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Inet {
        transport: Transport,
        address: IpAddr,
        port: u16,
    },
    /// A unix socket file, its path as resolved in the instance.
    UnixPath(String),
    /// An abstract unix socket name.
    UnixAbstract(Vec<u8>),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet {
                transport: Transport::Udp,
                address,
                port,
            } => write!(f, "udp:{}", std::net::SocketAddr::new(*address, *port)),
            Self::Inet { address, port, .. } => write!(f, "{}", std::net::SocketAddr::new(*address, *port)),
            Self::UnixPath(p) => write!(f, "unix:{p}"),
            Self::UnixAbstract(name) => show_abstract(f, name),
        }
    }
}

/// `[net].connect` as the supervisor holds it: the destinations, and which
/// kinds of socket the list restricts. TCP is restricted whenever the list
/// is present (as with Landlock's port rules); UDP and unix socket paths
/// only when the list names at least one destination of their kind, so a
/// file written for Landlock keeps its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRules {
    pub allowed: Vec<Destination>,
    /// Where the rule is, for refusals: `[net].connect (web.toml)`.
    pub source: String,
}

impl ConnectRules {
    pub fn restricts_udp(&self) -> bool {
        self.allowed.iter().any(|d| {
            matches!(
                d,
                Destination::Inet {
                    transport: Transport::Udp,
                    ..
                }
            )
        })
    }

    pub fn restricts_unix_paths(&self) -> bool {
        self.allowed.iter().any(|d| matches!(d, Destination::UnixPath(_)))
    }

    /// Whether abstract unix names are restricted: the list names one.
    pub fn restricts_abstract(&self) -> bool {
        self.allowed.iter().any(|d| matches!(d, Destination::UnixAbstract(_)))
    }

    /// Whether `target` may be reached.
    pub fn allows(&self, target: &Target) -> bool {
        match target {
            Target::Inet {
                transport: Transport::Udp,
                ..
            } if !self.restricts_udp() => true,
            Target::UnixPath(_) if !self.restricts_unix_paths() => true,
            Target::UnixAbstract(_) if !self.restricts_abstract() => true,
            Target::Inet {
                transport,
                address,
                port,
            } => self.allowed.iter().any(|d| match d {
                Destination::Inet {
                    transport: t,
                    range,
                    port: p,
                } => t == transport && range.contains(*address) && p.is_none_or(|p| p == *port),
                Destination::UnixPath(_) | Destination::UnixAbstract(_) => false,
            }),
            Target::UnixAbstract(name) => self
                .allowed
                .iter()
                .any(|d| matches!(d, Destination::UnixAbstract(n) if n == name)),
            Target::UnixPath(path) => self
                .allowed
                .iter()
                .any(|d| matches!(d, Destination::UnixPath(p) if p == path)),
        }
    }
}

/// A program that may run only while its contents have this sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPin {
    /// The path as the instance sees it, as written in the policy.
    pub path: String,
    pub sha256: [u8; 32],
}

/// Parses 64 hex digits.
pub fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!("{text:?}: a sha256 is 64 hexadecimal digits"));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
        out[i] = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(out)
}

/// 64 lowercase hex digits.
pub fn sha256_hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an open asks of a file, as its flags say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAccess {
    Read,
    Write,
    ReadWrite,
}

/// Patterns in `[fs].read` and `[fs].write`: the files they match may be
/// opened (for reading, for writing) through the supervisor, which traps
/// every open, resolves the path inside the guest's root, decides on the
/// file it found and, when a pattern grants the open, opens that file and
/// hands the descriptor in. Everything else is the kernel's, under the
/// guest's Landlock domain, which does not hold the patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRules {
    /// `[fs].read` patterns; `None` when the list is absent (reading is
    /// not restricted).
    pub read: Option<Vec<crate::glob::Pattern>>,
    /// `[fs].write` patterns; `None` when the list is absent.
    pub write: Option<Vec<crate::glob::Pattern>>,
    /// Where the rules are, for the trace: `[fs] patterns (web.toml)`.
    pub source: String,
}

impl OpenRules {
    /// Whether a pattern grants opening the file at `path` (its components
    /// below `/`, every symlink resolved) with `access`. A kind of access
    /// whose list is absent is granted (Landlock does not restrict it); a
    /// kind whose list holds only plain paths is not granted here (Landlock
    /// holds those: the open is then the kernel's).
    pub fn grants_file(&self, path: &[&str], access: OpenAccess) -> bool {
        let by = |list: &Option<Vec<crate::glob::Pattern>>, needed: bool| match list {
            _ if !needed => true,
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.matches(path)),
        };
        let (read, write) = match access {
            OpenAccess::Read => (true, false),
            OpenAccess::Write => (false, true),
            OpenAccess::ReadWrite => (true, true),
        };
        // At least one kind is granted by a pattern: an open no pattern
        // concerns is left to the kernel.
        let by_pattern = |list: &Option<Vec<crate::glob::Pattern>>, needed: bool| {
            needed && list.as_ref().is_some_and(|l| l.iter().any(|p| p.matches(path)))
        };
        by(&self.read, read)
            && by(&self.write, write)
            && (by_pattern(&self.read, read) || by_pattern(&self.write, write))
    }

    /// Whether the directory at `path` may be opened for listing (its
    /// names only): a `[fs].read` pattern matches it or could match
    /// something beneath it.
    pub fn grants_listing(&self, path: &[&str]) -> bool {
        self.read
            .iter()
            .flatten()
            .any(|p| p.matches(path) || p.may_match_below(path))
    }
}

/// What the supervisor decides for an instance beyond register values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SupervisorRules {
    /// `[net].connect`, when it names what only the supervisor can check.
    pub connect: Option<ConnectRules>,
    /// `[net].bind`, when it names what Landlock cannot hold (addresses,
    /// UDP ports, abstract names): every bind is trapped. The same kind of
    /// list as `connect`: TCP always restricted, UDP and abstract names
    /// once the list names one.
    pub bind: Option<ConnectRules>,
    /// `[fs].read` / `[fs].write` patterns: every open is trapped.
    pub open: Option<OpenRules>,
    /// `[exec].allow` entries with a sha256, checked at every exec.
    pub exec_pins: Vec<ExecPin>,
    /// Where the exec pins are, for refusals: `[exec].allow (web.toml)`.
    pub exec_source: String,
}

impl SupervisorRules {
    pub fn is_empty(&self) -> bool {
        self.connect.is_none() && self.bind.is_none() && self.open.is_none() && self.exec_pins.is_empty()
    }

    /// The pin for a program executed as `path` (the file the kernel
    /// executed, as the instance sees it), if it has one.
    #[cfg(test)]
    pub(crate) fn pin_for(&self, path: &str) -> Option<&ExecPin> {
        self.exec_pins.iter().find(|p| p.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(transport: Transport, a: &str, port: u16) -> Target {
        Target::Inet {
            transport,
            address: a.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn ranges_parse_and_contain() {
        let r = AddressRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains("10.200.3.4".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.2.3".parse().unwrap()), "mapped IPv4 is IPv4");
        assert!(!r.contains("fd00::1".parse().unwrap()));
        let host = AddressRange::parse("127.0.0.1").unwrap();
        assert_eq!(host.to_string(), "127.0.0.1");
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let v6 = AddressRange::parse("[fd00::]/8").unwrap();
        assert!(v6.contains("fdab::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all = AddressRange::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        assert!(all.contains("::ffff:1.2.3.4".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        assert!(AddressRange::parse("[::]/0").unwrap().contains("::1".parse().unwrap()));
        for bad in ["10.1.0.0/8", "10.0.0.0/33", "10.0.0", "::1", "[::1]/129", "[zz]", "*/8"] {
            assert!(AddressRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_list_restricts_tcp_always_and_udp_and_unix_when_it_names_them() {
        let rules = ConnectRules {
            allowed: vec![Destination::Inet {
                transport: Transport::Tcp,
                range: AddressRange::parse("127.0.0.0/8").unwrap(),
                port: Some(80),
            }],
            source: "[net].connect (t.toml)".into(),
        };
        assert!(rules.allows(&inet(Transport::Tcp, "127.0.0.9", 80)));
        assert!(!rules.allows(&inet(Transport::Tcp, "127.0.0.9", 81)));
        assert!(!rules.allows(&inet(Transport::Tcp, "10.0.0.1", 80)));
        assert!(rules.allows(&inet(Transport::Udp, "10.0.0.1", 53)));
        assert!(rules.allows(&Target::UnixPath("/run/x.sock".into())));
        let mut more = rules.clone();
        more.allowed.push(Destination::UnixPath("/run/a.sock".into()));
        more.allowed.push(Destination::Inet {
            transport: Transport::Udp,
            range: AddressRange::Any,
            port: Some(53),
        });
        assert!(more.allows(&Target::UnixAbstract(b"any".to_vec())), "no abstract rule");
        more.allowed.push(Destination::UnixAbstract(b"bus".to_vec()));
        assert!(more.allows(&Target::UnixAbstract(b"bus".to_vec())));
        assert!(!more.allows(&Target::UnixAbstract(b"bus2".to_vec())));
        assert!(!more.allows(&Target::UnixAbstract(b"bu".to_vec())));
        assert_eq!(Destination::UnixAbstract(b"a\0b".to_vec()).to_string(), "unix:@a\\x00b");
        assert!(more.allows(&Target::UnixPath("/run/a.sock".into())));
        assert!(!more.allows(&Target::UnixPath("/run/x.sock".into())));
        assert!(more.allows(&inet(Transport::Udp, "10.0.0.1", 53)));
        assert!(!more.allows(&inet(Transport::Udp, "10.0.0.1", 54)));
        assert!(!more.allows(&inet(Transport::Tcp, "10.0.0.1", 53)));
    }

    #[test]
    fn patterns_grant_the_files_they_match_and_listing_on_the_way() {
        let p = |t: &str| crate::glob::Pattern::parse(t).unwrap();
        let rules = OpenRules {
            read: Some(vec![p("/data/*.csv"), p("/srv/**/*.pem")]),
            write: Some(vec![p("/data/out-?.csv")]),
            source: "t".into(),
        };
        let path = |s: &'static str| s.split('/').filter(|c| !c.is_empty()).collect::<Vec<_>>();
        assert!(rules.grants_file(&path("/data/a.csv"), OpenAccess::Read));
        assert!(!rules.grants_file(&path("/data/a.txt"), OpenAccess::Read));
        assert!(
            !rules.grants_file(&path("/data/.a.csv"), OpenAccess::Read),
            "* skips a leading dot"
        );
        assert!(!rules.grants_file(&path("/data/sub/a.csv"), OpenAccess::Read));
        assert!(rules.grants_file(&path("/srv/x/y/k.pem"), OpenAccess::Read));
        assert!(!rules.grants_file(&path("/data/a.csv"), OpenAccess::Write));
        assert!(!rules.grants_file(&path("/data/a.csv"), OpenAccess::ReadWrite));
        assert!(rules.grants_file(&path("/data/out-1.csv"), OpenAccess::Write));
        assert!(rules.grants_file(&path("/data/out-1.csv"), OpenAccess::ReadWrite));
        assert!(rules.grants_listing(&path("/")));
        assert!(rules.grants_listing(&path("/data")));
        assert!(rules.grants_listing(&path("/srv/x/y")));
        assert!(!rules.grants_listing(&path("/data/sub")), "no match can be beneath it");
        assert!(!rules.grants_listing(&path("/etc")));
        // An absent list grants its kind; a pattern must grant the other.
        let write_only = OpenRules {
            read: None,
            write: Some(vec![p("/data/*.log")]),
            source: "t".into(),
        };
        assert!(write_only.grants_file(&path("/data/a.log"), OpenAccess::ReadWrite));
        assert!(
            !write_only.grants_file(&path("/data/a.txt"), OpenAccess::Read),
            "left to the kernel"
        );
        assert!(!write_only.grants_listing(&path("/data")));
    }

    #[test]
    fn hashes_parse() {
        let h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_hex(&parse_sha256(h).unwrap()), h);
        assert_eq!(sha256_hex(&parse_sha256(&h.to_uppercase()).unwrap()), h);
        assert!(parse_sha256(&h[1..]).is_err());
        assert!(parse_sha256(&format!("{}g", &h[1..])).is_err());
    }
}
