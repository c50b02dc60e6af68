//! The lab fleet: clan-shaped machines made of Linux namespaces on one host, each with a real
//! OpenSSH sshd, a CA-signed host certificate and a real overlay daemon (see README, "Lab").

pub mod keys;
pub mod sshd;
