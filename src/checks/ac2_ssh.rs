//! AC2: SSH between machines over the overlay, host authenticated by certificate. For every
//! ordered pair A → B, A's own OpenSSH client connects to B's overlay address in batch mode with
//! strict checking, an empty user known_hosts and `HostKeyAlias=<B>.<domain>`, and must print B's
//! name after verifying B's certificate.
//!
//! Judged against the clan repo, not against what a machine happens to trust: the certificate
//! the hop was shown ([`hop`]: its CA must be the repo's `openssh-ca`, its window must hold the
//! run's time on A's clock), the CA lines A trusts for B's name in every known_hosts file the hop
//! reads ([`trust`]), and the certificate B serves ([`served`]: the one in B's vars, signed by
//! the repo's CA, valid on B's clock). Causes are read from what the outputs say.

mod hop;
mod served;
mod trust;

use std::collections::BTreeSet;

use ssh_key::HashAlg;

use super::{Finding, Verdict};
use crate::expectations::Expectations;
use crate::names::Criterion;
use crate::observe::{MachineStatus, Observations, Seen};
use crate::probe::ssh::{ClientView, Clock};

/// The repo's `openssh-ca`, as findings name it.
pub(super) struct RepoCa {
    /// `SHA256:...`.
    fingerprint: String,
    /// `ssh-ed25519`.
    key_type: String,
    /// The var file it was read from.
    path: String,
}

/// What every AC2 rule reads: expectations, observations and the repo's CA.
pub(super) struct Ctx<'a> {
    exp: &'a Expectations,
    obs: &'a Observations,
    ca: Option<RepoCa>,
}

impl<'a> Ctx<'a> {
    fn new(exp: &'a Expectations, obs: &'a Observations) -> Ctx<'a> {
        let ca = exp.oracle.ca.as_ref().map(|c| RepoCa {
            fingerprint: c.value.fingerprint(HashAlg::Sha256).to_string(),
            key_type: c.value.algorithm().as_str().to_string(),
            path: c.path.display().to_string(),
        });
        Ctx { exp, obs, ca }
    }

    fn client(&self, m: &str) -> Option<&'a Seen<ClientView>> {
        self.obs.clients.get(m)
    }

    fn view(&self, m: &str) -> Option<&'a ClientView> {
        self.client(m).and_then(Seen::ok)
    }

    fn clock(&self, m: &str) -> Option<&'a Clock> {
        self.view(m).map(|v| &v.clock)
    }

    fn status(&self, m: &str) -> Option<&'a MachineStatus> {
        self.obs.status.get(m)
    }

    /// `ssh-ed25519 SHA256:...`, marked when it is the repo's CA.
    fn name_ca(&self, key_type: &str, fp: &str) -> String {
        match &self.ca {
            Some(ca) if ca.fingerprint == fp => format!("{key_type} {fp} (the clan's openssh-ca)"),
            _ => format!("{key_type} {fp}"),
        }
    }

    /// `the clan's openssh-ca ssh-ed25519 SHA256:... (<var file>)`.
    fn repo_ca_words(&self) -> String {
        self.ca.as_ref().map_or_else(
            || "the clan's openssh-ca (none in the repo)".to_string(),
            |ca| {
                format!(
                    "the clan's openssh-ca {} {} ({})",
                    ca.key_type, ca.fingerprint, ca.path
                )
            },
        )
    }
}

/// Judges AC2.
pub fn evaluate(exp: &Expectations, obs: &Observations) -> Verdict {
    let cx = Ctx::new(exp, obs);
    let mut f: Vec<Finding> = Vec::new();
    let mut targets = BTreeSet::new();
    for ((a, b), h) in &obs.hops {
        f.extend(hop::findings(&cx, a, b, h));
        f.extend(trust::findings(&cx, a, b));
        targets.insert(b.as_str());
    }
    for b in targets {
        f.extend(served::findings(&cx, b));
    }
    let clocks: Vec<String> = obs
        .clients
        .iter()
        .filter_map(|(m, c)| c.ok().map(|v| format!("{m} {}", v.clock.local)))
        .collect();
    let notes = if clocks.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "certificate windows judged on each machine's own clock as it answered (local time): {}",
            clocks.join(", ")
        )]
    };
    Verdict::new(Criterion::Ac2, f, notes)
}
