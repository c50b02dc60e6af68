//! Host names in machines.toml, resolved with the system resolver when a live run connects (a
//! clan's `deploy.targetHost` is often a name, e.g. `root@cinnabar.zt`). The resolver can hang
//! (an unreachable DNS server), so it runs on its own thread and the run waits at most the
//! connect timeout for it.

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

/// The address the system resolver gives `name` first (its own preference order), within
/// `timeout`; or why there is none.
pub fn resolve(name: &str, port: u16, timeout: Duration) -> Result<IpAddr, String> {
    let (tx, rx) = mpsc::channel();
    let query = name.to_string();
    // Left to finish on its own if it outlives the timeout: getaddrinfo cannot be cancelled.
    std::thread::spawn(move || {
        let _ = tx.send(
            (query.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>()),
        );
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) => addrs
            .first()
            .map(|a| a.ip())
            .ok_or_else(|| format!("the resolver gave {name} no address")),
        Ok(Err(e)) => Err(format!("cannot resolve {name}: {e}")),
        Err(_) => Err(format!(
            "the resolver did not answer for {name} within {timeout:?} (the connect timeout)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_resolves_and_a_reserved_name_does_not() {
        let ip = resolve("localhost", 22, Duration::from_secs(5)).unwrap();
        assert!(ip.is_loopback(), "{ip}");
        // RFC 2606: .invalid never resolves.
        let e = resolve("nothing.invalid", 22, Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("nothing.invalid"), "{e}");
    }
}
