#!/usr/bin/env bash
# TLS/SSH audit benchmark, one run, same servers:
#   iotcop scan --checks weak-tls,weak-ssh   vs   testssl.sh (TLS) and ssh-audit (SSH)
# against real servers on loopback addresses: openssl s_server at SECLEVEL=0 (TLS 1.0, NULL and
# anonymous suites, expired certificate), lighttpd+GnuTLS (TLS 1.0, RC4, 3DES, 1024-bit RSA
# certificate signed with SHA-1), a hardened TLS 1.2+ s_server; OpenSSH with legacy algorithms and
# a 1024-bit RSA key, Dropbear defaults, hardened OpenSSH.
# Prints per server each tool's time and the weaknesses it names by category (protocol, suites,
# cert; kex, host_key, cipher, mac), what each names that the other does not, and totals with the
# time ratio. Needs root (sshd, dropbear); installs testssl.sh, ssh-audit and the daemons with
# apt-get. Loopback only; every daemon is stopped on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: sshd and dropbear need it" >&2; exit 2; }
for bp in testssl=testssl.sh ssh-audit=ssh-audit openssl=openssl; do
  command -v "${bp%%=*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${bp#*=}" >/dev/null
done
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
go build -o "$tmp/iotcop" ./cmd/iotcop
go build -o "$tmp/cryptobench" ./bench/cryptobench
# cryptobench stops its daemons itself on exit and on SIGINT/SIGTERM/SIGHUP.
"$tmp/cryptobench" -iotcop "$tmp/iotcop" "$@" &
pid=$!
wait "$pid"
rc=$?
pid=
exit "$rc"
