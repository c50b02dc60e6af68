//! TCP connections opened inside another network namespace. A socket belongs to the namespace it
//! was created in, so a short-lived thread enters the namespace (setns affects only the calling
//! thread), connects, and hands the stream back; the rest of the process stays where it was. This is
//! how the harness reaches lab machines from the lab's workstation namespace while the host's own
//! namespace carries no lab address or route.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Connects to `addr` from inside the network namespace `/run/netns/<name>`.
pub fn connect_in(name: &str, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let path = format!("/run/netns/{name}");
    let ns = File::open(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("network namespace {path}: {e} (is the lab up?)"),
        )
    })?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a valid namespace fd changes only this thread's network namespace;
            // the thread ends right after connecting, so no other code runs in the namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot enter network namespace {path}: {e} (needs root)"),
                ));
            }
            TcpStream::connect_timeout(&addr, timeout)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace connect thread panicked")))
    })
}
