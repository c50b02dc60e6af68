//! clan-coordination: proves that a clan-core fleet really coordinates (acceptance criteria
//! AC1–AC7 of the multi-cloud story; see `../shared/mission.md` and README.md).
//!
//! Architecture, one home per idea, in the order a run flows:
//! - [`config`]: machines.toml, strict and located errors; [`env`]: every `COORD_*` switch.
//! - [`oracle`] (the clan repo's vars) and [`inventory`] (the serialization, resolved) make the
//!   [`expectations`]: what the fleet should look like, with no machine asked.
//! - [`overlay`]: everything overlay-specific (ZeroTier, yggdrasil): commands, unit, expected
//!   address, status, AC1's node findings.
//! - [`plan`]: which commands run on which machine for the criteria asked; [`fleet`] holds one
//!   transport per machine ([`transport`]: ssh2, replay, record); [`observe`] runs the plan, one
//!   batch per machine, into typed observations; [`probe`] are the pure parsers it uses;
//!   [`redact`] is the one place secrets are recognised: every quote of remote or repo text
//!   (logs, reports, cassettes, errors) goes through it.
//! - [`checks`]: pure verdicts, `evaluate(criterion, expectations, observations)`, one module per
//!   criterion; [`verdict`] their stable types.
//! - [`suite`]: the runner (pre-flight, opt-in, observe, rebuild, evaluate, [`report`]).
//! - [`rebuild`] runs AC5/AC6's rebuilds; [`monitor`] is AC7's stability monitor.
//!
//! The lab fleet is its own crate (`lab/`); this library does not depend on it.
#![warn(missing_docs)]

pub mod checks;
pub mod config;
pub mod env;
pub mod error;
pub mod expectations;
pub mod fleet;
pub mod init;
pub mod inventory;
pub mod monitor;
pub mod names;
pub mod observe;
pub mod oracle;
pub mod overlay;
pub mod plan;
pub mod probe;
pub mod rebuild;
pub mod redact;
pub mod report;
pub mod seen;
pub mod suite;
pub mod transport;
pub mod verdict;

pub use error::{Error, Result};
