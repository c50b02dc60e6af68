//! Lab address plan and the host-safety check: the lab's subnets must overlap no address or route
//! of the host, so that no lab packet can ever leave for a real network.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

/// An IP prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn bits(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

impl Prefix {
    /// Parses `addr/len` (or a bare address as a host prefix).
    pub fn parse(s: &str) -> Option<Prefix> {
        let (a, l) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = if l.is_empty() { max } else { l.parse().ok()? };
        (len <= max).then_some(Prefix { addr, len })
    }

    /// Whether two prefixes share any address (different families never do).
    pub fn overlaps(&self, other: &Prefix) -> bool {
        let ((a, w), (b, w2)) = (bits(self.addr), bits(other.addr));
        if w != w2 {
            return false;
        }
        let len = self.len.min(other.len);
        if len == 0 {
            return true;
        }
        let shift = u32::from(w - len);
        (a >> shift) == (b >> shift)
    }
}

/// The host's own prefixes from `ip -j addr` and `ip -j route` / `ip -j -6 route` output.
/// Default routes are left out: they cover everything by definition, and the lab never routes
/// through the host namespace at all; what matters is that no lab subnet shadows or is shadowed
/// by a network the host really uses.
pub fn host_prefixes(addr_json: &str, route_jsons: &[&str]) -> Vec<(Prefix, String)> {
    let mut out = Vec::new();
    if let Ok(Value::Array(links)) = serde_json::from_str::<Value>(addr_json) {
        for l in links {
            let dev = l["ifname"].as_str().unwrap_or("?").to_string();
            for a in l["addr_info"].as_array().into_iter().flatten() {
                let (Some(local), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64())
                else {
                    continue;
                };
                if let Some(p) = Prefix::parse(&format!("{local}/{len}")) {
                    out.push((p, format!("address {p} on {dev}")));
                }
            }
        }
    }
    for r in route_jsons {
        if let Ok(Value::Array(routes)) = serde_json::from_str::<Value>(r) {
            for rt in routes {
                let Some(dst) = rt["dst"].as_str() else {
                    continue;
                };
                if dst == "default" {
                    continue;
                }
                if let Some(p) = Prefix::parse(dst) {
                    let dev = rt["dev"].as_str().unwrap_or("?");
                    out.push((p, format!("route {dst} via {dev}")));
                }
            }
        }
    }
    out
}

/// The underlay's prefix length: each machine's underlay address lies in a /24 of its own inside
/// it. ZeroTier admits one new identity per source /24 every 2 s (its HELLO rate gate,
/// `ZT_IDENTITY_VALIDATION_SOURCE_RATE_LIMIT`): on one shared /24, 8 machines took 40 s to find
/// each other, as machines behind one NAT would; a fleet's machines sit in networks of their own.
pub const UNDERLAY_LEN: u8 = 20;

/// The first management /24 and underlay /20 in 198.18.0.0/15 (RFC 2544 benchmarking space)
/// that overlap nothing of the host and not each other; also refuses when the overlay's 200::/7
/// would.
pub fn choose(host: &[(Prefix, String)]) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let ygg = Prefix::parse("200::/7").unwrap_or(Prefix {
        addr: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        len: 7,
    });
    if let Some((_, what)) = host.iter().find(|(p, _)| p.overlaps(&ygg)) {
        return Err(format!("yggdrasil's 200::/7 overlaps the host's {what}"));
    }
    let clash = |p: &Prefix| {
        host.iter()
            .find(|(h, _)| h.overlaps(p))
            .map(|(_, w)| format!("{p} overlaps {w}"))
    };
    let prefix = |third: u8, len: u8| Prefix {
        addr: IpAddr::V4(Ipv4Addr::new(198, 18, third, 0)),
        len,
    };
    let mut last = String::new();
    for under in (112u8..=240).step_by(16) {
        let u = prefix(under, UNDERLAY_LEN);
        if let Some(c) = clash(&u) {
            last = c;
            continue;
        }
        for mgmt in 100u8..=255 {
            let m = prefix(mgmt, 24);
            if m.overlaps(&u) {
                continue;
            }
            match clash(&m) {
                None => {
                    return Ok((
                        Ipv4Addr::new(198, 18, mgmt, 0),
                        Ipv4Addr::new(198, 18, under, 0),
                    ))
                }
                Some(c) => last = c,
            }
        }
    }
    Err(format!(
        "no free management /24 and underlay /20 in 198.18.100.0-198.18.255.255 ({last})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = r#"[{"ifname":"lo","addr_info":[{"local":"127.0.0.1","prefixlen":8},{"local":"::1","prefixlen":128}]},{"ifname":"eth0","addr_info":[{"local":"192.0.2.2","prefixlen":24},{"local":"fd00::2","prefixlen":64}]}]"#;
    const R4: &str = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},{"dst":"192.0.2.0/24","dev":"eth0"}]"#;
    const R6: &str =
        r#"[{"dst":"fd00::/64","dev":"eth0"},{"dst":"default","gateway":"fd00::1","dev":"eth0"}]"#;

    #[test]
    fn this_hosts_routes_leave_the_first_pair_free() {
        // The host measured in lab-notes.md: 192.0.2.0/24 and fd00::/64 with a default route.
        let host = host_prefixes(ADDR, &[R4, R6]);
        assert_eq!(host.len(), 6);
        let (m, u) = choose(&host).unwrap();
        assert_eq!(
            (m.to_string(), u.to_string()),
            ("198.18.100.0".into(), "198.18.112.0".into())
        );
    }

    #[test]
    fn a_clashing_route_moves_the_lab_and_a_wide_one_refuses() {
        let r = r#"[{"dst":"198.18.100.0/24","dev":"x"},{"dst":"198.18.115.0/24","dev":"y"}]"#;
        let (m, u) = choose(&host_prefixes("[]", &[r])).unwrap();
        assert_eq!(
            (m.to_string(), u.to_string()),
            ("198.18.101.0".into(), "198.18.128.0".into())
        );
        let wide = r#"[{"dst":"198.18.0.0/15","dev":"x"}]"#;
        let e = choose(&host_prefixes("[]", &[wide])).unwrap_err();
        assert!(e.contains("198.18.0.0/15"), "{e}");
        let ygg = r#"[{"dst":"200::/8","dev":"tun0"}]"#;
        assert!(choose(&host_prefixes("[]", &[ygg]))
            .unwrap_err()
            .contains("200::/7"));
    }

    #[test]
    fn overlap_rules() {
        let p = |s| Prefix::parse(s).unwrap();
        assert!(p("10.0.0.0/8").overlaps(&p("10.1.2.0/24")));
        assert!(!p("10.0.0.0/8").overlaps(&p("11.0.0.0/8")));
        assert!(!p("10.0.0.0/8").overlaps(&p("::/0")));
        assert!(p("200::/7").overlaps(&p("203:e8e9::1")));
    }
}
