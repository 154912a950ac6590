#!/usr/bin/env bash
# Credential benchmark, one run, same targets, same list:
#   iotcop scan --creds LIST --aggressive   vs   hydra -t TASKS -C LIST (one process per target)
# against real daemons on loopback addresses, each with one valid pair: busybox telnetd,
# dropbear, vsftpd (local account), busybox httpd (Basic), plus a hostile telnet server that
# answers every password with "# ". The list (PAIRS long, default 40) holds the valid pair last.
# Prints wall times, the ratio to iotcop's, and found/missed/false per target.
# Needs root (chroot, private mount namespaces); installs hydra and the daemons with apt-get.
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the daemons need chroot and private mount namespaces" >&2; exit 2; }
if ! command -v hydra >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hydra >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/iotcop" ./cmd/iotcop
go build -o "$tmp/compare" ./bench/compare
go build -o "$tmp/credsbench" ./bench/credsbench
"$tmp/credsbench" -iotcop "$tmp/iotcop" -compare "$tmp/compare" -tasks "${TASKS:-4}" -pairs "${PAIRS:-40}"
