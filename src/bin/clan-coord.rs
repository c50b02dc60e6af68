//! `clan-coord`: the harness from the command line.
//!
//! - `clan-coord check [--cassette FILE]`: run AC1–AC4 (live when built with `--features live`,
//!   else replaying a cassette) and print the verdicts and the summary table.
//! - `clan-coord plan [--json]`: print every command the checks would run on each machine, without
//!   connecting (what will touch production, before it does).

use std::path::PathBuf;
use std::process::ExitCode;

use clan_coordination::checks::{ac1_mesh, ac2_ssh, ac3_services, ac4_shared};
use clan_coordination::fleet::Fleet;
use clan_coordination::mode::{Mode, Settings};
use clan_coordination::{config, observe, report};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "clan-coord",
    about = "Prove that a clan-core fleet really coordinates"
)]
struct Cli {
    /// machines.toml (default: $COORD_MACHINES, else ./machines.toml).
    #[arg(long, global = true)]
    machines: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run AC1–AC4 and print verdicts.
    Check {
        /// Replay this cassette instead of the default.
        #[arg(long)]
        cassette: Option<PathBuf>,
    },
    /// Print the commands the checks would run, per machine, without connecting.
    Plan {
        /// As JSON (machine → commands).
        #[arg(long)]
        json: bool,
    },
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

fn run(cli: Cli) -> Result<ExitCode, clan_coordination::Error> {
    let machines = cli
        .machines
        .or_else(|| std::env::var_os("COORD_MACHINES").map(PathBuf::from));
    match cli.command {
        Command::Plan { json } => {
            let cfg = config::load(&machines.unwrap_or_else(|| PathBuf::from("machines.toml")))?;
            let (fleet, log) = Fleet::dry_run(cfg)?;
            let _ = observe::status(&fleet);
            let _ = observe::mesh(&fleet);
            let _ = observe::hops(&fleet);
            let log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (m, c) in log {
                by.entry(m).or_default().push(c);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&by).unwrap_or_default());
            } else {
                for (m, cmds) in by {
                    println!("{m}:");
                    for c in cmds {
                        println!("  {c}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { cassette } => {
            let mut settings = Settings::from_env(cfg!(feature = "live"))?;
            if let (Some(c), Mode::Replay { .. }) = (cassette, &settings.mode) {
                settings.mode = Mode::Replay { cassette: c };
            }
            if machines.is_some() {
                settings.machines = machines;
            }
            let fleet = Fleet::open(&settings)?;
            println!("fleet: {} ({})", fleet.config.path.display(), fleet.origin);
            let verdicts = [
                ac1_mesh::run(&fleet),
                ac2_ssh::run(&fleet),
                ac3_services::run(&fleet),
                ac4_shared::run(&fleet),
            ];
            for v in &verdicts {
                println!("{v}");
                report::record(&settings.report_dir, &fleet.origin, v)?;
            }
            println!("{}", report::summary(&verdicts.iter().collect::<Vec<_>>()));
            Ok(if verdicts.iter().all(|v| v.passed()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
