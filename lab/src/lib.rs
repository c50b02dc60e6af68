//! The lab fleet: clan-shaped machines on one host, so the harness can be proven against real
//! software without real machines. Each machine is a Debian container booted by real systemd
//! (`systemd-nspawn --boot`) in its own network namespace, running Debian's real OpenSSH sshd
//! with a CA-signed host certificate and a real yggdrasil overlay daemon as units named as on
//! NixOS, with clan-shaped files (deployed vars, root's password hash, `/run/current-system`).
//! The harness reads it exactly as it reads a real clan, through the `machines.toml` that
//! `lab up` writes. See README, "Lab".
//!
//! Topology (nothing in the host's own namespace):
//! - `<prefix>-ws`: the workstation; bridge `br0` holds the management /24 (`.1`), and the harness
//!   opens its SSH sockets here (`[ssh] netns`).
//! - `<prefix>-net`: the underlay "internet"; bridge `br1`, no address of its own.
//! - `<prefix>-<machine>`: `eth0` on the management bridge, `eth1` on the underlay, `ygg0` from
//!   yggdrasil. The machine's container joins it; its nspawn pid is tracked in `<dir>/lab.json`.
//!
//! Modules:
//! - [`host`]: what the lab needs from its host (root, packages, free subnets); [`install`]:
//!   `--install`, which installs packages without starting or enabling host services.
//! - [`state`]: `lab.json` (machines, pids, faults), what is checked before the lab acts on
//!   it, and the lock around it; [`statedir`]: the private directory it lives in.
//! - [`lifecycle`]: `up`, `status`, `down`, waiting for the mesh, reaping a crashed lab.
//! - [`rootfs`]: the machines' Debian root file system, built once and cached; `machine`:
//!   booting, reaching into and powering off each machine; [`binds`]: what each machine has
//!   bound in from the state directory, and the check that it still holds.
//! - [`deploy`]: machine files, closures, generations, switch and `rebuild`.
//! - [`fault`](mod@fault): real faults ([`Fault`]) and `heal`.
//! - [`recording`]: a live run recorded for offline replay.
//! - [`keys`], [`sshd`], [`net`], [`repo`], [`system`], [`relay`]: key material, sshd
//!   configuration, address plan, the lab's clan repo, its configuration stand-in, and the
//!   `slow-link` relay; [`flake`]: the repo as a clan flake that clan-core evaluates.
//! - [`error`]: the one error type, [`LabError`].
//!
//! The library never prints: notices and deploy logs go to a caller's sink, progress to
//! `tracing`.
#![warn(missing_docs)]

pub mod binds;
pub mod deploy;
pub mod error;
pub mod fault;
mod files;
pub mod flake;
pub mod host;
pub mod install;
pub mod keys;
pub mod lifecycle;
mod machine;
pub mod net;
mod process;
pub mod recording;
pub mod relay;
pub mod repo;
pub mod rootfs;
pub mod sshd;
pub mod state;
pub mod statedir;
pub mod system;
pub mod zerotier;

pub use deploy::{rebuild, LAB_ROOT_HASH};
pub use error::LabError;
pub use fault::{fault, heal, Fault, SLOW_LINK_DELAY};
pub use host::{is_root, unsupported, PACKAGES};
pub use install::install_missing;
pub use lifecycle::{down, down_with, status, up, UpOptions};
pub use process::alive;
pub use recording::{finish_recording, prepare_recording};
pub use state::{machine_names, LabMachine, LabState};
pub use statedir::DEFAULT_DIR;
