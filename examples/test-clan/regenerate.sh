#!/usr/bin/env bash
# Regenerates the example clan repo's public vars: real ed25519 host keys, a CA and CA-signed host
# certificates made with ssh-keygen exactly as clan-core's sshd service does
# (ssh-keygen -s <ca> -I <m> -h -n <m>.<domain>, no -V). Private keys are made in a temporary
# directory and thrown away: this repo holds public values only. Re-running changes every key; the
# example clan feeds the oracle, init and config tests and the operator's machines.toml (the story
# fleet's cassette is a lab recording with a clan repo of its own).
set -euo pipefail
cd "$(dirname "$0")"
domain=clan
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ssh-keygen -q -t ed25519 -N '' -C '' -f "$tmp/ca"
mkdir -p vars/shared/openssh-ca/id_ed25519.pub
cp "$tmp/ca.pub" vars/shared/openssh-ca/id_ed25519.pub/value
for m in hetzner-vm gcp-vm; do
  ssh-keygen -q -t ed25519 -N '' -C '' -f "$tmp/$m"
  mkdir -p "vars/per-machine/$m/openssh/ssh.id_ed25519.pub" "vars/per-machine/$m/openssh-cert/ssh.id_ed25519-cert.pub"
  cp "$tmp/$m.pub" "vars/per-machine/$m/openssh/ssh.id_ed25519.pub/value"
  ssh-keygen -q -s "$tmp/ca" -I "$m" -h -n "$m.$domain" "$tmp/$m.pub"
  cp "$tmp/$m-cert.pub" "vars/per-machine/$m/openssh-cert/ssh.id_ed25519-cert.pub/value"
done
