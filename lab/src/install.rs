//! `lab up --install`: the Debian packages the lab needs, installed without touching the host's
//! services. Installing openssh-server or yggdrasil on an ordinary Debian host starts and enables
//! their daemons there (a host sshd on port 22, a yggdrasil peering by multicast). So apt-get
//! runs behind a temporary `policy-rc.d` that forbids starting services (the user's own one is
//! set aside and put back), and the units the new packages enabled are disabled again, except
//! those that were enabled before. apt and dpkg write to a log; the operator sees one line.
//!
//! Every function takes the root directory it works on, so the tests run it on a temporary one.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::LabError;
use crate::files::io;
use crate::host::missing_packages;
use crate::process::{run, tail};

/// Where apt-get's and dpkg's output goes.
pub const APT_LOG: &str = "/var/log/clan-coord-lab-apt.log";

/// The policy-rc.d Debian's maintainer scripts ask before starting a service, under a root.
const POLICY: &str = "usr/sbin/policy-rc.d";
/// Where the user's own policy-rc.d waits while the lab's is in place.
const SAVED: &str = "usr/sbin/policy-rc.d.clan-coord-saved";
/// The lab's policy: 101 = "action forbidden" for every service and action.
const OURS: &str = "#!/bin/sh\n# clan-coord lab: no service may start while the lab installs packages (removed when it is done)\nexit 101\n";

/// The lab's `policy-rc.d`, in place until [`ServicePolicy::restore`] (or drop) puts the
/// user's own back.
#[derive(Debug)]
pub struct ServicePolicy {
    root: PathBuf,
    restored: bool,
}

impl ServicePolicy {
    /// Sets the user's `policy-rc.d` (if any) aside and puts the lab's in its place. One the lab
    /// left behind (a crashed install) is reused, and the user's set aside then stays the one
    /// restored.
    pub fn install(root: &Path) -> Result<ServicePolicy, LabError> {
        let (policy, saved) = (root.join(POLICY), root.join(SAVED));
        let ours_already = std::fs::read_to_string(&policy).is_ok_and(|t| t == OURS);
        if !ours_already {
            if std::fs::symlink_metadata(&policy).is_ok() {
                if std::fs::symlink_metadata(&saved).is_ok() {
                    return Err(LabError::Invalid(format!(
                        "{} and {} both exist: the second is a policy-rc.d the lab set aside \
                         before; put back the one you want and remove the other",
                        policy.display(),
                        saved.display()
                    )));
                }
                std::fs::rename(&policy, &saved).map_err(|e| io(&policy, e))?;
            }
            if let Some(p) = policy.parent() {
                std::fs::create_dir_all(p).map_err(|e| io(p, e))?;
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(&policy)
                .map_err(|e| io(&policy, e))?;
            f.write_all(OURS.as_bytes()).map_err(|e| io(&policy, e))?;
        }
        Ok(ServicePolicy {
            root: root.to_path_buf(),
            restored: false,
        })
    }

    /// Removes the lab's policy and puts the user's back, exactly as it was (renamed back).
    pub fn restore(mut self) -> Result<(), LabError> {
        self.restored = true;
        self.put_back()
    }

    fn put_back(&self) -> Result<(), LabError> {
        let (policy, saved) = (self.root.join(POLICY), self.root.join(SAVED));
        if std::fs::read_to_string(&policy).is_ok_and(|t| t == OURS) {
            std::fs::remove_file(&policy).map_err(|e| io(&policy, e))?;
        }
        if std::fs::symlink_metadata(&saved).is_ok() {
            std::fs::rename(&saved, &policy).map_err(|e| io(&saved, e))?;
        }
        Ok(())
    }
}

impl Drop for ServicePolicy {
    fn drop(&mut self) {
        if !self.restored {
            if let Err(e) = self.put_back() {
                tracing::error!("lab: could not restore policy-rc.d: {e}");
            }
        }
    }
}

/// A service a package can start at boot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// A systemd unit (`ssh.service`, `ssh.socket`).
    Unit(String),
    /// A System V init script (`/etc/init.d/ssh`).
    InitScript(String),
}

/// The services in a package file list (`dpkg-query -L` output). Template units (`x@.service`)
/// cannot be enabled as such and are left out.
pub fn services_in(file_list: &str) -> BTreeSet<Service> {
    file_list
        .lines()
        .filter_map(|l| {
            let p = Path::new(l.trim());
            let name = p.file_name()?.to_str()?.to_string();
            let dir = p.parent()?.to_str()?;
            let unit_dir = dir == "/lib/systemd/system" || dir == "/usr/lib/systemd/system";
            let unit_kind = [".service", ".socket", ".timer", ".path", ".target"]
                .iter()
                .any(|k| name.ends_with(k));
            if unit_dir && unit_kind && !name.contains('@') {
                Some(Service::Unit(name))
            } else if dir == "/etc/init.d" {
                Some(Service::InitScript(name))
            } else {
                None
            }
        })
        .collect()
}

/// The services enabled under `root`: systemd units wanted by a target
/// (`/etc/systemd/system/*.wants/`) and init scripts started in a runlevel (`/etc/rc?.d/S*`).
pub fn enabled_services(root: &Path) -> BTreeSet<Service> {
    let names = |d: PathBuf| -> Vec<String> {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let mut out = BTreeSet::new();
    for d in names(root.join("etc/systemd/system")) {
        if d.ends_with(".wants") {
            let wants = root.join("etc/systemd/system").join(&d);
            out.extend(names(wants).into_iter().map(Service::Unit));
        }
    }
    for level in '0'..='6' {
        for n in names(root.join(format!("etc/rc{level}.d"))) {
            if let Some(script) = n
                .strip_prefix('S')
                .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
            {
                out.insert(Service::InitScript(script.to_string()));
            }
        }
    }
    out
}

/// A command the install runs, as data (so a test can say what runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The program.
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(&'static str, &'static str)>,
}

/// apt-get's steps for `packages`: non-interactive, no recommended extras, the host's changed
/// configuration files kept.
pub fn apt_steps(packages: &[&str]) -> Vec<Step> {
    let env = vec![
        ("DEBIAN_FRONTEND", "noninteractive"),
        ("DEBCONF_NONINTERACTIVE_SEEN", "true"),
    ];
    let mut install: Vec<String> = [
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ]
    .map(String::from)
    .to_vec();
    install.extend(packages.iter().map(|p| p.to_string()));
    vec![
        Step {
            program: "apt-get",
            args: vec!["update".into(), "-q".into()],
            env: env.clone(),
        },
        Step {
            program: "apt-get",
            args: install,
            env,
        },
    ]
}

/// The steps that disable the services the install enabled (`now` less those enabled `before`).
pub fn disable_steps(before: &BTreeSet<Service>, new: &BTreeSet<Service>) -> Vec<Step> {
    new.iter()
        .filter(|s| !before.contains(s))
        .map(|s| match s {
            // deb-systemd-helper does nothing (and exits 0) unless it believes dpkg runs it.
            Service::Unit(u) => Step {
                program: "deb-systemd-helper",
                args: vec!["disable".into(), u.clone()],
                env: vec![
                    ("DPKG_MAINTSCRIPT_PACKAGE", "clan-coord-lab"),
                    ("DPKG_MAINTSCRIPT_NAME", "postinst"),
                ],
            },
            Service::InitScript(n) => Step {
                program: "update-rc.d",
                args: vec![n.clone(), "disable".into()],
                env: vec![],
            },
        })
        .collect()
}

/// Runs `step` with its output appended to `log`.
fn run_logged(step: &Step, log: &Path) -> Result<(), LabError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| io(log, e))?;
    let line = format!("{} {}", step.program, step.args.join(" "));
    writeln!(f, "\n== clan-coord lab: {line}").map_err(|e| io(log, e))?;
    let err = f.try_clone().map_err(|e| io(log, e))?;
    let status = Command::new(step.program)
        .args(&step.args)
        .envs(step.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(err)
        .status()
        .map_err(|e| LabError::Tool {
            tool: step.program.into(),
            reason: format!("cannot start: {e}"),
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(LabError::Tool {
            tool: line,
            reason: format!(
                "{status}; its output is in {} (last lines: {})",
                log.display(),
                tail(log, 4)
            ),
        })
    }
}

/// Installs missing packages with apt-get (see the module doc), saying once through `notice`
/// what it installs and where the output goes.
pub fn install_missing(notice: &mut dyn FnMut(&str)) -> Result<(), LabError> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let log = Path::new(APT_LOG);
    notice(&format!(
        "lab: installing {} with apt-get; host services are neither started nor enabled \
         (apt/dpkg output in {})",
        missing.join(" "),
        log.display()
    ));
    let root = Path::new("/");
    let before = enabled_services(root);
    let policy = ServicePolicy::install(root)?;
    let installed = apt_steps(&missing)
        .iter()
        .try_for_each(|s| run_logged(s, log));
    let restored = policy.restore();
    installed?;
    restored?;
    let files = run("dpkg-query", &[&["-L"], missing.as_slice()].concat())?;
    let new = services_in(&files);
    for step in disable_steps(&before, &new) {
        run_logged(&step, log)?;
    }
    // Checked, not assumed: a service the install left enabled is an error naming it.
    let left: Vec<String> = enabled_services(root)
        .difference(&before)
        .filter(|s| new.contains(s))
        .map(|s| format!("{s:?}"))
        .collect();
    if !left.is_empty() {
        return Err(LabError::Tool {
            tool: "deb-systemd-helper disable".into(),
            reason: format!(
                "the install left {} enabled on the host; see {}",
                left.join(", "),
                log.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn policy(root: &Path) -> Option<String> {
        std::fs::read_to_string(root.join(POLICY)).ok()
    }

    #[test]
    fn no_service_starts_during_the_install_and_no_policy_is_left() {
        let t = tempfile::tempdir().unwrap();
        let p = ServicePolicy::install(t.path()).unwrap();
        assert_eq!(policy(t.path()).as_deref(), Some(OURS));
        let mode = std::fs::metadata(t.path().join(POLICY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // invoke-rc.d runs it: 101 forbids the action.
        let rc = Command::new(t.path().join(POLICY))
            .arg("ssh")
            .arg("start")
            .status()
            .unwrap();
        assert_eq!(rc.code(), Some(101));
        p.restore().unwrap();
        assert!(policy(t.path()).is_none());
        assert!(!t.path().join(SAVED).exists());
    }

    #[test]
    fn the_users_own_policy_is_put_back_as_it_was() {
        let t = tempfile::tempdir().unwrap();
        let users = "#!/bin/sh\nexit 0\n";
        std::fs::create_dir_all(t.path().join("usr/sbin")).unwrap();
        std::fs::write(t.path().join(POLICY), users).unwrap();
        std::fs::set_permissions(
            t.path().join(POLICY),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        {
            let _p = ServicePolicy::install(t.path()).unwrap();
            assert_eq!(policy(t.path()).as_deref(), Some(OURS));
            // Dropped without restore (an error on the way): still put back.
        }
        assert_eq!(policy(t.path()).as_deref(), Some(users));
        let mode = std::fs::metadata(t.path().join(POLICY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        assert!(!t.path().join(SAVED).exists());
    }

    #[test]
    fn a_policy_a_crashed_install_left_is_reused_and_the_users_restored() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/sbin")).unwrap();
        std::fs::write(t.path().join(POLICY), OURS).unwrap();
        std::fs::write(t.path().join(SAVED), "users").unwrap();
        ServicePolicy::install(t.path()).unwrap().restore().unwrap();
        assert_eq!(policy(t.path()).as_deref(), Some("users"));
        // Both the user's and a set-aside one: the lab does not guess.
        std::fs::write(t.path().join(SAVED), "older").unwrap();
        let e = ServicePolicy::install(t.path()).unwrap_err().to_string();
        assert!(e.contains("both exist"), "{e}");
    }

    #[test]
    fn apt_runs_non_interactive_without_extras_keeping_host_config() {
        let steps = apt_steps(&["openssh-server", "yggdrasil"]);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].args, ["update", "-q"]);
        let install = &steps[1];
        assert_eq!(install.program, "apt-get");
        assert_eq!(
            install.args.join(" "),
            "install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold openssh-server yggdrasil"
        );
        for s in &steps {
            assert!(
                s.env.contains(&("DEBIAN_FRONTEND", "noninteractive")),
                "{s:?}"
            );
        }
    }

    #[test]
    fn only_services_the_install_enabled_are_disabled() {
        let files = "/.\n/lib/systemd/system/ssh.service\n/lib/systemd/system/ssh@.service\n\
            /lib/systemd/system/ssh.socket\n/lib/systemd/system/rescue-ssh.target\n\
            /usr/lib/systemd/system/yggdrasil.service\n/etc/init.d/ssh\n/usr/sbin/sshd\n\
            /lib/systemd/system/machines.target\n";
        let new = services_in(files);
        // systemd-container's machines.target is enabled by its install: a target counts too.
        assert_eq!(new.len(), 6, "{new:?}");
        // The host had yggdrasil enabled already: it stays as it was.
        let t = tempfile::tempdir().unwrap();
        let wants = t.path().join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink(
            "/usr/lib/systemd/system/yggdrasil.service",
            wants.join("yggdrasil.service"),
        )
        .unwrap();
        std::fs::create_dir_all(t.path().join("etc/rc2.d")).unwrap();
        std::os::unix::fs::symlink("../init.d/cron", t.path().join("etc/rc2.d/S01cron")).unwrap();
        let before = enabled_services(t.path());
        assert!(before.contains(&Service::InitScript("cron".into())));
        let cmds: Vec<String> = disable_steps(&before, &new)
            .iter()
            .map(|s| format!("{} {}", s.program, s.args.join(" ")))
            .collect();
        assert_eq!(
            cmds,
            [
                "deb-systemd-helper disable machines.target",
                "deb-systemd-helper disable rescue-ssh.target",
                "deb-systemd-helper disable ssh.service",
                "deb-systemd-helper disable ssh.socket",
                "update-rc.d ssh disable",
            ]
        );
    }
}
