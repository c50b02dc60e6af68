//! `clan-coord lab ...`: the lab fleet's subcommands (the lab crate does the work; this prints).

use std::path::PathBuf;
use std::process::ExitCode;

use clan_coord_lab as lab;
use clan_coordination::config;
use clan_coordination::env::Settings;
use clan_coordination::fleet::Fleet;
use clan_coordination::names::Criterion;
use clan_coordination::suite::RunOptions;
use clap::Subcommand;

use crate::{check_fleet, progress, CliError};

#[derive(Subcommand)]
pub(crate) enum LabAction {
    /// Bring the lab up (cleaning leftovers first); prints the machines file to use.
    Up {
        #[command(flatten)]
        common: LabArgs,
        #[command(flatten)]
        size: UpArgs,
    },
    /// Show the lab's machines (systemd's state, sshd.service, the overlay's unit) and faults,
    /// and any bound directory that no longer holds (exit code 1 then).
    Status {
        #[command(flatten)]
        common: LabArgs,
    },
    /// Power the lab's machines off and delete its namespaces (fine when none is up).
    Down {
        #[command(flatten)]
        common: LabArgs,
    },
    /// Bring a real fault into a machine: overlay-down, link-down, sshd-down, foreign-cert,
    /// shared-var-drift, user-key-revoked, slow-link (its underlay wire delayed 150 ms each way);
    /// yggdrasil lab: overlay-fail (its unit really
    /// fails); ZeroTier lab: zt-deauthorize, zt-identity-drift, zt-network-recreated; one-shot:
    /// sessions-cut (every sshd process killed; systemd restarts the listener), overlay-crash (the
    /// overlay daemon killed; systemd logs it and restarts it).
    Fault {
        #[command(flatten)]
        common: LabArgs,
        /// Machine.
        machine: String,
        /// Fault kind.
        kind: String,
    },
    /// Undo faults on one machine (or all) and wait for the mesh.
    Heal {
        #[command(flatten)]
        common: LabArgs,
        /// Machine (default: all).
        machine: Option<String>,
    },
    /// The lab's `clan machines update`: apply the lab repo's configuration to one machine.
    Rebuild {
        #[command(flatten)]
        common: LabArgs,
        /// Machine.
        machine: String,
    },
    /// Internal: the relay that `lab fault <m> slow-link` starts on a machine's underlay wire (in the lab's switch namespace).
    #[command(hide = true)]
    Relay(RelayArgs),
    /// The main job: bring the lab up, run AC1–AC6 live against it (real rebuilds), print the verdicts, tear it down.
    Check {
        #[command(flatten)]
        common: LabArgs,
        #[command(flatten)]
        size: UpArgs,
        /// Leave the lab running afterwards.
        #[arg(long)]
        keep: bool,
        /// Also record the run for offline replay into this directory (cassette.json, the lab's
        /// public clan repo and a machines.toml), e.g. tests/cassettes/lab.
        #[arg(long)]
        record: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub(crate) struct RelayArgs {
    /// The machine's underlay port, out of the bridge.
    #[arg(long)]
    port: String,
    /// The TAP device in the bridge in its place.
    #[arg(long)]
    tap: String,
    /// Delay added in each direction, in milliseconds.
    #[arg(long)]
    delay_ms: u64,
}

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// Number of machines (2..=16).
    #[arg(long, default_value_t = 2)]
    machines: usize,
    /// Install missing Debian packages (iproute2, openssh-server, yggdrasil, systemd-container,
    /// debootstrap, nix-bin, ...) first, without
    /// starting or enabling their services on the host; apt/dpkg output goes to
    /// /var/log/clan-coord-lab-apt.log.
    #[arg(long)]
    install: bool,
    /// Where the machines' Debian root file system is built once and kept (debootstrap, about a
    /// minute; rebuilt only when its package list changes).
    #[arg(long, env = "COORD_LAB_CACHE", default_value = lab::rootfs::DEFAULT_CACHE)]
    cache: PathBuf,
    /// The machines' overlay: zerotier (the story's: hetzner-vm the controller, built once from
    /// the vendored source, private planet), or yggdrasil.
    #[arg(long, default_value = "zerotier")]
    overlay: String,
    /// ZeroTier's vendored source (zerotierone-1.14.1.tar.gz, sha256 checked).
    #[arg(
        long,
        env = "COORD_ZEROTIER_SRC",
        default_value = "../shared/vendor/zerotierone-1.14.1.tar.gz"
    )]
    zerotier_src: PathBuf,
    /// clan-core's vendored source (the lab's clan flake is evaluated with it; its zerotier
    /// tools), sha256 checked; its flake inputs (nixpkgs-lib, flake-parts, nix-systems) beside it.
    #[arg(
        long,
        env = "COORD_CLAN_CORE_SRC",
        default_value = "../shared/vendor/clan-core-d7c35d91.tar.gz"
    )]
    clan_core_src: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct LabArgs {
    /// Lab state directory: created with mode 0700; an existing one must be yours and writable
    /// by nobody else (it holds the lab's keys and the pids it signals).
    #[arg(long, env = "COORD_LAB_DIR", default_value = lab::DEFAULT_DIR)]
    dir: PathBuf,
    /// Namespace name prefix.
    #[arg(long, default_value = "clab")]
    prefix: String,
}

/// AC5 and AC6 on the lab (the lab is disposable, so it is the opt-in): before AC5 a shared
/// setting changes in the lab repo; before AC6 an overlay setting changes (ZeroTier: the
/// network's MTU, which the members must fetch; yggdrasil: the listen port), and the services
/// must still coordinate.
fn lab_change(state: &lab::LabState, c: Criterion) -> Result<(), lab::LabError> {
    match c {
        Criterion::Ac5 => {
            lab::system::change(state, |c| {
                let conf = c["nix_conf"].as_str().unwrap_or_default().to_string();
                c["nix_conf"] = format!("{conf}# changed by clan-coord lab check\n").into();
            })?;
            println!(
                "lab: changed the shared nix.conf in the lab repo; rebuilding every machine (AC5)"
            );
        }
        Criterion::Ac6 if state.zerotier.is_some() => {
            lab::system::change(state, |c| {
                let mtu = c["zerotier_mtu"].as_u64().unwrap_or(2800);
                c["zerotier_mtu"] = (if mtu == 2800 { 2700 } else { 2800 }).into();
            })?;
            println!(
                "lab: changed the zerotier instance's network MTU in the lab repo; rebuilding (AC6)"
            );
        }
        Criterion::Ac6 => {
            lab::system::change(state, |c| {
                let port = c["yggdrasil_port"].as_u64().unwrap_or(6443);
                c["yggdrasil_port"] = (port + 1).into();
            })?;
            println!(
                "lab: changed the yggdrasil instance's port in the lab repo; rebuilding (AC6)"
            );
        }
        _ => {}
    }
    Ok(())
}

pub(crate) fn lab_command(action: LabAction, settings: &Settings) -> Result<ExitCode, CliError> {
    let up = |c: &LabArgs, size: &UpArgs| {
        let t = std::time::Instant::now();
        let state = lab::up(
            &lab::UpOptions {
                machines: size.machines,
                dir: c.dir.clone(),
                prefix: c.prefix.clone(),
                install: size.install,
                exe: None,
                cache: size.cache.clone(),
                overlay: size.overlay.clone(),
                zerotier_src: size.zerotier_src.clone(),
                clan_core_src: size.clan_core_src.clone(),
            },
            &mut |notice| eprintln!("{notice}"),
        )?;
        eprintln!(
            "lab: {} machines up in {:.2?}",
            state.machines.len(),
            t.elapsed()
        );
        Ok::<_, CliError>(state)
    };
    match action {
        LabAction::Up { common, size } => {
            let state = up(&common, &size)?;
            print!("{}", lab::status(&state.dir)?);
            println!("COORD_MACHINES={}", state.machines_file().display());
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Rebuild { common, machine } => {
            lab::rebuild(&common.dir, &machine, &mut |line| println!("{line}"))?;
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Relay(r) => {
            lab::relay::run(
                &r.port,
                &r.tap,
                std::time::Duration::from_millis(r.delay_ms),
            )
            .map_err(|e| lab::LabError::Tool {
                tool: "lab relay".into(),
                reason: e.to_string(),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Status { common } => {
            print!("{}", lab::status(&common.dir)?);
            // A bind that no longer holds makes the lab unfit for use: say so in the exit code.
            let detached = lab::LabState::load(&common.dir)?
                .map(|s| lab::binds::detached(&s).len())
                .unwrap_or(0);
            Ok(if detached == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        LabAction::Down { common } => {
            let t = std::time::Instant::now();
            let was = lab::down_with(&common.dir, &mut |notice| eprintln!("{notice}"))?;
            eprintln!(
                "lab: {} in {:.2?}",
                if was { "down" } else { "no lab was up" },
                t.elapsed()
            );
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Fault {
            common,
            machine,
            kind,
        } => {
            lab::fault(&common.dir, &machine, kind.parse()?)?;
            eprintln!("lab: {kind} on {machine}");
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Heal { common, machine } => {
            lab::heal(&common.dir, machine.as_deref())?;
            eprintln!(
                "lab: healed {}",
                machine.as_deref().unwrap_or("all machines")
            );
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Check {
            common,
            size,
            keep,
            record,
        } => {
            let state = up(&common, &size)?;
            let result = (|| {
                let cfg = config::load(&state.machines_file())?;
                let cassette = match &record {
                    Some(out) => Some(lab::prepare_recording(&state, out)?),
                    None => None,
                };
                let fleet = Fleet::live(cfg, cassette.as_deref(), &settings.snapshots)?;
                let change = |c: Criterion| lab_change(&state, c).map_err(|e| e.to_string());
                let opts = RunOptions {
                    destructive: true,
                    report_dir: Some(settings.report_dir.clone()),
                    log_dir: settings.report_dir.clone(),
                    progress: &progress,
                    before_rebuild: Some(&change),
                };
                check_fleet(
                    &fleet,
                    &Criterion::on_the_fleet().collect::<Vec<_>>(),
                    &opts,
                )
            })();
            if let (Some(out), Ok(_)) = (&record, &result) {
                lab::finish_recording(&state, out)?;
                eprintln!("lab: recorded into {}", out.display());
            }
            if !keep {
                let t = std::time::Instant::now();
                lab::down(&state.dir)?;
                eprintln!("lab: down in {:.2?}", t.elapsed());
            }
            result
        }
    }
}
