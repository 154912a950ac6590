#!/usr/bin/env bash
# Installs what the tests need (real daemons and firmware tools from Debian)
# and runs every test. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # real servers the protocol, scan and check tests start on 127.x.y.z
  busybox-static dropbear-bin openssh-server vsftpd mosquitto mosquitto-clients
  lighttpd lighttpd-mod-gnutls libcoap3-bin snmpd snmp openssl
  # reference tools the crypto checks are compared with
  ssh-audit sslscan
  # discovery responders, run inside test network namespaces
  miniupnpd-nftables avahi-daemon iproute2 util-linux
  # firmware images are built with the real tools
  squashfs-tools u-boot-tools cpio mtd-utils xz-utils zstd lz4 lzop bzip2 gzip
  # the HTML report is opened in a real browser
  chromium
  # the fleet service's storage tests run against a real server (internal/pgtest)
  postgresql
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "not root: tests needing ${missing[*]} will skip (run as root to install them)" >&2
  fi
fi

# Debian starts some of these daemons on install; the tests start their own
# on 127.x.y.z addresses, so the system copies are not needed.
if [ "$(id -u)" = 0 ]; then
  for s in mosquitto snmpd lighttpd vsftpd ssh avahi-daemon miniupnpd postgresql; do
    (service "$s" stop || true) >/dev/null 2>&1
  done
fi

go vet ./...
go test -count=1 -timeout 9m ./... "$@"
