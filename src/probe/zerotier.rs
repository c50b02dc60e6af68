//! `zerotier-cli` output: `info`, `listnetworks`, `peers`/`listpeers` in JSON and text forms, and
//! the error shapes the CLI prints (which name the likely cause).

use std::net::IpAddr;

use serde_json::Value;

use super::zerotier_ids::{NetworkId, NodeId};
use super::ProbeError;

/// Node status as `info` reports it. The text form prints TUNNELED even when the node is
/// offline (one.cpp); the JSON form says both, and an offline node is OFFLINE whatever its TCP
/// fallback does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NodeStatus {
    /// Reaches the network directly.
    Online,
    /// Cannot reach roots or peers.
    Offline,
    /// Only through a TCP relay.
    Tunneled,
}

/// `zerotier-cli info`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Info {
    /// Running node id.
    pub address: NodeId,
    /// Version string.
    pub version: String,
    /// Status.
    pub status: NodeStatus,
    /// The TCP fallback relay is in use (`tcpFallbackActive`, or TUNNELED in the text form).
    pub tcp_fallback: bool,
}

/// Errors the CLI itself reports, classified by cause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CliError {
    /// "Error connecting to the ZeroTier service" / HTTP code 0: the daemon is not running.
    ServiceNotRunning,
    /// `401 <cmd> {}`: stale or wrong authtoken.
    Unauthorized,
    /// authtoken.secret unreadable (not root).
    MissingAuthToken,
    /// zerotier-one.port missing: the service never started.
    MissingPort,
    /// Non-200 code with an invalid body.
    Http(u16),
}

impl CliError {
    /// The likely cause, in the operator's words.
    pub fn cause(&self) -> String {
        match self {
            CliError::ServiceNotRunning => "zerotierone.service is not running (zerotier-cli cannot reach 127.0.0.1:9993)".into(),
            CliError::Unauthorized => "zerotier-cli's authtoken is stale or wrong (HTTP 401); run as root, restart zerotierone.service".into(),
            CliError::MissingAuthToken => "authtoken.secret is not readable: the probe must run as root".into(),
            CliError::MissingPort => "zerotier-one.port is missing: the daemon never started".into(),
            CliError::Http(c) => format!("the ZeroTier service answered HTTP {c}"),
        }
    }
}

/// Recognises the CLI's error outputs (stdout or stderr).
pub fn parse_cli_error(out: &str) -> Option<CliError> {
    let t = out.trim();
    if t.contains("Error connecting to the ZeroTier service")
        || t.contains("Please check that the service is running")
    {
        return Some(CliError::ServiceNotRunning);
    }
    if t.contains("authtoken.secret not found") || t.contains("missing authentication token") {
        return Some(CliError::MissingAuthToken);
    }
    if t.contains("zerotier-one.port not found") || t.contains("missing port") {
        return Some(CliError::MissingPort);
    }
    for line in t.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(code), Some(_cmd)) = (parts.next(), parts.next()) {
            if let Ok(code) = code.parse::<u16>() {
                let rest: Vec<&str> = parts.collect();
                if code == 0 {
                    return Some(CliError::ServiceNotRunning);
                }
                if code == 401 {
                    return Some(CliError::Unauthorized);
                }
                if code != 200 && (rest.first() == Some(&"invalid") || rest.first() == Some(&"{}"))
                {
                    return Some(CliError::Http(code));
                }
            }
        }
    }
    None
}

fn cli_err(probe: &'static str, out: &str) -> ProbeError {
    match parse_cli_error(out) {
        Some(e) => ProbeError::new(probe, e.cause(), out),
        None => ProbeError::new(probe, "unrecognised output", out),
    }
}

/// `zerotier-cli -j info` or `zerotier-cli info`.
pub fn parse_info(out: &str) -> Result<Info, ProbeError> {
    const P: &str = "zerotier-cli info";
    let t = out.trim();
    if t.starts_with('{') {
        let v: Value = serde_json::from_str(t)
            .map_err(|e| ProbeError::new(P, format!("invalid JSON: {e}"), out))?;
        let address = v["address"]
            .as_str()
            .ok_or_else(|| ProbeError::new(P, "no address", out))?;
        let address: NodeId = address
            .parse()
            .map_err(|e: super::zerotier_ids::IdError| ProbeError::new(P, e.to_string(), out))?;
        let online = v["online"].as_bool().unwrap_or(false);
        let tunneled = v["tcpFallbackActive"].as_bool().unwrap_or(false);
        let status = if !online {
            NodeStatus::Offline
        } else if tunneled {
            NodeStatus::Tunneled
        } else {
            NodeStatus::Online
        };
        return Ok(Info {
            address,
            version: v["version"].as_str().unwrap_or("").to_string(),
            status,
            tcp_fallback: tunneled,
        });
    }
    for line in t.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 5 && f[0] == "200" && f[1] == "info" {
            let address: NodeId = f[2].parse().map_err(|e: super::zerotier_ids::IdError| {
                ProbeError::new(P, e.to_string(), out)
            })?;
            // Since 1.2.0: <addr> <version> <status>; before: <addr> <status> <version>.
            let (version, status) = if f[3].contains('.') {
                (f[3], f[4])
            } else {
                (f[4], f[3])
            };
            let status = match status {
                "ONLINE" => NodeStatus::Online,
                "OFFLINE" => NodeStatus::Offline,
                "TUNNELED" => NodeStatus::Tunneled,
                s => return Err(ProbeError::new(P, format!("unknown status {s:?}"), out)),
            };
            return Ok(Info {
                address,
                version: version.to_string(),
                status,
                tcp_fallback: status == NodeStatus::Tunneled,
            });
        }
    }
    Err(cli_err(P, out))
}

/// One joined network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Network {
    /// Network id.
    pub id: NetworkId,
    /// Name (the clan instance name).
    pub name: String,
    /// `OK`, `ACCESS_DENIED`, `REQUESTING_CONFIGURATION`, `NOT_FOUND`, `PORT_ERROR`, ...
    pub status: String,
    /// `PRIVATE` or `PUBLIC`.
    pub kind: String,
    /// Device (`zt…`).
    pub device: String,
    /// Assigned addresses with prefix length.
    pub assigned: Vec<(IpAddr, u8)>,
    /// The settings the controller served this member (JSON form only; the text form has none).
    pub settings: Option<NetSettings>,
}

/// The network settings a controller serves its members, as a member holds them (`listnetworks`)
/// or the controller's record states them: what a zerotier instance setting change alters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NetSettings {
    /// The network's MTU.
    pub mtu: u32,
    /// Broadcast (ff:ff:ff:ff:ff:ff) enabled.
    pub broadcast: bool,
    /// Private (members need authorisation).
    pub private: bool,
}

impl std::fmt::Display for NetSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mtu {}, broadcast {}, {}",
            self.mtu,
            if self.broadcast { "on" } else { "off" },
            if self.private { "private" } else { "public" }
        )
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    Some((a.parse().ok()?, p.parse().ok()?))
}

/// `zerotier-cli -j listnetworks` or `zerotier-cli listnetworks`.
pub fn parse_listnetworks(out: &str) -> Result<Vec<Network>, ProbeError> {
    const P: &str = "zerotier-cli listnetworks";
    let t = out.trim();
    if t.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(t)
            .map_err(|e| ProbeError::new(P, format!("invalid JSON: {e}"), out))?;
        let mut nets = Vec::new();
        for n in v {
            let id = n["nwid"]
                .as_str()
                .or(n["id"].as_str())
                .ok_or_else(|| ProbeError::new(P, "network without nwid", out))?;
            let id: NetworkId = id.parse().map_err(|e: super::zerotier_ids::IdError| {
                ProbeError::new(P, e.to_string(), out)
            })?;
            let mut assigned = Vec::new();
            for a in n["assignedAddresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                assigned.push(parse_cidr(a).ok_or_else(|| {
                    ProbeError::new(P, format!("bad assigned address {a:?}"), out)
                })?);
            }
            nets.push(Network {
                id,
                name: n["name"].as_str().unwrap_or("").to_string(),
                status: n["status"].as_str().unwrap_or("").to_string(),
                kind: n["type"].as_str().unwrap_or("").to_string(),
                device: n["portDeviceName"].as_str().unwrap_or("").to_string(),
                assigned,
                settings: match (n["mtu"].as_u64(), n["broadcastEnabled"].as_bool()) {
                    (Some(mtu), Some(broadcast)) => Some(NetSettings {
                        mtu: u32::try_from(mtu).unwrap_or(u32::MAX),
                        broadcast,
                        private: n["type"].as_str() != Some("PUBLIC"),
                    }),
                    _ => None,
                },
            });
        }
        return Ok(nets);
    }
    let mut seen_header = false;
    let mut nets = Vec::new();
    for line in t.lines() {
        if !line.starts_with("200 listnetworks") {
            if line.starts_with("200 ") {
                continue; // other commands' lines in a combined transcript
            }
            return Err(cli_err(P, out));
        }
        if line.contains("<nwid>") {
            seen_header = true;
            continue;
        }
        // Single-space split keeps empty fields (empty name/dev print as double spaces).
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 8 {
            return Err(ProbeError::new(
                P,
                format!("{} fields, expected 9", f.len()),
                line,
            ));
        }
        let id: NetworkId = f[2]
            .parse()
            .map_err(|e: super::zerotier_ids::IdError| ProbeError::new(P, e.to_string(), line))?;
        let mut assigned = Vec::new();
        if let Some(ips) = f.get(8) {
            for a in ips.split(',').filter(|a| !a.is_empty() && *a != "-") {
                assigned.push(parse_cidr(a).ok_or_else(|| {
                    ProbeError::new(P, format!("bad assigned address {a:?}"), line)
                })?);
            }
        }
        nets.push(Network {
            id,
            name: if f[3] == "-" {
                String::new()
            } else {
                f[3].to_string()
            },
            status: f[5].to_string(),
            kind: f[6].to_string(),
            device: f[7].to_string(),
            assigned,
            settings: None,
        });
    }
    if !seen_header && nets.is_empty() {
        return Err(cli_err(P, out));
    }
    Ok(nets)
}

/// How a peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathClass {
    /// A direct UDP path is active.
    Direct,
    /// Through a ZeroTier root relay.
    Relay,
    /// Through the TCP fallback relay.
    Tunneled,
    /// Paths are listed, but on none did anything arrive within ZeroTier's own alive window
    /// ([`PATH_ALIVE_MS`]) before the node's latest send: the far end stopped answering.
    /// ZeroTier 1.14.1 still lists such paths as `"active": true, "expired": false` (it sets
    /// `expired = 0` for every path it lists), so those flags alone would say Direct.
    Silent,
}

/// ZeroTier's `Path::alive`: something received within the 14 s heartbeat period plus 5 s.
pub const PATH_ALIVE_MS: i64 = 19_000;

/// How long a healthy root may go without answering: a node contacts a root it has a path to
/// only every 16 heartbeat periods (224 s, `roleBasedTimerScale` in node/Node.cpp) and sends it
/// unanswered traffic between (multicast LIKEs), so a public root's `lastReceive` is often
/// minutes old. Past 224 s + the alive window (ZeroTier's own path expiry, 243 s) it is silent.
pub const ROOT_SILENT_MS: i64 = 243_000;

/// One peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Peer {
    /// Node id.
    pub address: NodeId,
    /// Latency in ms when known.
    pub latency_ms: Option<u32>,
    /// LEAF, PLANET, MOON.
    pub role: String,
    /// Path class.
    pub path: PathClass,
    /// For a [`PathClass::Silent`] peer: the shortest time, over its paths, from the last
    /// thing received to the node's latest send on any path (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent_ms: Option<i64>,
}

/// `zerotier-cli -j peers`, `zerotier-cli peers` or `zerotier-cli listpeers`.
pub fn parse_peers(out: &str) -> Result<Vec<Peer>, ProbeError> {
    const P: &str = "zerotier-cli peers";
    let t = out.trim();
    let id = |s: &str, line: &str| -> Result<NodeId, ProbeError> {
        s.parse()
            .map_err(|e: super::zerotier_ids::IdError| ProbeError::new(P, e.to_string(), line))
    };
    let lat = |s: &str| s.parse::<i64>().ok().and_then(|l| u32::try_from(l).ok());
    if t.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(t)
            .map_err(|e| ProbeError::new(P, format!("invalid JSON: {e}"), out))?;
        // The output has no clock: the node's latest send on any path stands for "now". It is
        // never ahead of the real clock, so a silence measured from it is never overstated.
        let now = v
            .iter()
            .flat_map(|p| p["paths"].as_array().map(Vec::as_slice).unwrap_or_default())
            .filter_map(|x| x["lastSend"].as_i64())
            .max();
        let mut peers = Vec::new();
        for p in v {
            let address = id(p["address"].as_str().unwrap_or(""), out)?;
            let tunneled = p["tunneled"].as_bool().unwrap_or(false);
            let paths = p["paths"].as_array().map(Vec::as_slice).unwrap_or_default();
            let active = paths.iter().any(|x| {
                x["active"].as_bool().unwrap_or(false) && !x["expired"].as_bool().unwrap_or(false)
            });
            // How long since each path last received, by that clock (None: not told).
            let lags: Vec<Option<i64>> = paths
                .iter()
                // ZeroTier prints 0 for "never received": no measure, not 56 years.
                .map(|x| Some(now? - x["lastReceive"].as_i64().filter(|r| *r > 0)?))
                .collect();
            let lag = lags.iter().copied().min().flatten();
            let silent =
                !lags.is_empty() && lags.iter().all(|l| l.is_some_and(|l| l >= PATH_ALIVE_MS));
            let path = if tunneled {
                PathClass::Tunneled
            } else if active && silent {
                PathClass::Silent
            } else if active {
                PathClass::Direct
            } else {
                PathClass::Relay
            };
            peers.push(Peer {
                address,
                latency_ms: p["latency"].as_i64().and_then(|l| u32::try_from(l).ok()),
                role: p["role"].as_str().unwrap_or("").to_string(),
                path,
                silent_ms: (path == PathClass::Silent).then_some(lag).flatten(),
            });
        }
        return Ok(peers);
    }
    let tunneling_note = t.contains("Currently tunneling through a TCP relay");
    let mut peers = Vec::new();
    let mut header = false;
    for line in t.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || line.starts_with("NOTE:") {
            continue;
        }
        if line.starts_with("200 peers")
            || line.starts_with("<ztaddr>")
            || line.contains("<ztaddr>")
        {
            header = true;
            continue;
        }
        if f[0] == "200" && f.get(1) == Some(&"listpeers") {
            // 200 listpeers <ztaddr> <path> <latency> <version> <role>
            if f.len() < 7 {
                return Err(ProbeError::new(P, "short listpeers line", line));
            }
            let path = if f[3] == "-" {
                PathClass::Relay
            } else {
                PathClass::Direct
            };
            peers.push(Peer {
                address: id(f[2], line)?,
                latency_ms: lat(f[4]),
                role: f[6].to_string(),
                path,
                silent_ms: None,
            });
            continue;
        }
        if !header {
            return Err(cli_err(P, out));
        }
        // <ztaddr> <ver> <role> <lat> <link> <lastTX> <lastRX> <path>
        if f.len() < 5 {
            return Err(ProbeError::new(P, "short peers line", line));
        }
        let path = match f[4] {
            "DIRECT" => PathClass::Direct,
            _ if tunneling_note => PathClass::Tunneled,
            _ => PathClass::Relay,
        };
        peers.push(Peer {
            address: id(f[0], line)?,
            latency_ms: lat(f[3]),
            role: f[2].to_string(),
            path,
            silent_ms: None,
        });
    }
    if !header && peers.is_empty() {
        return Err(cli_err(P, out));
    }
    Ok(peers)
}

/// The controller's member records, as clan's `zerotier-members list` reads them (the controller's
/// files under `controller.d`); nothing on a machine that is no controller. The records hold
/// public identities only.
pub const MEMBER_FILES_SCRIPT: &str = r#"cd /var/lib/zerotier-one/controller.d/network 2>/dev/null || exit 0; for f in */member/*.json; do if [ -r "$f" ]; then cat "$f"; echo; fi; done; true"#;

/// The controller's network records (`controller.d/network/<nwid>.json`, where clan-core's
/// controller role writes the instance's settings before the daemon starts): only the fields of
/// [`NetSettings`] and the id, one JSON object per network. A record can hold SSO client ids and
/// auth tokens, so the record itself never leaves the machine.
pub const NETWORK_FILES_SCRIPT: &str = r#"cd /var/lib/zerotier-one/controller.d/network 2>/dev/null || exit 0; for f in *.json; do if [ -r "$f" ]; then printf '{'; grep -oE '"(id|mtu|enableBroadcast|private|revision)" *: *("[0-9a-f]{16}"|[0-9]+|true|false)' "$f" | paste -sd, -; printf '}\n'; fi; done; true"#;

/// One network a controller serves, as its record states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ServedNetwork {
    /// The network.
    pub id: NetworkId,
    /// The record's revision (the controller bumps it on every change it makes itself).
    pub revision: Option<u64>,
    /// What the controller serves.
    pub settings: NetSettings,
}

/// The output of [`NETWORK_FILES_SCRIPT`]. ZeroTier's defaults fill fields a record leaves out
/// (ZT_DEFAULT_MTU 2800, broadcast on, private), as `EmbeddedNetworkController` does.
pub fn parse_network_files(out: &str) -> Result<Vec<ServedNetwork>, ProbeError> {
    const P: &str = "controller network records";
    let mut rows = Vec::new();
    for v in serde_json::Deserializer::from_str(out).into_iter::<Value>() {
        let v = v.map_err(|e| ProbeError::new(P, format!("not JSON: {e}"), out))?;
        let id = v["id"]
            .as_str()
            .ok_or_else(|| ProbeError::new(P, "no id", &v.to_string()))?
            .parse()
            .map_err(|e: super::zerotier_ids::IdError| {
                ProbeError::new(P, e.to_string(), &v.to_string())
            })?;
        rows.push(ServedNetwork {
            id,
            revision: v["revision"].as_u64(),
            settings: NetSettings {
                // As the controller serves it: clamped to ZT_MIN_MTU..=ZT_MAX_MTU.
                mtu: v["mtu"]
                    .as_u64()
                    .map_or(2800, |m| m.clamp(1280, 10_000) as u32),
                broadcast: v["enableBroadcast"].as_bool().unwrap_or(true),
                private: v["private"].as_bool().unwrap_or(true),
            },
        });
    }
    Ok(rows)
}

/// One member record of a controller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControllerMember {
    /// The network.
    pub network: NetworkId,
    /// The member's node id.
    pub id: NodeId,
    /// Authorised on the network.
    pub authorized: bool,
}

/// The output of [`MEMBER_FILES_SCRIPT`]: one JSON object per member record.
pub fn parse_member_files(out: &str) -> Result<Vec<ControllerMember>, ProbeError> {
    const P: &str = "controller member records";
    let mut rows = Vec::new();
    for v in serde_json::Deserializer::from_str(out).into_iter::<Value>() {
        let v = v.map_err(|e| ProbeError::new(P, format!("not JSON: {e}"), out))?;
        let field = |k: &str| {
            v[k].as_str()
                .ok_or_else(|| ProbeError::new(P, format!("no {k}"), &v.to_string()))
        };
        rows.push(ControllerMember {
            network: field("nwid")?
                .parse()
                .map_err(|e: super::zerotier_ids::IdError| {
                    ProbeError::new(P, e.to_string(), &v.to_string())
                })?,
            id: field("id")?
                .parse()
                .map_err(|e: super::zerotier_ids::IdError| {
                    ProbeError::new(P, e.to_string(), &v.to_string())
                })?,
            authorized: v["authorized"].as_bool().unwrap_or(false),
        });
    }
    Ok(rows)
}

/// A row of clan's controller-side `zerotier-members list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// Node id.
    pub id: NodeId,
    /// Its address.
    pub ip: IpAddr,
    /// Authorised on the controller.
    pub authorized: bool,
}

/// `zerotier-members list` (clan-core's tool on the controller).
pub fn parse_members(out: &str) -> Result<Vec<Member>, ProbeError> {
    const P: &str = "zerotier-members list";
    let mut rows = Vec::new();
    let mut header = false;
    for line in out.trim().lines() {
        if line.starts_with("Member ID") {
            header = true;
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            return Err(ProbeError::new(P, "expected <id> <ip> <True|False>", line));
        }
        let authorized = match f[2] {
            "True" => true,
            "False" => false,
            x => return Err(ProbeError::new(P, format!("authorized is {x:?}"), line)),
        };
        rows.push(Member {
            id: f[0].parse().map_err(|e: super::zerotier_ids::IdError| {
                ProbeError::new(P, e.to_string(), line)
            })?,
            ip: f[1]
                .parse()
                .map_err(|_| ProbeError::new(P, "bad address", line))?,
            authorized,
        });
    }
    if !header {
        return Err(ProbeError::new(P, "no header line", out));
    }
    Ok(rows)
}
