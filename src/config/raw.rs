//! machines.toml as written: serde structs that keep the position of every value the validators
//! may complain about, and reject unknown fields so typos cannot be silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::located::Source;
use super::OverlayKind;
use crate::error::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) fleet: RawFleet,
    #[serde(default)]
    pub(super) ssh: Option<RawSsh>,
    #[serde(default)]
    pub(super) thresholds: Option<RawThresholds>,
    #[serde(default, rename = "machine")]
    pub(super) machines: Vec<Spanned<RawMachine>>,
    #[serde(default)]
    pub(super) modules: BTreeMap<Spanned<String>, RawModule>,
    #[serde(default)]
    pub(super) rebuild: Option<RawRebuild>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRebuild {
    #[serde(default)]
    pub(super) command: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) parallel: Option<Spanned<usize>>,
    #[serde(default)]
    pub(super) timeout_secs: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) settle_secs: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) restart_units: Vec<Spanned<String>>,
    #[serde(default, rename = "artefact")]
    pub(super) artefacts: Vec<RawArtefact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArtefact {
    pub(super) path: Spanned<String>,
    #[serde(default)]
    pub(super) expect_sha256: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    pub(super) clan_dir: Spanned<String>,
    #[serde(default)]
    pub(super) domain: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) overlay: Option<OverlayKind>,
    #[serde(default)]
    pub(super) inventory_json: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) flake: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) only: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    #[serde(default)]
    pub(super) auth: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) identity_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) user: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) connect_timeout_secs: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) command_timeout_secs: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) known_hosts: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) netns: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThresholds {
    #[serde(default)]
    pub(super) max_rtt_ms: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) ping_count: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) ping_interval_secs: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) ping_timeout_secs: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMachine {
    pub(super) name: Spanned<String>,
    pub(super) address: Spanned<String>,
    #[serde(default)]
    pub(super) port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(super) user: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) overlay_address: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModule {
    #[serde(default)]
    pub(super) units: Vec<Spanned<String>>,
}

/// Deserializes the whole file; TOML and shape errors become located errors whose field says
/// which kind of mistake it is (unknown field, missing field, syntax or type).
pub(super) fn read(src: &Source) -> Result<RawFile, ConfigError> {
    toml::from_str(src.text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let msg = e.message().to_string();
        let (field, fix) = if msg.contains("unknown field") {
            (
                "(unknown field)",
                "remove or rename the field; README.md lists every field of machines.toml",
            )
        } else if msg.contains("missing field") {
            (
                "(missing field)",
                "add the field; README.md lists the required fields",
            )
        } else if msg.contains("number too large")
            || (msg.contains("invalid value: integer") && msg.contains("expected u"))
        {
            (
                "(value)",
                "write a whole number in the field's range (README.md lists each field and its range)",
            )
        } else if msg.contains("recursion limit") {
            (
                "(syntax)",
                "machines.toml has no deeply nested values: remove the nested arrays or tables",
            )
        } else if msg.contains("invalid type: sequence") || msg.contains("invalid type: map") {
            (
                "(syntax)",
                "wrong kind of value here: `[fleet]`, `[ssh]`, `[thresholds]` and `[rebuild]` are single tables, `[[machine]]` a list of tables, names and paths are quoted strings",
            )
        } else {
            (
                "(syntax)",
                "fix the TOML syntax or the value's type at this place",
            )
        };
        src.error(offset, field, msg, fix)
    })
}
