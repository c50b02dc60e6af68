//! AC1's causes for a pair that failed, read from the output and from the rest of the run: the
//! other direction, and what each overlay daemon reports of itself. A cause never blames what
//! the same run saw working.

use crate::expectations::Expectations;
use crate::observe::Observations;
use crate::overlay;
use crate::probe::ping::{PingError, PingSummary};

/// The other direction's ping, if it got replies: `(received, transmitted)`.
fn reverse(obs: &Observations, a: &str, b: &str) -> Option<(u32, u32)> {
    obs.mesh
        .get(&(b.to_string(), a.to_string()))
        .and_then(|s| s.ok())
        .and_then(|r| r.as_ref().ok())
        .filter(|p| p.received > 0)
        .map(|p| (p.received, p.transmitted))
}

/// What `m`'s overlay daemon reported of its own network being up, if it did.
fn daemon_report(obs: &Observations, m: &str) -> Option<String> {
    obs.status
        .get(m)
        .and_then(|s| overlay::self_report(&s.overlay))
}

/// `a` sent echoes to `b` and none came back.
pub(super) fn no_reply(
    exp: &Expectations,
    obs: &Observations,
    a: &str,
    b: &str,
    p: &PingSummary,
) -> String {
    let icmp = p
        .icmp_error
        .as_ref()
        .map(|e| format!(" (ICMP: {e})"))
        .unwrap_or_default();
    // The pings went to the address the vars give b: if b's own daemon holds other addresses,
    // nobody answers there, whatever the path (an identity the vars no longer name).
    if let (Some(addr), Some(held)) = (
        overlay::expected_address(exp, b),
        obs.status
            .get(b)
            .and_then(|s| overlay::held_addresses(&s.overlay)),
    ) {
        if !held.contains(&addr) {
            let list: Vec<String> = held.iter().map(ToString::to_string).collect();
            return format!(
                "{b}'s overlay daemon does not hold {addr}, the address the vars give it: it holds {} (see {b}'s node findings), so the echoes went to an address nobody answers{icmp}",
                if list.is_empty() { "none".to_string() } else { list.join(", ") }
            );
        }
    }
    if let Some((got, sent)) = reverse(obs, a, b) {
        return format!(
            "{b} answers the other way ({b} → {a}: {got} of {sent} replies), so both daemons and the overlay path are up: one direction is filtered, a firewall on {b} dropping ICMPv6 echo requests from {a} or one on {a} dropping the replies{icmp}"
        );
    }
    if let Some(revoked) = overlay::zerotier::revoked_membership(obs, a, b) {
        return format!("no reply from {b} either way: {revoked}{icmp}");
    }
    match daemon_report(obs, b) {
        Some(report) => format!(
            "no reply from {b} either way, though on {b} {report}: the path between them is cut (underlay or relay), or a firewall drops ICMPv6 on the overlay interface{icmp}"
        ),
        None => format!(
            "no reply from {b} either way, and {b}'s overlay daemon did not report its network up in this run (see its node findings): {b}'s overlay is down{icmp}"
        ),
    }
}

/// `a`'s ping could not send: its kernel has no route, or the name or family was wrong.
pub(super) fn no_route_cause(
    exp: &Expectations,
    obs: &Observations,
    a: &str,
    b: &str,
    pe: &PingError,
) -> String {
    let addr = overlay::expected_address(exp, b)
        .map(|x| x.to_string())
        .unwrap_or_else(|| format!("{b}'s overlay address"));
    match pe {
        PingError::NetworkUnreachable => {
            match daemon_report(obs, a) {
                Some(report) => format!(
                    "\"Network is unreachable\" is {a}'s own kernel: it has no route to {addr}, although on {a} {report}; the overlay interface is down or its route was removed on {a} (`ip -6 route get {addr}` there), not a fault of {b}"
                ),
                None => format!(
                    "\"Network is unreachable\" is {a}'s own kernel: it has no route to {addr}; {a}'s overlay daemon did not report its network up in this run either (see {a}'s node findings), not a fault of {b}"
                ),
            }
        }
        other => format!("{other}; the ping command on {a} was given a target it cannot use"),
    }
}
