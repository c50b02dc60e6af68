//! The monitor on the lab, compressed (seconds instead of hours): a healthy run survives a
//! crash and resumes its log, and passes AC7; an overlay outage mid-run shows as a disconnection
//! with the right start and end and fails AC7 naming it; with sshd down on one machine the
//! monitor keeps going and records it (its own session survives; new connections are refused);
//! with every sshd process killed, the monitor reconnects and records it; the overlay daemon
//! killed shows in the report as the journal's error line (real journald). Skips with a visible
//! reason where the lab cannot run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clan_coord_lab as lab;
use clan_coordination::checks::ac7_stability;
use clan_coordination::monitor::{analysis, read_log};

mod common;
mod skip;

const BIN: &str = env!("CARGO_BIN_EXE_clan-coord");
const EVERY: f64 = 2.0;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn monitor(machines: &Path, log: &Path, for_: &str) -> Child {
    Command::new(BIN)
        .args(["monitor", "--machines"])
        .arg(machines)
        .args(["--for", for_, "--every", "2s", "--log"])
        .arg(log)
        .spawn()
        .unwrap()
}

fn wait_rounds(log: &Path, n: usize) {
    let start = Instant::now();
    while read_log(log).map(|r| r.len()).unwrap_or(0) < n {
        assert!(start.elapsed() < Duration::from_secs(30), "monitor stalled");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test_log::test]
fn monitor_on_the_lab() {
    let Some(l) = common::Lab::start("clabm") else {
        return;
    };
    let (dir, mf) = (l.dir(), l.machines.clone());

    // Healthy, with a crash in the middle: the restarted monitor resumes the same plan.
    let log: PathBuf = dir.join("healthy.jsonl");
    let mut m = monitor(&mf, &log, "12s");
    wait_rounds(&log, 3);
    m.kill().unwrap(); // SIGKILL: a crash, at most the round in flight is lost
    m.wait().unwrap();
    let mut m = monitor(&mf, &log, "12s");
    assert!(m.wait().unwrap().success());
    let rounds = read_log(&log).unwrap();
    let numbers: Vec<u64> = rounds.iter().map(|r| r.round).collect();
    assert_eq!(
        numbers,
        (0..numbers.len() as u64).collect::<Vec<_>>(),
        "contiguous, no duplicate"
    );
    assert!(rounds.len() >= 6, "{} rounds", rounds.len());
    let v = ac7_stability::run(&log, 12.0);
    assert!(v.passed(), "{v}");

    // The overlay goes down on gcp-vm for a few seconds.
    let log = dir.join("outage.jsonl");
    let mut m = monitor(&mf, &log, "16s");
    wait_rounds(&log, 2);
    let fault_at = now();
    lab::fault(dir, "gcp-vm", lab::Fault::OverlayDown).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // The mesh can come back while heal is still waiting for its own readiness pings, so the
    // outage ends between the start of the heal and one interval after it returned.
    let heal_started = now();
    lab::heal(dir, None).unwrap();
    let healed_at = now();
    assert!(m.wait().unwrap().success());
    let rounds = read_log(&log).unwrap();
    let s = analysis::summarize(&rounds, 16.0);
    let o = s
        .outages
        .iter()
        .find(|o| o.from == "hetzner-vm" && o.to == "gcp-vm")
        .unwrap_or_else(|| panic!("no disconnection:\n{}", analysis::render(&s)));
    eprintln!(
        "outage {:.1}s..{:.1}s, fault at {:.1}s, healed at {:.1}s",
        o.start - s.start,
        o.end - s.start,
        fault_at - s.start,
        healed_at - s.start
    );
    assert!(
        o.start >= fault_at - 0.5 && o.start <= fault_at + EVERY + 1.0,
        "start within one interval of the fault"
    );
    assert!(
        o.end >= heal_started - 0.5 && o.end <= healed_at + EVERY + 1.0,
        "end within one interval of the heal"
    );
    let v = ac7_stability::evaluate(&s);
    let f = v
        .failures()
        .find(|f| f.code == "ac7.disconnection")
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        f.machine == "gcp-vm" || f.to.as_deref() == Some("gcp-vm"),
        "{f}"
    );

    // sshd down on gcp-vm: the monitor keeps going and records it.
    let log = dir.join("sshd.jsonl");
    let mut m = monitor(&mf, &log, "10s");
    wait_rounds(&log, 2);
    lab::fault(dir, "gcp-vm", lab::Fault::SshdDown).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    lab::heal(dir, None).unwrap();
    assert!(m.wait().unwrap().success(), "the monitor must not stop");
    let rounds = read_log(&log).unwrap();
    assert!(rounds.len() >= 5, "{} rounds", rounds.len());
    // The harness's established session survives a dead listener (as on a real machine); new
    // connections to gcp-vm are refused, which the hop records.
    assert!(
        rounds.iter().any(|r| r
            .hops
            .iter()
            .any(|h| h.to == "gcp-vm" && !h.ok && h.detail.contains("ConnectionRefused"))),
        "sshd down on gcp-vm recorded"
    );
    assert!(
        rounds.last().unwrap().clean(),
        "clean again after the heal: {:?}",
        rounds.last().unwrap().errors
    );
    let s = analysis::summarize(&rounds, 10.0);
    assert!(s.gaps.is_empty(), "no gap: {:?}", s.gaps);

    // Every sshd process of gcp-vm killed, as by a reboot: the monitor's own session dies with
    // them; the next round reconnects, says so in the log and the report, and leaves no gap.
    let log = dir.join("cut.jsonl");
    let mut m = monitor(&mf, &log, "8s");
    wait_rounds(&log, 2);
    lab::fault(dir, "gcp-vm", lab::Fault::SessionsCut).unwrap();
    assert!(m.wait().unwrap().success(), "the monitor must not stop");
    let rounds = read_log(&log).unwrap();
    let cut = rounds
        .iter()
        .position(|r| r.reconnects.iter().any(|x| x == "gcp-vm"))
        .unwrap_or_else(|| {
            panic!(
                "no reconnect recorded: {:?}",
                rounds.iter().map(|r| &r.reconnects).collect::<Vec<_>>()
            )
        });
    assert!(
        cut >= 2,
        "the reconnect is in a round after the cut (round {cut})"
    );
    assert!(
        rounds
            .iter()
            .all(|r| r.reconnects.iter().all(|x| x == "gcp-vm")),
        "only gcp-vm reconnected"
    );
    let s = analysis::summarize(&rounds, 8.0);
    assert!(s.gaps.is_empty(), "no gap: {:?}", s.gaps);
    let text = analysis::render(&s);
    assert!(text.contains("reconnected gcp-vm"), "{text}");

    // The overlay daemon killed on gcp-vm: systemd logs the failure and restarts it; the journal
    // scan brings the line into the log and the report.
    let log = dir.join("crash.jsonl");
    let mut m = monitor(&mf, &log, "8s");
    wait_rounds(&log, 2);
    lab::fault(dir, "gcp-vm", lab::Fault::OverlayCrash).unwrap();
    assert!(m.wait().unwrap().success(), "the monitor must not stop");
    let rounds = read_log(&log).unwrap();
    let s = analysis::summarize(&rounds, 8.0);
    assert!(
        s.journal_absent.is_empty(),
        "every lab machine has a journal: {:?}",
        s.journal_absent
    );
    let text = analysis::render(&s);
    assert!(
        text.contains("gcp-vm: journal: ")
            && text.contains("yggdrasil.service: Main process exited, code=killed, status=9/KILL"),
        "{text}"
    );
}
