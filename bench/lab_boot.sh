#!/usr/bin/env bash
# The lab on systemd (BENCHMARKS.md, "Lab on systemd"), root only: `lab up` and `lab down` at
# each machine count in COUNTS (default "2 8 16"), REPS times each (default 3), and the memory
# the machines use (PSS and RSS of every process below each machine's nspawn, from smaps_rollup).
# The root file system must be cached already (run `clan-coord lab up` once): its one-time build
# is not what is measured. BENCH_BIN=<clan-coord> skips the build. OVERLAY=zerotier measures the
# ZeroTier lab (default yggdrasil: the table "Lab on systemd" is the machines' own cost).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
counts=${COUNTS-2 8 16}
overlay=${OVERLAY:-yggdrasil}
target=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${BENCH_BIN:-}" ]; then bin=$BENCH_BIN; else cargo build -q --release; bin=$target/release/clan-coord; fi
dir=$(mktemp -d)
trap '"$bin" lab down --dir "$dir" --prefix clabb >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
printf 'machines\trep\tup_s\tdown_s\tpss_mb_per_machine\trss_mb_per_machine\n'
for n in $counts; do
  for r in $(seq 1 "$reps"); do
    t0=$(date +%s.%N)
    "$bin" lab up --machines "$n" --overlay "$overlay" --dir "$dir" --prefix clabb >/dev/null 2>"$dir.err" || { cat "$dir.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    mem=$(python3 - "$dir/lab.json" "$n" <<'PY'
import json, os, sys
pids = [p for k, p in json.load(open(sys.argv[1]))["pids"].items() if k.endswith("/machine")]
kids = {}
for d in filter(str.isdigit, os.listdir("/proc")):
    try:
        kids.setdefault(int(open(f"/proc/{d}/stat").read().rsplit(") ", 1)[1].split()[1]), []).append(int(d))
    except OSError:
        pass
pss = rss = 0
todo = list(pids)
while todo:
    p = todo.pop()
    todo.extend(kids.get(p, []))
    try:
        for line in open(f"/proc/{p}/smaps_rollup"):
            if line.startswith("Pss:"): pss += int(line.split()[1])
            if line.startswith("Rss:"): rss += int(line.split()[1])
    except OSError:
        pass
n = int(sys.argv[2])
print(f"{pss / 1024 / n:.1f}\t{rss / 1024 / n:.1f}")
PY
)
    t2=$(date +%s.%N)
    "$bin" lab down --dir "$dir" --prefix clabb >/dev/null 2>&1
    t3=$(date +%s.%N)
    printf '%s\t%s\t%.2f\t%.2f\t%s\n' "$n" "$r" "$(echo "$t1 - $t0" | bc)" "$(echo "$t3 - $t2" | bc)" "$mem"
  done
done
rm -f "$dir.err"
