//! `connect` and the sends that name a destination under `[net].connect`
//! rules the supervisor holds: what the
//! bytes the guest passed mean for the socket they are passed to, read once
//! and classified here; the supervisor then decides on this copy and
//! connects its own duplicate of the guest's socket with the same bytes, so
//! nothing the guest changes afterwards reaches the kernel.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xvisor_trap::supervised::{Target, Transport};

use crate::dispatch::errno;

pub const AF_UNSPEC: i32 = 0;
pub const AF_UNIX: i32 = 1;
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const SOCK_DGRAM: i32 = 2;

/// `sizeof(struct sockaddr_storage)`: the kernel refuses longer addresses
/// with EINVAL before reading them.
pub const MAX_ADDRESS_LEN: usize = 128;
/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH_OFFSET: usize = 2;
/// `sizeof(struct sockaddr_in)`.
const SOCKADDR_IN_LEN: usize = 16;
/// `SIN6_LEN_RFC2133`: the shortest IPv6 address the kernel takes.
const SOCKADDR_IN6_MIN_LEN: usize = 24;

/// What connecting a socket of this family and type to these bytes does,
/// as far as a rule is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectPlan {
    /// Nothing a rule names (dissolving an association with `AF_UNSPEC`,
    /// another family's socket): connect the duplicate with the bytes.
    Perform,
    /// An IPv4 or IPv6 destination: decide on it, then connect.
    Inet(Target),
    /// A unix socket file, by the path the guest wrote (absolute, or
    /// relative to its working directory): resolve it in the instance,
    /// decide on the file, connect through the resolved file.
    UnixPath(Vec<u8>),
    /// An abstract unix socket name (the bytes after its leading NUL):
    /// connect only where the socket's network namespace is the
    /// instance's own.
    Abstract(Vec<u8>),
    /// The kernel would refuse it so: answered without performing.
    Fail(i32),
}

/// Classifies a connect of a socket (`family`, `socket_type` as the kernel
/// reports them) to `address` (the bytes copied from the guest, at most
/// [`MAX_ADDRESS_LEN`]).
pub fn plan_connect(family: i32, socket_type: i32, address: &[u8]) -> ConnectPlan {
    if address.len() < 2 {
        return ConnectPlan::Fail(errno::EINVAL);
    }
    let address_family = i32::from(u16::from_ne_bytes([address[0], address[1]]));
    match family {
        AF_INET | AF_INET6 => {
            let transport = if socket_type == SOCK_DGRAM {
                Transport::Udp
            } else {
                // Stream sockets and anything else that is not a datagram
                // socket: decided as TCP (stricter than leaving it).
                Transport::Tcp
            };
            let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
            match address_family {
                AF_UNSPEC => ConnectPlan::Perform,
                AF_INET if address.len() >= SOCKADDR_IN_LEN => {
                    let ip = Ipv4Addr::new(address[4], address[5], address[6], address[7]);
                    ConnectPlan::Inet(Target::Inet {
                        transport,
                        address: IpAddr::V4(ip),
                        port: port(address),
                    })
                }
                AF_INET6 if address.len() >= SOCKADDR_IN6_MIN_LEN => {
                    let mut ip = [0u8; 16];
                    ip.copy_from_slice(&address[8..24]);
                    ConnectPlan::Inet(Target::Inet {
                        transport,
                        address: IpAddr::V6(Ipv6Addr::from(ip)),
                        port: port(address),
                    })
                }
                AF_INET | AF_INET6 => ConnectPlan::Fail(errno::EINVAL),
                _ => ConnectPlan::Fail(errno::EAFNOSUPPORT),
            }
        }
        AF_UNIX => match address_family {
            AF_UNSPEC if socket_type == SOCK_DGRAM => ConnectPlan::Perform,
            AF_UNIX if address.len() > SUN_PATH_OFFSET => {
                let path = &address[SUN_PATH_OFFSET..];
                if path[0] == 0 {
                    return ConnectPlan::Abstract(path[1..].to_vec());
                }
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                ConnectPlan::UnixPath(path[..end].to_vec())
            }
            _ => ConnectPlan::Fail(errno::EINVAL),
        },
        // Netlink and the other families the filter lets through: no rule
        // names them, and their own checks look at the socket's opener.
        _ => ConnectPlan::Perform,
    }
}

/// What binding a socket (`family`, `socket_type`) to the address the
/// guest named means, as far as a `[net].bind` rule is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindPlan {
    /// A local IPv4 or IPv6 address and port of a TCP or UDP socket:
    /// decide on it, then bind the duplicate with the bytes.
    Inet(Target),
    /// An abstract unix name (or, with an empty name, the kernel's choice
    /// of one: autobind): no file is made and no privilege checked, so the
    /// duplicate is bound with the bytes once a rule allows it.
    Abstract(Vec<u8>),
    /// A unix socket file, which a bind makes in the guest's tree with the
    /// guest's ids, umask and Landlock domain: not made by the supervisor.
    UnixPath,
    /// Netlink, joining multicast groups (`nl_groups` not 0), which the
    /// kernel checks against the binder's privileges: not made by the
    /// supervisor.
    NetlinkGroups,
    /// Netlink without groups, and IP sockets of other types: nothing a
    /// rule names, no privilege checked; bound with the bytes.
    AsGiven,
    /// Another family, whose bind may check the binder's privileges.
    Foreign,
    /// The kernel would refuse it so.
    Fail(i32),
}

/// Classifies a bind; `address` is the copy (at most [`MAX_ADDRESS_LEN`]).
pub fn plan_bind(family: i32, socket_type: i32, address: &[u8]) -> BindPlan {
    if address.len() < 2 {
        return BindPlan::Fail(errno::EINVAL);
    }
    let address_family = i32::from(u16::from_ne_bytes([address[0], address[1]]));
    let transport = match socket_type {
        SOCK_STREAM => Some(Transport::Tcp),
        SOCK_DGRAM => Some(Transport::Udp),
        _ => None,
    };
    let port = |a: &[u8]| u16::from_be_bytes([a[2], a[3]]);
    match family {
        AF_INET => {
            if address.len() < SOCKADDR_IN_LEN {
                return BindPlan::Fail(errno::EINVAL);
            }
            let ip = Ipv4Addr::new(address[4], address[5], address[6], address[7]);
            // AF_UNSPEC is taken for AF_INET with the any address only.
            let taken = address_family == AF_INET || (address_family == AF_UNSPEC && ip.is_unspecified());
            match (taken, transport) {
                (false, _) => BindPlan::Fail(EAFNOSUPPORT),
                (true, Some(transport)) => BindPlan::Inet(Target::Inet {
                    transport,
                    address: IpAddr::V4(ip),
                    port: port(address),
                }),
                (true, None) => BindPlan::AsGiven,
            }
        }
        AF_INET6 => {
            if address.len() < SOCKADDR_IN6_MIN_LEN {
                return BindPlan::Fail(errno::EINVAL);
            }
            if address_family != AF_INET6 {
                return BindPlan::Fail(EAFNOSUPPORT);
            }
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&address[8..24]);
            match transport {
                Some(transport) => BindPlan::Inet(Target::Inet {
                    transport,
                    address: IpAddr::V6(Ipv6Addr::from(ip)),
                    port: port(address),
                }),
                None => BindPlan::AsGiven,
            }
        }
        AF_UNIX => match address_family {
            AF_UNIX if address.len() == SUN_PATH_OFFSET => BindPlan::Abstract(Vec::new()),
            AF_UNIX if address[SUN_PATH_OFFSET] == 0 => BindPlan::Abstract(address[SUN_PATH_OFFSET + 1..].to_vec()),
            AF_UNIX => BindPlan::UnixPath,
            _ => BindPlan::Fail(errno::EINVAL),
        },
        AF_NETLINK => {
            // struct sockaddr_nl: family, pad, pid (u32), groups (u32).
            if address.len() < 12 {
                return BindPlan::Fail(errno::EINVAL);
            }
            match address[8..12].iter().all(|&b| b == 0) {
                true => BindPlan::AsGiven,
                false => BindPlan::NetlinkGroups,
            }
        }
        _ => BindPlan::Foreign,
    }
}

const EAFNOSUPPORT: i32 = 97;

/// What sending on a socket (`family`, `socket_type`) to the address the
/// guest named means, as far as a rule is concerned. The kernel reads a
/// send's address differently from a connect's: an IPv4 UDP socket takes
/// an `AF_UNSPEC` address as IPv4 (connect dissolves with it), an IPv6 one
/// takes an `AF_INET` address as IPv4 and `AF_UNSPEC` as no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendPlan {
    /// No destination named: the socket's connected peer (decided at its
    /// connect). Sent without an address.
    NoAddress,
    /// The kernel ignores or refuses the address without using it (a unix
    /// stream or seqpacket socket): sent with the bytes as given.
    AsGiven,
    /// An IPv4 or IPv6 destination: decide on it, then send with the bytes.
    Inet(Target),
    /// A unix socket file: resolve it in the instance, decide on the file,
    /// send through the resolved file.
    UnixPath(Vec<u8>),
    /// An abstract unix socket name (the bytes after its leading NUL).
    Abstract(Vec<u8>),
    /// A family no rule names, with an address: not sent by the supervisor
    /// (its privileges could reach further than the guest's: a netlink
    /// message to another process).
    Foreign,
    /// The kernel would refuse it so.
    Fail(i32),
}

/// `AF_NETLINK`: messages to the kernel (`nl_pid` 0, no groups) are the
/// only netlink destinations the supervisor sends to.
pub const AF_NETLINK: i32 = 16;
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_SEQPACKET: i32 = 5;

/// Classifies a send on a socket (`family`, `socket_type`) to `address`
/// (the bytes copied from the guest, at most [`MAX_ADDRESS_LEN`]; `None`
/// when the call named none).
pub fn plan_send(family: i32, socket_type: i32, address: Option<&[u8]>) -> SendPlan {
    let Some(address) = address else {
        return SendPlan::NoAddress;
    };
    match family {
        AF_INET | AF_INET6 if socket_type == SOCK_DGRAM => {
            let udp = |ip: IpAddr, port: u16| {
                SendPlan::Inet(Target::Inet {
                    transport: Transport::Udp,
                    address: ip,
                    port,
                })
            };
            let v4 = |a: &[u8]| {
                udp(
                    IpAddr::V4(Ipv4Addr::new(a[4], a[5], a[6], a[7])),
                    u16::from_be_bytes([a[2], a[3]]),
                )
            };
            if family == AF_INET {
                if address.len() < SOCKADDR_IN_LEN {
                    return SendPlan::Fail(errno::EINVAL);
                }
                return match i32::from(u16::from_ne_bytes([address[0], address[1]])) {
                    AF_INET | AF_UNSPEC => v4(address),
                    _ => SendPlan::Fail(errno::EAFNOSUPPORT),
                };
            }
            if address.len() < SUN_PATH_OFFSET {
                return SendPlan::Fail(errno::EINVAL);
            }
            match i32::from(u16::from_ne_bytes([address[0], address[1]])) {
                AF_INET6 if address.len() >= SOCKADDR_IN6_MIN_LEN => {
                    let mut ip = [0u8; 16];
                    ip.copy_from_slice(&address[8..24]);
                    udp(
                        IpAddr::V6(Ipv6Addr::from(ip)),
                        u16::from_be_bytes([address[2], address[3]]),
                    )
                }
                AF_INET if address.len() >= SOCKADDR_IN_LEN => v4(address),
                AF_UNSPEC => SendPlan::NoAddress,
                _ => SendPlan::Fail(errno::EINVAL),
            }
        }
        // A stream socket ignores the address (TCP without Fast Open,
        // refused before this) or refuses it; a seqpacket one (SCTP) may
        // set up an association to it: decided as TCP, as its connect is.
        AF_INET | AF_INET6 => match plan_connect(family, socket_type, address) {
            ConnectPlan::Inet(target) => SendPlan::Inet(target),
            _ => SendPlan::AsGiven,
        },
        AF_UNIX if socket_type == SOCK_DGRAM && address.is_empty() => SendPlan::NoAddress,
        AF_UNIX if socket_type == SOCK_DGRAM => match plan_connect(family, socket_type, address) {
            ConnectPlan::UnixPath(path) => SendPlan::UnixPath(path),
            ConnectPlan::Abstract(name) => SendPlan::Abstract(name),
            _ => SendPlan::Fail(errno::EINVAL),
        },
        // Stream sockets refuse an address (EISCONN, EOPNOTSUPP) and
        // seqpacket ones drop it, neither looking up the path.
        AF_UNIX => SendPlan::AsGiven,
        AF_NETLINK => {
            // struct sockaddr_nl: family, pad, pid (u32), groups (u32).
            if address.len() >= 12 && address[4..12].iter().all(|&b| b == 0) {
                SendPlan::AsGiven
            } else {
                SendPlan::Foreign
            }
        }
        _ => SendPlan::Foreign,
    }
}

/// The bytes of a `sockaddr_un` naming `path` (for connecting through a
/// resolved file: `/proc/self/fd/N`). `None` if it does not fit.
pub fn unix_address(path: &str) -> Option<Vec<u8>> {
    const SUN_PATH_LEN: usize = 108;
    if path.len() >= SUN_PATH_LEN {
        return None;
    }
    let mut out = (AF_UNIX as u16).to_ne_bytes().to_vec();
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = (AF_INET as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0; 8]);
        b
    }

    fn inet6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
        let mut b = (AF_INET6 as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&ip.octets());
        b.extend_from_slice(&[0; 4]);
        b
    }

    #[test]
    fn inet_addresses_are_read_for_the_socket_they_go_to() {
        let tcp = |address: &str, port| {
            ConnectPlan::Inet(Target::Inet {
                transport: Transport::Tcp,
                address: address.parse().unwrap(),
                port,
            })
        };
        assert_eq!(
            plan_connect(AF_INET, 1, &inet4([127, 0, 0, 1], 443)),
            tcp("127.0.0.1", 443)
        );
        assert_eq!(
            plan_connect(AF_INET6, 1, &inet6("::ffff:10.0.0.1".parse().unwrap(), 80)),
            tcp("::ffff:10.0.0.1", 80)
        );
        let udp = plan_connect(AF_INET, SOCK_DGRAM, &inet4([10, 0, 0, 1], 53));
        assert!(matches!(
            udp,
            ConnectPlan::Inet(Target::Inet {
                transport: Transport::Udp,
                ..
            })
        ));
        assert_eq!(
            plan_connect(AF_INET, 1, &inet4([1, 2, 3, 4], 1)[..15]),
            ConnectPlan::Fail(errno::EINVAL)
        );
        assert_eq!(
            plan_connect(AF_INET, 1, &[0, 0]),
            ConnectPlan::Perform,
            "AF_UNSPEC dissolves"
        );
        assert_eq!(
            plan_connect(AF_INET, 1, &[1, 0, 0, 0]),
            ConnectPlan::Fail(errno::EAFNOSUPPORT)
        );
        assert_eq!(plan_connect(AF_INET, 1, &[2]), ConnectPlan::Fail(errno::EINVAL));
    }

    #[test]
    fn unix_addresses_are_paths_or_abstract_names() {
        let mut path = (AF_UNIX as u16).to_ne_bytes().to_vec();
        path.extend_from_slice(b"/run/x.sock\0garbage");
        assert_eq!(
            plan_connect(AF_UNIX, 1, &path),
            ConnectPlan::UnixPath(b"/run/x.sock".to_vec())
        );
        let mut unterminated = (AF_UNIX as u16).to_ne_bytes().to_vec();
        unterminated.extend_from_slice(b"rel.sock");
        assert_eq!(
            plan_connect(AF_UNIX, 1, &unterminated),
            ConnectPlan::UnixPath(b"rel.sock".to_vec())
        );
        let mut abstract_name = (AF_UNIX as u16).to_ne_bytes().to_vec();
        abstract_name.extend_from_slice(b"\0name");
        assert_eq!(
            plan_connect(AF_UNIX, 1, &abstract_name),
            ConnectPlan::Abstract(b"name".to_vec())
        );
        assert_eq!(plan_connect(AF_UNIX, 1, &[1, 0]), ConnectPlan::Fail(errno::EINVAL));
        assert_eq!(
            plan_connect(AF_UNIX, 1, &inet4([1, 2, 3, 4], 1)),
            ConnectPlan::Fail(errno::EINVAL)
        );
        assert_eq!(plan_connect(16, 3, &[16, 0, 0, 0]), ConnectPlan::Perform);
        // Binds: the local address a rule decides on.
        assert_eq!(
            plan_bind(AF_INET, 2, &inet4([127, 0, 0, 1], 5353)),
            BindPlan::Inet(Target::Inet {
                transport: Transport::Udp,
                address: "127.0.0.1".parse().unwrap(),
                port: 5353
            })
        );
        let mut unspec_any = inet4([0, 0, 0, 0], 80);
        unspec_any[..2].copy_from_slice(&(AF_UNSPEC as u16).to_ne_bytes());
        assert!(matches!(plan_bind(AF_INET, 1, &unspec_any), BindPlan::Inet(_)));
        let mut unspec_host = inet4([1, 2, 3, 4], 80);
        unspec_host[..2].copy_from_slice(&(AF_UNSPEC as u16).to_ne_bytes());
        assert_eq!(plan_bind(AF_INET, 1, &unspec_host), BindPlan::Fail(EAFNOSUPPORT));
        assert_eq!(
            plan_bind(AF_INET, 1, &inet4([1, 2, 3, 4], 80)[..8]),
            BindPlan::Fail(errno::EINVAL)
        );
        assert_eq!(plan_bind(AF_INET, 3, &inet4([1, 2, 3, 4], 80)), BindPlan::AsGiven);
        assert_eq!(
            plan_bind(AF_UNIX, 1, &abstract_name),
            BindPlan::Abstract(b"name".to_vec())
        );
        assert_eq!(plan_bind(AF_UNIX, 2, &[1, 0]), BindPlan::Abstract(Vec::new()));
        assert_eq!(plan_bind(AF_UNIX, 1, &[1, 0, b'/', b'x']), BindPlan::UnixPath);
        assert_eq!(
            plan_bind(16, 3, &[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            BindPlan::AsGiven
        );
        assert_eq!(
            plan_bind(16, 3, &[16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]),
            BindPlan::NetlinkGroups
        );
        assert_eq!(plan_bind(40, 1, &[40, 0, 0, 0]), BindPlan::Foreign);
        assert_eq!(plan_bind(AF_INET, 1, &[2]), BindPlan::Fail(errno::EINVAL));
        assert_eq!(unix_address("/proc/self/fd/7").unwrap().len(), 2 + 15 + 1);
        assert!(unix_address(&"x".repeat(108)).is_none());
    }

    #[test]
    fn send_addresses_are_read_as_the_kernel_reads_them() {
        let udp = |a: &str, port| {
            SendPlan::Inet(Target::Inet {
                transport: Transport::Udp,
                address: a.parse().unwrap(),
                port,
            })
        };
        let four = inet4([10, 0, 0, 5], 53);
        assert_eq!(plan_send(AF_INET, SOCK_DGRAM, Some(&four)), udp("10.0.0.5", 53));
        // AF_UNSPEC on an IPv4 UDP socket is read as IPv4.
        let mut unspec = four.clone();
        unspec[0..2].copy_from_slice(&(AF_UNSPEC as u16).to_ne_bytes());
        assert_eq!(plan_send(AF_INET, SOCK_DGRAM, Some(&unspec)), udp("10.0.0.5", 53));
        assert_eq!(plan_send(AF_INET6, SOCK_DGRAM, Some(&unspec)), SendPlan::NoAddress);
        // An IPv6 socket sends to IPv4 addresses, plain or mapped.
        assert_eq!(plan_send(AF_INET6, SOCK_DGRAM, Some(&four)), udp("10.0.0.5", 53));
        let mapped = inet6("::ffff:10.0.0.5".parse().unwrap(), 53);
        assert_eq!(
            plan_send(AF_INET6, SOCK_DGRAM, Some(&mapped)),
            udp("::ffff:10.0.0.5", 53)
        );
        assert_eq!(
            plan_send(AF_INET, SOCK_DGRAM, Some(&four[..15])),
            SendPlan::Fail(errno::EINVAL)
        );
        assert_eq!(plan_send(AF_INET, SOCK_DGRAM, None), SendPlan::NoAddress);
        // TCP ignores the address: still decided, as a connect would be.
        assert!(matches!(plan_send(AF_INET, 1, Some(&four)), SendPlan::Inet(_)));
        let mut path = (AF_UNIX as u16).to_ne_bytes().to_vec();
        path.extend_from_slice(b"/run/log\0");
        assert_eq!(
            plan_send(AF_UNIX, SOCK_DGRAM, Some(&path)),
            SendPlan::UnixPath(b"/run/log".to_vec())
        );
        assert_eq!(plan_send(AF_UNIX, SOCK_STREAM, Some(&path)), SendPlan::AsGiven);
        assert_eq!(
            plan_send(AF_UNIX, SOCK_DGRAM, Some(&[0, 0])),
            SendPlan::Fail(errno::EINVAL)
        );
        let kernel = [16u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(plan_send(AF_NETLINK, 3, Some(&kernel)), SendPlan::AsGiven);
        let mut group = kernel;
        group[8] = 1;
        assert_eq!(plan_send(AF_NETLINK, 3, Some(&group)), SendPlan::Foreign);
    }

    #[test]
    fn any_bytes_are_classified_without_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (seed >> (i % 8 * 8)) as u8 % 12).collect();
            for family in [AF_UNIX, AF_INET, AF_INET6, 16] {
                let _ = plan_connect(family, (seed % 3) as i32 + 1, &bytes);
                let _ = plan_send(family, (seed % 5) as i32 + 1, Some(&bytes));
            }
        }
    }
}
