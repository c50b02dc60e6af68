//! `yggdrasilctl -json getSelf|getPeers` (yggdrasil 0.4.x, as clan's yggdrasil service runs it).
//! yggdrasilctl exits 0 even when it cannot reach the daemon; its "Fatal error" text is the signal.

use std::net::Ipv6Addr;

use serde::Deserialize;

use super::ProbeError;

/// The node's own identity (`getSelf`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SelfInfo {
    /// Overlay address (200::/7), derived from the key.
    pub address: Ipv6Addr,
    /// Public key, lowercase hex.
    pub key: String,
    /// Routed /64 subnet.
    pub subnet: String,
}

/// One connected peer (`getPeers` lists connected peers only).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeerInfo {
    /// Peer's overlay address.
    pub address: Ipv6Addr,
    /// Peer's public key.
    pub key: String,
    /// Underlay URI (`tcp://host:port`).
    pub remote: String,
    /// Seconds connected.
    pub uptime: f64,
}

fn daemon_error(probe: &'static str, text: &str) -> Option<ProbeError> {
    let line = text.lines().find(|l| l.contains("Fatal error"))?;
    let why = line.split("Fatal error:").nth(1).unwrap_or(line).trim();
    let hint = if why.contains("no such file") || why.contains("connection refused") {
        "the yggdrasil daemon is not running (no admin socket)"
    } else if why.contains("permission denied") {
        "the admin socket is not readable: the probe must run as root"
    } else {
        "yggdrasilctl could not talk to the daemon"
    };
    Some(ProbeError::new(probe, format!("{hint}: {why}"), text))
}

fn json_body(text: &str) -> &str {
    text.find('{').map_or(text, |i| &text[i..])
}

/// Parses `getSelf`.
pub fn parse_self(text: &str) -> Result<SelfInfo, ProbeError> {
    const P: &str = "yggdrasilctl getSelf";
    if let Some(e) = daemon_error(P, text) {
        return Err(e);
    }
    #[derive(Deserialize)]
    struct Raw {
        address: String,
        key: String,
        #[serde(default)]
        subnet: String,
    }
    let raw: Raw = serde_json::from_str(json_body(text))
        .map_err(|e| ProbeError::new(P, format!("not getSelf JSON: {e}"), text))?;
    let address = raw
        .address
        .parse()
        .map_err(|e| ProbeError::new(P, format!("address {:?}: {e}", raw.address), text))?;
    Ok(SelfInfo {
        address,
        key: raw.key.to_ascii_lowercase(),
        subnet: raw.subnet,
    })
}

/// Parses `getPeers`.
pub fn parse_peers(text: &str) -> Result<Vec<PeerInfo>, ProbeError> {
    const P: &str = "yggdrasilctl getPeers";
    if let Some(e) = daemon_error(P, text) {
        return Err(e);
    }
    #[derive(Deserialize)]
    struct RawPeer {
        address: String,
        key: String,
        #[serde(default)]
        remote: String,
        #[serde(default)]
        uptime: f64,
    }
    #[derive(Deserialize)]
    struct Raw {
        peers: Vec<RawPeer>,
    }
    let raw: Raw = serde_json::from_str(json_body(text))
        .map_err(|e| ProbeError::new(P, format!("not getPeers JSON: {e}"), text))?;
    raw.peers
        .into_iter()
        .map(|p| {
            Ok(PeerInfo {
                address: p.address.parse().map_err(|e| {
                    ProbeError::new(P, format!("peer address {:?}: {e}", p.address), text)
                })?,
                key: p.key.to_ascii_lowercase(),
                remote: p.remote,
                uptime: p.uptime,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_error_with_exit_zero_is_an_error() {
        let t = "2026/11/26 02:05:51 Connecting to UNIX socket /run/yggdrasil/yggdrasil.sock\n2026/11/26 02:05:51 Fatal error: dial unix /run/yggdrasil/yggdrasil.sock: connect: no such file or directory\n";
        let e = parse_self(t).unwrap_err().to_string();
        assert!(e.contains("not running"), "{e}");
    }

    #[test]
    fn self_and_peers() {
        let s = parse_self(r#"{"key":"AB","address":"200::1","coords":[],"subnet":"300::/64"}"#)
            .unwrap();
        assert_eq!(s.key, "ab");
        assert_eq!(s.address, "200::1".parse::<Ipv6Addr>().unwrap());
        assert!(parse_peers(r#"{"peers":[]}"#).unwrap().is_empty());
        assert!(parse_peers("{").is_err());
    }
}
