#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the repo's own real outputs: tests/fixtures (each without its
# `# source:` lines), the commands recorded in tests/cassettes (stdout, with stderr and exit
# where the target reads them), cassettes, monitor logs, machines.toml files and inventories.
# Idempotent; the corpus is not committed (fuzz/.gitignore). Needs jq.
# Usage: fuzz/seed.sh            (from anywhere)
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz")
corpus="$fuzz/corpus"
fx="$repo/tests/fixtures"

# put TARGET NAME < content
put() {
  mkdir -p "$corpus/$1"
  cat >"$corpus/$1/$2"
}
# A fixture's command output: the file without its leading `# source:` lines.
body() { awk 'skip && /^# source:/ {next} {skip=0; print}' skip=1 "$1"; }
# fixture TARGET FILE...: each fixture's output as a seed.
fixture() {
  local t=$1
  shift
  for f in "$@"; do
    [ -f "$f" ] && body "$f" | put "$t" "fixture-$(basename "$f")"
  done
}
# `stdout\0exit` (and `stdout\0stderr\0exit`) seeds from fixtures, exit given.
fixture_exit() {
  local t=$1 x=$2
  shift 2
  for f in "$@"; do
    [ -f "$f" ] || continue # a directory among the fixtures (ssh/capture) is not one
    { body "$f"; printf '\0%s' "$x"; } | put "$t" "fixture-$(basename "$f")"
  done
}

fixture zerotier_info "$fx"/zerotier/info-* "$fx"/zerotier/error-* "$fx"/zerotier/join-ok.txt
fixture zerotier_listnetworks "$fx"/zerotier/listnetworks-*
fixture zerotier_peers "$fx"/zerotier/*peers*
fixture zerotier_members "$fx"/zerotier/zerotier-members-*
fixture zerotier_member_files "$fx"/zerotier/controller-member-files-*
fixture yggdrasil "$fx"/yggdrasil/*
fixture ping "$fx"/ping/*
fixture_exit ssh_hop 255 "$fx"/ssh/*
fixture ssh_keygen "$fx"/ssh/ssh-keygen-L-*
fixture_exit systemd 0 "$fx"/systemd/*
fixture nixos "$fx"/nixos/*
fixture clan "$fx"/clan/*
for f in "$fx"/hostile/*.toml "$repo"/machines.toml $(find "$repo/tests" -name 'machines.toml'); do
  put config "$(echo "${f#"$repo"/}" | tr / _)" <"$f"
done

# Recorded commands: TARGET REGEX FORMAT, FORMAT one of out, out-exit, out-err-exit.
cassettes=$(find "$repo/tests/cassettes" -name '*.json' -not -path '*/clan/*' -not -name 'inventory.json')
recorded() {
  local t=$1 re=$2 form=$3 i=0
  local filter
  case $form in
    out) filter='.stdout' ;;
    out-exit) filter='.stdout + "\u0001" + (.exit // "-" | tostring)' ;;
    out-err-exit) filter='.stdout + "\u0001" + .stderr + "\u0001" + (.exit // "-" | tostring)' ;;
  esac
  for c in $cassettes; do
    while IFS= read -r -d '' s; do
      i=$((i + 1))
      # Fields come separated by \001 (bash strings cannot hold NUL), records by NUL.
      printf '%s' "$s" | tr '\001' '\000' | put "$t" "cassette-$(printf '%s' "${c#"$repo/tests/cassettes/"}" | tr / - | sed 's/\.json$//')-$i"
    done < <(jq -j --arg re "$re" \
      "[.machines[]?[]?, .workstation[]?] | .[] | select(.command | test(\$re)) | ($filter) + \"\u0000\"" "$c")
  done
}
recorded zerotier_info 'zerotier-cli (-j )?info' out
recorded zerotier_listnetworks 'zerotier-cli (-j )?listnetworks' out
recorded zerotier_peers 'zerotier-cli (-j )?(list)?peers' out
recorded zerotier_members 'zerotier-members|/controller/network' out
recorded zerotier_member_files 'controller.d/network' out
recorded yggdrasil 'yggdrasilctl' out
recorded ping '^ping ' out
recorded ssh_hop '^ssh -v' out-err-exit
recorded ssh_keygen '^(sshd -T|ssh-keygen -L)' out
recorded known_hosts 'known_hosts' out
recorded systemd '^systemctl ' out-exit
recorded nixos 'readlink|list-generations|nixos-version|/run/current-system|profile' out
recorded hashes 'shadow|sha256sum' out-err-exit
recorded clan '^clan ' out

# The known_hosts target reads `known_hosts\0name`: give the recorded files a name to match.
for f in "$corpus"/known_hosts/cassette-*; do
  [ -f "$f" ] && printf '\0gcp-vm.clan' >>"$f"
done

# Named by their path under tests/cassettes: story-fleet/cassette.json and lab/cassette.json differ.
for c in $cassettes; do put cassette "$(printf '%s' "${c#"$repo/tests/cassettes/"}" | tr / -)" <"$c"; done
for f in "$repo"/tests/monitor/*.jsonl; do put monitor_log "$(basename "$f")" <"$f"; done
for f in $(find "$repo/tests" -name 'inventory*.json'); do
  put inventory "$(echo "${f#"$repo"/}" | tr / _)" <"$f"
done
for d in 24h 30d 1s 1.5h 5m 1d 0.5s 99999999999999999999999d; do
  printf '%s' "$d" | put duration "$d"
done
# The batch reply: byte 0 picks the raw mode and n = 1 (2) or 2 (4), then a reply as sh prints it.
printf '\002@@ 0\n3 /tmp/d/0.o\n0 /tmp/d/0.e\n3 total\nabc' | put batch_reply sh-one
printf '\004@@ 0 -\n      3 /tmp/d/0.o\n      0 /tmp/d/0.e\n      0 /tmp/d/1.o\n      4 /tmp/d/1.e\n      7 total\nabcerr\n' |
  put batch_reply gnu-two
echo "$(find "$corpus" -type f | wc -l) seeds in $(ls "$corpus" | wc -l) targets under $corpus"
