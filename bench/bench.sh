#!/usr/bin/env bash
# Benchmark (BENCHMARKS.md): on the lab with 2 and 8 machines, time (a) the harness's AC1-AC4 run,
# (b) the same probes as a plain script, one ssh per command in sequence, (c) that script with
# OpenSSH ControlMaster. Same machine, same run, REPS repetitions; medians, ratios, peak memory.
# Root only (the lab). Usage: bench/bench.sh [REPS] [MACHINE COUNTS...]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}; shift || true
counts=${*:-2 8}
cargo build -q --release --features live
bin=$PWD/target/release/clan-coord
out=$PWD/target/bench; mkdir -p "$out"
results="$out/results.tsv"; : > "$results"
for n in $counts; do
  dir=$(mktemp -d /tmp/clan-coord-bench.XXXXXX)
  trap '"$bin" lab down --dir "$dir" >/dev/null 2>&1 || true' EXIT
  "$bin" lab up --machines "$n" --dir "$dir" --prefix clabb >/dev/null
  echo "@cert-authority * $(cut -d' ' -f1,2 "$dir/ca/ca.pub")" > "$dir/bench_known_hosts"
  "$bin" plan --machines "$dir/machines.toml" --json > "$out/plan-$n.json"
  python3 bench/scripts.py "$out/plan-$n.json" "$dir" "$out" >/dev/null
  cmds=$(python3 -c "import json,sys; print(sum(len(v) for v in json.load(open('$out/plan-$n.json')).values()))")
  for r in $(seq "$reps"); do
    for kind in harness plain controlmaster; do
      case $kind in
        harness) cmd=("$bin" check --machines "$dir/machines.toml") ;;
        *) cmd=(ip netns exec clabb-ws sh "$out/$kind.sh") ;;
      esac
      /usr/bin/time -f "%e %M" -o "$out/time" "${cmd[@]}" >/dev/null 2>&1 || { echo "$kind failed at $n machines" >&2; exit 1; }
      read -r secs kb < "$out/time"
      printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$kind" "$r" "$secs" "$kb" >> "$results"
      echo "n=$n rep=$r $kind: ${secs}s ${kb}KB ($cmds probe commands)"
    done
  done
  "$bin" lab down --dir "$dir" >/dev/null
done
python3 - "$results" <<'PY'
import sys, statistics as st, collections
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
t = collections.defaultdict(list); m = collections.defaultdict(list)
for n, k, r, s, kb in rows:
    t[(int(n), k)].append(float(s)); m[(int(n), k)].append(int(kb))
print("| machines | (a) harness | (b) ssh per command | (c) ControlMaster | b/a | c/a | harness peak RSS |")
print("|---|---|---|---|---|---|---|")
for n in sorted({k[0] for k in t}):
    a, b, c = (st.median(t[(n, k)]) for k in ("harness", "plain", "controlmaster"))
    print(f"| {n} | {a:.2f} s | {b:.2f} s | {c:.2f} s | {b/a:.1f}x | {c/a:.1f}x | {max(m[(n,'harness')])/1024:.1f} MB |")
PY
