//! clan CLI outputs and vars paths: `clan machines list`, `clan vars list` and repo vars paths.

use super::ProbeError;
use crate::config::NAME_RE;

/// `clan machines list`: one name per line.
pub fn parse_machines_list(out: &str) -> Result<Vec<String>, ProbeError> {
    let mut v = Vec::new();
    for l in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !NAME_RE.is_match(l) {
            return Err(ProbeError::new(
                "clan machines list",
                format!("{l:?} is not a machine name"),
                out,
            ));
        }
        v.push(l.to_string());
    }
    Ok(v)
}

/// A `clan vars list` entry; secret values are never kept, only the fact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VarListing {
    /// Generator.
    pub generator: String,
    /// File.
    pub file: String,
    /// `Some(value)` for public vars, `None` for secrets (`********`) and `<not set>`.
    pub value: Option<String>,
    /// Printed as a secret.
    pub secret: bool,
}

/// `clan vars list <m>` (`<gen>/<file>: <value>`; the docs show the colon missing, accepted too).
pub fn parse_vars_list(out: &str) -> Result<Vec<VarListing>, ProbeError> {
    let mut v = Vec::new();
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        let (id, value) = match l.split_once(": ") {
            Some((id, val)) if !id.contains(' ') => (id, val),
            _ => l.split_once(' ').ok_or_else(|| {
                ProbeError::new("clan vars list", "expected <generator>/<file>: <value>", l)
            })?,
        };
        let (generator, file) = id
            .split_once('/')
            .ok_or_else(|| ProbeError::new("clan vars list", "var id without '/'", l))?;
        let secret = value.trim() == "********";
        let value = if secret || value.trim() == "<not set>" {
            None
        } else {
            Some(value.trim().to_string())
        };
        v.push(VarListing {
            generator: generator.into(),
            file: file.into(),
            value,
            secret,
        });
    }
    Ok(v)
}

/// A vars path in a clan repo: `vars/per-machine/<m>/<gen>/<file>/value` or `vars/shared/<gen>/<file>/value`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VarPath {
    /// Machine for per-machine vars.
    pub machine: Option<String>,
    /// Generator.
    pub generator: String,
    /// File.
    pub file: String,
}

/// Parses a vars path (relative to the repo root).
pub fn parse_var_path(p: &str) -> Result<VarPath, ProbeError> {
    let parts: Vec<&str> = p.trim().split('/').collect();
    match parts.as_slice() {
        ["vars", "per-machine", m, g, f, "value" | "secret"] => Ok(VarPath {
            machine: Some(m.to_string()),
            generator: g.to_string(),
            file: f.to_string(),
        }),
        ["vars", "shared", g, f, "value" | "secret"] => Ok(VarPath {
            machine: None,
            generator: g.to_string(),
            file: f.to_string(),
        }),
        _ => Err(ProbeError::new(
            "vars path",
            "expected vars/per-machine/<m>/<gen>/<file>/value or vars/shared/<gen>/<file>/value",
            p,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::detect;

    #[test]
    fn a_rejected_line_is_not_quoted_when_it_holds_a_secret() {
        // Found by fuzz/fuzz_targets/clan.rs (minimised): a yescrypt-shaped line was quoted
        // raw in the error's problem, past the redaction point.
        let e = parse_machines_list("$y$$emergecm").unwrap_err().to_string();
        assert_eq!(detect(&e), None, "{e}");
        assert!(e.contains("withheld"), "{e}");
        // A plain bad name is still named.
        let e = parse_machines_list("Bad_Name").unwrap_err().to_string();
        assert!(e.contains("\"Bad_Name\" is not a machine name"), "{e}");
    }
}
