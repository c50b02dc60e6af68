//! Located errors: every problem in machines.toml points at file, line and column, so the operator
//! can jump to it instead of guessing from a later SSH failure.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::NAME_RE;
use crate::error::ConfigError;
use crate::names::{DomainName, UnitName};

/// The text being parsed and where it came from: turns byte offsets into line/column for
/// messages and resolves relative paths against the file's directory.
pub(super) struct Source<'a> {
    /// The machines file (messages and relative paths).
    pub(super) path: &'a Path,
    /// Its contents.
    pub(super) text: &'a str,
}

impl Source<'_> {
    fn at(&self, offset: usize) -> (usize, usize) {
        // A span inside a character cannot come from toml, but must not panic either.
        let mut end = offset.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &self.text[..end];
        // Editors do not count a byte order mark as a column.
        let before = before.strip_prefix('\u{feff}').unwrap_or(before);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// The error for `field` at byte `offset`.
    pub(super) fn error(
        &self,
        offset: usize,
        field: &str,
        problem: String,
        fix: &str,
    ) -> ConfigError {
        let (line, column) = self.at(offset);
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.to_string(),
            problem,
            fix: fix.to_string(),
        }
    }

    /// The value of `f` if within `lo..=hi` (NaN and infinities are not), `d` when absent. Every
    /// number of machines.toml goes through here, so none can overflow or mean "no limit".
    pub(super) fn bounded<T: PartialOrd + Copy + Display>(
        &self,
        f: Option<&Spanned<T>>,
        d: T,
        lo: T,
        hi: T,
        field: &str,
    ) -> Result<T, ConfigError> {
        match f {
            Some(v) if !(lo..=hi).contains(v.get_ref()) => Err(self.error(
                v.span().start,
                field,
                format!("{} is out of range", v.get_ref()),
                &format!("use a value between {lo} and {hi}"),
            )),
            Some(v) => Ok(*v.get_ref()),
            None => Ok(d),
        }
    }

    /// `v` if it is a name clan accepts (see [`NAME_RE`]).
    pub(super) fn name<'s>(
        &self,
        v: &'s Spanned<String>,
        field: &str,
    ) -> Result<&'s str, ConfigError> {
        let s = v.get_ref().as_str();
        if NAME_RE.is_match(s) {
            Ok(s)
        } else {
            Err(self.error(
                v.span().start,
                field,
                format!("{s:?} is not a valid name"),
                "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 (as clan machine names)",
            ))
        }
    }

    /// `v` as a systemd unit name (see [`UnitName`]); `example` is a full name for the fix.
    pub(super) fn unit(
        &self,
        v: &Spanned<String>,
        field: &str,
        example: &str,
    ) -> Result<UnitName, ConfigError> {
        UnitName::new(v.get_ref()).map_err(|why| {
            self.error(
                v.span().start,
                field,
                why,
                &format!("write full unit names such as {example:?}, never starting with '-'"),
            )
        })
    }

    /// `v` as a DNS domain (see [`DomainName`]).
    pub(super) fn domain(
        &self,
        v: &Spanned<String>,
        field: &str,
    ) -> Result<DomainName, ConfigError> {
        DomainName::new(v.get_ref()).map_err(|why| {
            self.error(
                v.span().start,
                field,
                why,
                "use clan's meta.domain, e.g. \"clan\" or \"zt\"",
            )
        })
    }

    /// `v` as a path, resolved like [`Source::resolve`]; refused when empty or holding control
    /// characters (a NUL cuts it short in the C libraries it reaches, a newline forges log lines).
    pub(super) fn path(&self, v: &Spanned<String>, field: &str) -> Result<PathBuf, ConfigError> {
        let p = v.get_ref();
        if p.is_empty() || p.chars().any(char::is_control) {
            return Err(self.error(
                v.span().start,
                field,
                format!("{p:?} is not a usable path (empty, or holds control characters)"),
                "write the path as plain text, relative to this file or absolute",
            ));
        }
        Ok(self.resolve(p))
    }

    /// Byte offset of the `[name]` header, for errors about a table as a whole; 0 when the
    /// table is written with dotted keys (the toml crate cannot span those).
    pub(super) fn table_start(&self, name: &str) -> usize {
        let header = format!("[{name}]");
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            if line.trim_start().starts_with(&header) {
                return offset + (line.len() - line.trim_start().len());
            }
            offset += line.len();
        }
        0
    }

    /// `p` with a leading `~/` expanded, relative to the machines file's directory, so the file
    /// means the same whatever the working directory.
    pub(super) fn resolve(&self, p: &str) -> PathBuf {
        let expanded = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(p),
        };
        if expanded.is_absolute() {
            expanded
        } else {
            let base = self
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            base.join(expanded)
        }
    }
}
