//! sshd configuration for lab machines and loopback tests: Debian's real OpenSSH server, keyed
//! and certified as clan's `sshd` service configures it (host key + CA-signed certificate,
//! root by key only). Lab machines use PAM as NixOS does (sessions get their own scopes);
//! loopback tests run sshd on the host without it. `StrictModes no` is the one stand-in: the
//! lab's files live in a state directory instead of a NixOS store.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What one sshd serves.
#[derive(Debug, Clone)]
pub struct SshdConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Private host key.
    pub host_key: PathBuf,
    /// Host certificate (`-cert.pub`), when the machine has one.
    pub host_cert: Option<PathBuf>,
    /// `AuthorizedKeysFile` pattern (`%u` = user).
    pub authorized_keys: String,
    /// Pid file.
    pub pid_file: PathBuf,
    /// `UsePAM yes` (a lab machine, booted by systemd) or `no` (a loopback sshd on the host).
    pub use_pam: bool,
}

impl SshdConfig {
    /// sshd_config text.
    pub fn render(&self) -> String {
        let mut s = String::from("# written by clan-coord (lab); mirrors clan's sshd service\n");
        for a in &self.listen {
            let _ = writeln!(s, "ListenAddress {a}");
        }
        let _ = writeln!(s, "HostKey {}", self.host_key.display());
        if let Some(c) = &self.host_cert {
            let _ = writeln!(s, "HostCertificate {}", c.display());
        }
        let _ = writeln!(s, "AuthorizedKeysFile {}", self.authorized_keys);
        let _ = writeln!(s, "PidFile {}", self.pid_file.display());
        let _ = writeln!(s, "UsePAM {}", if self.use_pam { "yes" } else { "no" });
        s.push_str(
            "PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             StrictModes no\n\
             UseDNS no\n\
             LogLevel VERBOSE\n\
             MaxStartups 100:30:200\n\
             MaxSessions 64\n\
             Subsystem sftp internal-sftp\n",
        );
        s
    }
}
