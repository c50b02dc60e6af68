//! clan-coordination: proves that a clan-core fleet really coordinates (acceptance criteria
//! AC1–AC4 of the multi-cloud story; see `../shared/mission.md` and README.md).
//!
//! Architecture, one home per idea:
//! - [`config`]: machines.toml, strict and located errors.
//! - [`oracle`]: the clan repo's vars, the source of every expected value.
//! - [`inventory`]: the clan inventory serialization, unwrapped and resolved.
//! - [`transport`]: SSH (ssh2) and cassette replay behind one trait.
//! - [`probe`]: pure parsers of remote output into types.
//! - [`observe`]: runs the probes on the fleet (the only I/O of a check).
//! - [`checks`]: pure verdicts from observations and expectations.
//! - [`report`]: JSON report and one-screen summary.
//!
//! The namespace lab fleet the live suite runs against is its own crate (`lab/`,
//! `clan_coord_lab`); this library does not depend on it.
#![warn(missing_docs)]

pub mod checks;
pub mod config;
pub mod error;
pub mod fleet;
pub mod inventory;
pub mod mode;
pub mod monitor;
pub mod observe;
pub mod oracle;
pub mod probe;
pub mod rebuild;
pub mod report;
pub mod transport;

pub use error::{Error, Result};
