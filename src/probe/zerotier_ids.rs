//! ZeroTier identifiers and the rfc4193 address rule, computed numerically (never by string
//! splicing: the real fleet hit bugs from dropped leading zeros).

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// A 40-bit ZeroTier node id (10 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(into = "String")]
pub struct NodeId(u64);

/// A 64-bit ZeroTier network id (16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(into = "String")]
pub struct NetworkId(u64);

/// Why an identifier did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not {digits} hex digits")]
pub struct IdError {
    what: &'static str,
    value: String,
    digits: usize,
}

fn parse_hex(s: &str, digits: usize, what: &'static str) -> Result<u64, IdError> {
    let s = s.trim();
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdError {
            what,
            value: s.to_string(),
            digits,
        });
    }
    u64::from_str_radix(s, 16).map_err(|_| IdError {
        what,
        value: s.to_string(),
        digits,
    })
}

impl FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_hex(s, 10, "node id").map(NodeId)
    }
}
impl FromStr for NetworkId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_hex(s, 16, "network id").map(NetworkId)
    }
}
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010x}", self.0)
    }
}
impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
impl From<NodeId> for String {
    fn from(v: NodeId) -> String {
        v.to_string()
    }
}
impl From<NetworkId> for String {
    fn from(v: NetworkId) -> String {
        v.to_string()
    }
}

impl NetworkId {
    /// The controller's node id: the first 10 hex digits of the network id.
    pub fn controller(self) -> NodeId {
        NodeId(self.0 >> 24)
    }
}

/// `fd` ‖ nwid (8 bytes) ‖ `99 93` ‖ node id (5 bytes); prefix /88.
pub fn rfc4193(network: NetworkId, node: NodeId) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    b[1..9].copy_from_slice(&network.0.to_be_bytes());
    b[9] = 0x99;
    b[10] = 0x93;
    b[11..16].copy_from_slice(&node.0.to_be_bytes()[3..8]);
    Ipv6Addr::from(b)
}

/// Splits an rfc4193 ZeroTier address into network and node id; `None` if it is not one.
pub fn split_rfc4193(addr: Ipv6Addr) -> Option<(NetworkId, NodeId)> {
    let b = addr.octets();
    if b[0] != 0xfd || b[9] != 0x99 || b[10] != 0x93 {
        return None;
    }
    let mut nw = [0u8; 8];
    nw.copy_from_slice(&b[1..9]);
    let mut node = [0u8; 8];
    node[3..8].copy_from_slice(&b[11..16]);
    Some((
        NetworkId(u64::from_be_bytes(nw)),
        NodeId(u64::from_be_bytes(node)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_from_clan_core() {
        let a = rfc4193(
            "a1b2c3d4e5f60718".parse().unwrap(),
            "0123456789".parse().unwrap(),
        );
        assert_eq!(
            a,
            "fda1:b2c3:d4e5:f607:1899:9301:2345:6789"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
    }

    #[test]
    fn real_fleet_addresses_with_leading_zeros() {
        let nw: NetworkId = "db4344343b14b903".parse().unwrap();
        for (node, ip) in [
            ("db4344343b", "fddb:4344:343b:14b9:399:93db:4344:343b"),
            ("0f39db40d2", "fddb:4344:343b:14b9:399:930f:39db:40d2"),
            ("8046d53400", "fddb:4344:343b:14b9:399:9380:46d5:3400"),
        ] {
            let ip: Ipv6Addr = ip.parse().unwrap();
            assert_eq!(rfc4193(nw, node.parse().unwrap()), ip);
            assert_eq!(split_rfc4193(ip), Some((nw, node.parse().unwrap())));
        }
        assert_eq!(nw.controller().to_string(), "db4344343b");
    }

    #[test]
    fn rejects_bad_ids() {
        assert!("xxxxx".parse::<NetworkId>().is_err());
        assert!("db4344343".parse::<NodeId>().is_err());
        assert!(split_rfc4193("fe80::1".parse().unwrap()).is_none());
    }
}
