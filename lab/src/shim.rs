//! Lab stand-ins for NixOS-only interfaces, each said openly. The lab has no systemd: its
//! `systemctl` answers `show` and `is-active` for the lab's daemons from their pid files in
//! `/run/lab/units/<unit>.pid` (a unit without a pid file is `not-found`), in systemd's own output
//! format, so the harness reads a lab machine exactly as it reads a NixOS one.

/// The `systemctl` bind-mounted over `/usr/bin/systemctl` inside each lab machine.
pub const SYSTEMCTL: &str = r#"#!/bin/sh
# clan-coord lab stand-in for systemctl (the lab has no systemd). Units are lab daemons tracked
# by pid in /run/lab/units/<unit>.pid; anything else is not-found.
state() {
  f="/run/lab/units/$1.pid"
  mainpid=0
  if [ -f "$f" ]; then
    load=loaded
    if kill -0 "$(cat "$f")" 2>/dev/null; then active=active sub=running result=success code=0 mainpid=$(cat "$f")
    else active=failed sub=failed result=exit-code code=1; fi
  elif [ -f "/run/lab/units/$1.stopped" ]; then
    load=loaded active=inactive sub=dead result=success code=0
  else
    load=not-found active=inactive sub=dead result=success code=0
  fi
}
cmd="$1"; shift
case "$cmd" in
  show)
    props=""; units=""; value=0
    while [ $# -gt 0 ]; do
      case "$1" in
        --value) value=1; shift ;;
        -p) props="$props $(echo "$2" | tr ',' ' ')"; shift 2 ;;
        --property=*) props="$props $(echo "${1#--property=}" | tr ',' ' ')"; shift ;;
        -*) shift ;;
        *) units="$units $1"; shift ;;
      esac
    done
    [ -n "$props" ] || props="LoadState ActiveState SubState Result ExecMainStatus"
    first=1
    for u in $units; do
      [ $first = 1 ] || echo
      first=0
      state "$u"
      for p in $props; do
        case "$p" in
          LoadState) v=$load ;;
          ActiveState) v=$active ;;
          SubState) v=$sub ;;
          Result) v=$result ;;
          ExecMainStatus) v=$code ;;
          MainPID) v=$mainpid ;;
          *) v= ;;
        esac
        if [ $value = 1 ]; then echo "$v"; else echo "$p=$v"; fi
      done
    done ;;
  is-active)
    rc=0
    for u in "$@"; do state "$u"; echo "$active"; [ "$active" = active ] || rc=3; done
    exit $rc ;;
  *) echo "clan-coord lab systemctl: '$cmd' is not supported (lab stand-in: show, is-active)" >&2; exit 1 ;;
esac
"#;

/// Runs inside a new UTS + mount namespace (already in the machine's network namespace): names
/// the machine (`$1`) and binds each following pair (source, target) over the host's path
/// (private `/etc/ssh`, `/root`, `/run`, `/etc/shadow`, `/nix`, the lab `systemctl`: see
/// `binds`), then holds the namespaces open as the machine's anchor process.
pub const ANCHOR: &str = r#"set -e
hostname "$1"
shift
while [ $# -ge 2 ]; do
  mount --bind "$1" "$2"
  shift 2
done
exec sleep infinity
"#;
