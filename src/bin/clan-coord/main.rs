//! `clan-coord`: the harness from the command line.
//!
//! - `clan-coord check [--machines FILE] [--replay [CASSETTE] | --cassette FILE]`: run every
//!   criterion the fleet gives evidence for (live against machines.toml in every build: AC1–AC4;
//!   replaying a cassette only when asked: AC1–AC4, and AC5/AC6 when it holds rebuilds) and print
//!   the verdicts, the summary table and which criteria did not run.
//! - `clan-coord lab up|status|down|fault|heal|check`: the namespace lab fleet (see README).
//! - `clan-coord plan [--json]`: print every command the checks would run on each machine, without
//!   connecting (what will touch production, before it does).

use std::path::PathBuf;
use std::process::ExitCode;

use clan_coordination::checks::Verdict;
use clan_coordination::env::Settings;
use clan_coordination::fleet::{load_expectations, Fleet};
use clan_coordination::names::Criterion;
use clan_coordination::plan::{Needs, Plan};
use clan_coordination::suite::{self, RunOptions};
use clan_coordination::{config, monitor, report};
use clap::{Parser, Subcommand};

mod clan_cmd;
mod lab_cmd;
use lab_cmd::{lab_command, LabAction};

/// What the binary can fail with: the harness library's errors, or the lab crate's (the library
/// does not depend on the lab, so their union lives here).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Harness(#[from] clan_coordination::Error),
    #[error(transparent)]
    Lab(#[from] clan_coord_lab::LabError),
}

impl From<clan_coordination::error::ConfigError> for CliError {
    fn from(e: clan_coordination::error::ConfigError) -> Self {
        CliError::Harness(e.into())
    }
}

#[derive(Parser)]
#[command(
    name = "clan-coord",
    about = "Prove that a clan-core fleet really coordinates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every criterion the fleet gives evidence for, live against machines.toml (AC1–AC4;
    /// AC5/AC6 with --only and COORD_DESTRUCTIVE=1) or, with --replay, from a cassette (AC5/AC6
    /// too when it holds rebuilds), or those given with --only; print verdicts and what did not run.
    Check {
        /// machines.toml (default: $COORD_MACHINES, else ./machines.toml).
        #[arg(long)]
        machines: Option<PathBuf>,
        /// Replay a cassette instead of running live: the one given, else $COORD_CASSETTE, else
        /// the story fleet's (tests/cassettes/story-fleet/cassette.json).
        #[arg(long, value_name = "CASSETTE", conflicts_with = "cassette")]
        replay: Option<Option<PathBuf>>,
        /// Replay this cassette (the same as --replay FILE; kept for operators' scripts).
        #[arg(long)]
        cassette: Option<PathBuf>,
        /// Run only these criteria (repeatable, e.g. `--only ac1 --only ac3`); default: every
        /// criterion the fleet gives evidence for.
        #[arg(long, value_parser = parse_criterion)]
        only: Vec<Criterion>,
    },
    /// Lint a clan repo offline: expected values per machine and every inconsistency.
    /// Exit status 1 when an inconsistency is an error (warnings do not change it).
    Oracle {
        /// Clan repo root (holds vars/).
        dir: PathBuf,
        /// Inventory serialization JSON (enables role and orphan rules).
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// Evaluate the inventory of the clan flake at this directory with `nix eval` instead.
        #[arg(long, conflicts_with = "inventory")]
        flake: Option<PathBuf>,
        /// Certificate domain (default: the inventory's, else clan).
        #[arg(long)]
        domain: Option<clan_coordination::names::DomainName>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// The resolved instances of an inventory serialization, as the insta snapshot pins them.
    Inventory {
        /// Inventory serialization JSON (raw, wrapped settings accepted).
        #[arg(required_unless_present = "flake")]
        file: Option<PathBuf>,
        /// Evaluate the clan flake at this directory with `nix eval` instead.
        #[arg(long, conflicts_with = "file")]
        flake: Option<PathBuf>,
        /// As JSON (the default output is JSON too, pretty; --json prints it compact).
        #[arg(long)]
        json: bool,
    },
    /// Watch the fleet: rounds of pings, SSH hops, overlay status and journal scans, one JSON
    /// line per round; resumes an existing log.
    Monitor {
        /// machines.toml (default: $COORD_MACHINES, else ./machines.toml).
        #[arg(long)]
        machines: Option<PathBuf>,
        /// Span to cover, e.g. 24h, 40s, 90m (1s to 30d).
        #[arg(long = "for", value_parser = span)]
        for_: std::time::Duration,
        /// Interval between rounds, e.g. 5m, 2s (1s to 1d).
        #[arg(long, value_parser = interval)]
        every: std::time::Duration,
        /// The log (JSON lines).
        #[arg(long, default_value = "target/coordination/monitor.jsonl")]
        log: PathBuf,
    },
    /// Summarise a monitor log and write a self-contained HTML page with an SVG plot.
    Report {
        /// The monitor log.
        #[arg(long)]
        log: PathBuf,
        /// Output directory (report.html, summary.txt).
        #[arg(long, default_value = "target/coordination")]
        out: PathBuf,
        /// Span the log must cover for AC7 (default 24h; 1s to 30d).
        #[arg(long, value_parser = span, default_value = "24h")]
        required: std::time::Duration,
    },
    /// The lab fleet on this host: containers booted by real systemd in their own network
    /// namespaces, with real sshd and ZeroTier (or yggdrasil), as a clan flake clan-core evaluates.
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Write a first machines.toml from the clan's inventory: every machine with its
    /// deploy.targetHost, the overlay from the instances, the domain from meta.domain; what is for
    /// you to decide (authentication, thresholds) is marked DECIDE, and machines left out (no
    /// targetHost, darwin) are listed commented out with the reason.
    Init {
        /// The clan repo (a flake): its inventory is evaluated with `nix eval`.
        #[arg(long, conflicts_with = "inventory")]
        flake: Option<PathBuf>,
        /// An inventory serialization file instead (`nix eval --json
        /// .#clanInternals.inventoryClass.inventorySerialization`).
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// Where to write it (`-`: standard output).
        #[arg(long, default_value = "machines.toml")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the commands the checks would run, per machine, without connecting.
    Plan {
        /// machines.toml (default: $COORD_MACHINES, else ./machines.toml).
        #[arg(long)]
        machines: Option<PathBuf>,
        /// As JSON (machine → commands).
        #[arg(long)]
        json: bool,
        /// Plan only these criteria (repeatable); default all of AC1–AC6, rebuilds included.
        #[arg(long, value_parser = parse_criterion)]
        only: Vec<Criterion>,
    },
}

fn parse_criterion(s: &str) -> Result<Criterion, String> {
    Criterion::parse(s).ok_or_else(|| format!("{s:?}: expected ac1 … ac7"))
}

use clan_coordination::env::{parse_duration, INTERVAL, SPAN};

/// `--for` and `--required`: bounded, so no value overflows or panics (clap names the flag).
fn span(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s, SPAN)
}

/// `--every`: bounded, so 0 cannot make the monitor loop without pause.
fn interval(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s, INTERVAL)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn progress(line: &str) {
    eprintln!("{line}");
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // The commands are live by nature; `check` chooses live or replay from its own flags.
    let settings = Settings::for_live_commands()?;
    match cli.command {
        Command::Lab { action } => lab_command(action, &settings),
        Command::Monitor {
            machines,
            for_,
            every,
            log,
        } => {
            if every > for_ {
                return Err(clan_coordination::Error::Env {
                    var: "--every",
                    value: format!("{every:?}"),
                    reason: format!("longer than --for {for_:?}"),
                }
                .into());
            }
            let path = settings.machines_or(machines);
            let fleet = Fleet::live(config::load(&path)?, None, &settings.snapshots)?;
            let ran = monitor::run(
                &fleet,
                &monitor::MonitorOptions {
                    for_,
                    every,
                    log: log.clone(),
                },
                &progress,
            )?;
            eprintln!("monitor: {ran} rounds this run; log {}", log.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { log, out, required } => {
            let rounds = monitor::read_log(&log).map_err(|e| clan_coordination::Error::Env {
                var: "--log",
                value: log.display().to_string(),
                reason: e,
            })?;
            let s = monitor::analysis::summarize(&rounds, required.as_secs_f64());
            let text = monitor::analysis::render(&s);
            print!("{text}");
            let write = |name: &str, body: &str| {
                std::fs::create_dir_all(&out)
                    .and_then(|_| std::fs::write(out.join(name), body))
                    .map_err(|e| clan_coordination::Error::Write {
                        path: out.join(name),
                        source: e,
                    })
            };
            write("summary.txt", &text)?;
            write(
                "report.html",
                &monitor::html::page(
                    &format!("clan-coord stability report: {}", log.display()),
                    &rounds,
                    &s,
                ),
            )?;
            let v = clan_coordination::checks::ac7_stability::evaluate(&s);
            println!("{v}");
            eprintln!("report: {}", out.join("report.html").display());
            Ok(if v.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Oracle {
            dir,
            inventory,
            flake,
            domain,
            json,
        } => Ok(oracle_command(
            &dir,
            flake.as_deref(),
            inventory.as_deref(),
            domain,
            json,
        )?),
        Command::Init {
            flake,
            inventory,
            out,
            force,
        } => Ok(clan_cmd::init_command(
            flake.as_deref(),
            inventory.as_deref(),
            &out,
            force,
        )?),
        Command::Inventory { file, flake, json } => {
            let inv = parse_inventory(flake.as_deref(), file.as_deref())?;
            let v = inv.snapshot_value();
            if json {
                println!("{}", serde_json::to_string(&v).unwrap_or_default());
            } else {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            machines,
            json,
            only,
        } => {
            let cfg = config::load(&settings.machines_or(machines))?;
            // A configured flake is evaluated here, on the workstation (nix eval); no machine is
            // contacted.
            let ws = clan_coordination::transport::local::Workstation {
                timeout: std::time::Duration::from_secs(300),
            };
            let exp = load_expectations(cfg, Some(&ws), &settings.snapshots)?;
            let criteria = if only.is_empty() {
                Criterion::ALL.to_vec()
            } else {
                only
            };
            let plan = Plan::new(&exp, Needs::of(&criteria));
            if json {
                let mut by: std::collections::BTreeMap<String, Vec<String>> = plan
                    .machines
                    .keys()
                    .map(|m| (m.clone(), plan.commands(m)))
                    .collect();
                if !plan.rebuilds.is_empty() {
                    by.insert(
                        "workstation".into(),
                        plan.rebuilds
                            .values()
                            .map(|c| c.text().to_string())
                            .collect(),
                    );
                }
                println!("{}", serde_json::to_string_pretty(&by).unwrap_or_default());
            } else {
                print!("{}", plan.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            machines,
            replay,
            cassette,
            only,
        } => {
            let mut settings = Settings::for_cli(replay.or(cassette.map(Some)))?;
            if machines.is_some() {
                settings.machines = machines;
            }
            let fleet = Fleet::open(&settings)?;
            let criteria = if only.is_empty() {
                suite::default_criteria(&fleet)
            } else {
                only
            };
            let opts = RunOptions {
                destructive: settings.destructive,
                report_dir: Some(settings.report_dir.clone()),
                log_dir: settings.report_dir.clone(),
                progress: &progress,
                before_rebuild: None,
            };
            check_fleet(&fleet, &criteria, &opts)
        }
    }
}

pub(crate) fn check_fleet(
    fleet: &Fleet,
    criteria: &[Criterion],
    opts: &RunOptions,
) -> Result<ExitCode, CliError> {
    println!(
        "fleet: {} ({})",
        fleet.expect.config.path.display(),
        fleet.origin
    );
    for (m, name, ip) in &fleet.resolved {
        println!("{m}: {name} resolved to {ip} (the address used)");
    }
    let verdicts = suite::run(fleet, criteria, opts)?;
    for v in &verdicts {
        println!("{v}");
    }
    print!("{}", report::summary(&verdicts.iter().collect::<Vec<_>>()));
    let not_run = suite::not_run(fleet, criteria);
    if let Some(line) = suite::not_run_line(&not_run) {
        println!("{line}");
    }
    println!();
    if let Some(dir) = &opts.report_dir {
        report::record_not_run(dir, &fleet.origin.to_string(), &not_run)?;
    }
    Ok(if verdicts.iter().all(Verdict::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// An inventory from the clan flake at `flake` (`nix eval`) or the serialization file `file`.
fn parse_inventory(
    flake: Option<&std::path::Path>,
    file: Option<&std::path::Path>,
) -> Result<clan_coordination::inventory::Inventory, clan_coordination::Error> {
    let (text, origin) = clan_cmd::serialization(flake, file)?;
    Ok(clan_coordination::inventory::Inventory::parse(
        &text, &origin,
    )?)
}

fn oracle_command(
    dir: &std::path::Path,
    flake: Option<&std::path::Path>,
    inventory: Option<&std::path::Path>,
    domain: Option<clan_coordination::names::DomainName>,
    json: bool,
) -> Result<ExitCode, clan_coordination::Error> {
    use clan_coordination::oracle::{lint, Oracle};
    let inv = if flake.is_some() || inventory.is_some() {
        Some(parse_inventory(flake, inventory)?)
    } else {
        None
    };
    let names: Vec<String> = inv
        .as_ref()
        .map(|i| i.machines.keys().cloned().collect())
        .unwrap_or_default();
    let o = Oracle::load(dir, &names)?;
    let domain = domain
        .or_else(|| inv.as_ref().and_then(|i| i.domain.clone()))
        .map(String::from)
        .unwrap_or_else(|| "clan".into());
    let mut s = lint::summary(&o, inv.as_ref(), &domain, dir.to_path_buf());
    if let Some(f) = flake {
        // What clan itself exports of the fleet's addresses, against the vars.
        let peers = clan_cmd::exports(f)?;
        s.issues
            .extend(clan_coordination::oracle::exports::cross_check(&o, &peers));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
    } else {
        print!("{}", lint::render(&s));
    }
    Ok(if s.issues.iter().any(|i| i.level == lint::Level::Error) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
