#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 45) one after another, niced, each from its
# seeded corpus (run seed.sh first), and prints one table row per target: libFuzzer's run
# count, seconds, and the result (a crash leaves its input in fuzz/artifacts/<target>/).
# Usage: fuzz/run-all.sh [SECS] [TARGET...]     Logs: fuzz/artifacts/<target>.log
set -uo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
cd "$(dirname "$fuzz")"
secs=${1:-45}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
mkdir -p "$fuzz/artifacts"
echo "| target | executions | seconds | findings |"
echo "| --- | ---: | ---: | --- |"
for t in "${targets[@]}"; do
  log="$fuzz/artifacts/$t.log"
  nice -n 19 cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1)
  if [ $rc -eq 0 ]; then
    result=none
  else
    result="rc $rc: $(grep -m1 -o 'ERROR: libFuzzer: [a-z-]*\|panicked at [^,]*' "$log" || echo 'see log'); $(grep -o 'artifact_prefix.*Test unit written to [^ ]*' "$log" | sed 's/.*written to //')"
  fi
  echo "| $t | ${runs:-?} | ${took:-?} | $result |"
done
