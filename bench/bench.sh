#!/usr/bin/env bash
# Benchmark (BENCHMARKS.md), root only (it brings up labs).
#
# Comparison, on the ZeroTier lab with COMPARE machines (default "2 8"), same machine, same run,
# REPS repetitions: (a) the harness's AC1-AC3 run, (b) the same probes as a plain script, one ssh
# per command in sequence, (c) that script with OpenSSH ControlMaster, (d) the same AC1-AC3 checks
# written as a pytest-testinfra user writes them (bench/testinfra), run serial and (e) with
# pytest-xdist `-n auto`. Medians, ratios, peak memory. testinfra and xdist are installed once into
# a venv outside the checkout (BENCH_VENV, default /var/cache/clan-coord-bench/venv; PyPI).
#
# Scale, on SCALE machines (default "2 4 8 16"): the harness's full run and its AC1-only run
# (`check --only ac1`: every ordered pair's pings, no SSH hops), with the CPU the whole host spent
# during the full run. On one host the lab's machines share its cores, so that CPU over the core
# count is a floor no harness can beat; the table sets the wall time against it.
#
# Usage: [COMPARE="2 8"] [SCALE="2 4 8 16"] bench/bench.sh [REPS]   (an empty set is skipped)
# BENCH_BIN=<clan-coord> skips the build and uses that binary; BENCH_OUT=<dir> puts the results
# there (default <target>/bench); lab directories are made under TMPDIR (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
counts=${COMPARE-2 8}
scale=${SCALE-2 4 8 16}
target=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN
else
  cargo build -q --release --features live
  bin=$target/release/clan-coord
fi
out=${BENCH_OUT:-$target/bench}; mkdir -p "$out"
results="$out/results.tsv"; : > "$results"
cores=$(nproc)
venv=${BENCH_VENV:-/var/cache/clan-coord-bench/venv}
if [ -n "$counts" ] && [ ! -x "$venv/bin/pytest" ]; then
  echo "installing pytest-testinfra and pytest-xdist into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'pytest-testinfra==10.2.2' 'pytest-xdist==3.8.0'
fi
# Every lab directory holds private test keys: each is taken down and removed however the run
# ends (finished, failed, interrupted).
lab_dirs=()
cleanup() {
  local d
  for d in ${lab_dirs[@]+"${lab_dirs[@]}"}; do
    "$bin" lab down --dir "$d" >/dev/null 2>&1 || true
    rm -rf -- "$d"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)

# measure N KIND...: brings up an N-machine lab, runs each KIND REPS times, appends to results.
measure() {
  local n=$1; shift
  local dir; dir=$(mktemp -d "${TMPDIR:-/tmp}/clan-coord-bench.XXXXXX")
  lab_dirs+=("$dir")
  "$bin" lab up --machines "$n" --dir "$dir" --prefix clabb >/dev/null
  echo "@cert-authority * $(cut -d' ' -f1,2 "$dir/ca/ca.pub")" > "$dir/bench_known_hosts"
  # The AC1-AC3 run's probes (the plan of every criterion would add AC5/AC6's workstation
  # rebuilds, which the baselines cannot run over ssh).
  "$bin" plan --machines "$dir/machines.toml" --json --only ac1 --only ac2 --only ac3 > "$out/plan-$n.json"
  # testinfra's view of the fleet: an ssh config (the lab CA, each host's alias) and the vars.
  local pytest=()
  case " $* " in *" testinfra "*)
    python3 bench/testinfra/fleet.py "$dir"
    local hosts; hosts=$(python3 -c "import json; print(','.join('ssh://'+m['name'] for m in json.load(open('$dir/lab.json'))['machines']))")
    pytest=(env FLEET_JSON="$dir/fleet.json" ip netns exec clabb-ws "$venv/bin/pytest" -q -p no:cacheprovider
            --rootdir bench/testinfra --ssh-config="$dir/ssh_config" --hosts="$hosts" bench/testinfra) ;;
  esac
  python3 bench/scripts.py "$out/plan-$n.json" "$dir" "$out" >/dev/null
  local cmds; cmds=$(python3 -c "import json,sys; print(sum(len(v) for v in json.load(open('$out/plan-$n.json')).values()))")
  for r in $(seq "$reps"); do
    for kind in "$@"; do
      case $kind in
        harness) cmd=("$bin" check --machines "$dir/machines.toml" --only ac1 --only ac2 --only ac3) ;;
        harness-full) cmd=("$bin" check --machines "$dir/machines.toml") ;;
        harness-ac1) cmd=("$bin" check --machines "$dir/machines.toml" --only ac1) ;;
        testinfra) cmd=("${pytest[@]}") ;;
        testinfra-xdist) cmd=("${pytest[@]}" -n auto) ;;
        *) cmd=(ip netns exec clabb-ws sh "$out/$kind.sh") ;;
      esac
      local before; before=$(cpu_ticks)
      /usr/bin/time -f "%e %M" -o "$out/time" "${cmd[@]}" >"$out/last-$kind-$n.txt" 2>&1 \
        || { echo "$kind failed at $n machines (output: $out/last-$kind-$n.txt)" >&2; exit 1; }
      local cpu; cpu=$(python3 -c "print(($(cpu_ticks) - $before) / $hz)")
      read -r secs kb < "$out/time"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$kind" "$r" "$secs" "$kb" "$cpu" >> "$results"
      echo "n=$n rep=$r $kind: ${secs}s ${kb}KB host CPU ${cpu}s ($cmds probe commands)"
    done
  done
  "$bin" lab down --dir "$dir" >/dev/null
  rm -rf -- "$dir"
}

for n in $counts; do measure "$n" harness plain controlmaster testinfra testinfra-xdist; done
for n in $scale; do measure "$n" harness-full harness-ac1; done

python3 - "$results" "$cores" "$counts" "$scale" <<'PY'
import sys, statistics as st, collections
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
cores = int(sys.argv[2]); counts = [int(x) for x in sys.argv[3].split()]; scale = [int(x) for x in sys.argv[4].split()]
t, m, c = (collections.defaultdict(list) for _ in range(3))
for n, k, r, s, kb, cpu in rows:
    t[(int(n), k)].append(float(s)); m[(int(n), k)].append(int(kb)); c[(int(n), k)].append(float(cpu))
med = lambda d, n, k: st.median(d[(n, k)])
if counts:
    print("| machines | (a) harness | (b) ssh per command | (c) ControlMaster | (d) testinfra | (e) testinfra -n auto | b/a | c/a | d/a | e/a | harness peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
for n in counts:
    a, b, cm, ti, tx = (med(t, n, k) for k in ("harness", "plain", "controlmaster", "testinfra", "testinfra-xdist"))
    print(f"| {n} | {a:.2f} s | {b:.2f} s | {cm:.2f} s | {ti:.2f} s | {tx:.2f} s | {b/a:.1f}x | {cm/a:.1f}x | {ti/a:.1f}x | {tx/a:.1f}x | {max(m[(n,'harness')])/1024:.1f} MB |")
if scale:
    print(f"\n| machines | ordered pairs | AC1 only | AC1-AC4 | host CPU in AC1-AC4 | CPU floor ({cores} cores) | AC1-AC4 / floor | harness peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
for n in scale:
    full, ac1, cpu = med(t, n, "harness-full"), med(t, n, "harness-ac1"), med(c, n, "harness-full")
    rss = max(m[(n, "harness-full")] + m[(n, "harness-ac1")]) / 1024
    ratio = f"{full/(cpu/cores):.2f}" if cpu > 0 else "-"  # no CPU ticks counted: no floor
    print(f"| {n} | {n*(n-1)} | {ac1:.2f} s | {full:.2f} s | {cpu:.1f} s | {cpu/cores:.2f} s | {ratio} | {rss:.1f} MB |")
PY
