#!/usr/bin/env bash
# Sweep and identification benchmark, one run, same targets:
#   iotcop scan --no-checks   vs   nmap -sT -n -Pn -T4 (sweep)   vs   nmap -sT -sV (identification)
# against DEVICES (default 250) virtual lab devices on 127.88.x.y over the IoT TCP port set.
# Prints wall times, ratios, and how many services each tool named as the lab really runs them.
# Loopback only. Needs nmap (installed with apt-get when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-250}
BASE=127.88.0.1
PORTS=21,22,23,80,81,443,554,1883,2323,5000,5555,7547,8000,8080,8081,8443,8883,9000,37777,49152

if ! command -v nmap >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "nmap missing; run as root to install it" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nmap >/dev/null
fi
tmp=$(mktemp -d)
trap 'kill $labpid 2>/dev/null; wait $labpid 2>/dev/null; rm -rf "$tmp"' EXIT

go build -o "$tmp/iotcop" ./cmd/iotcop
go build -o "$tmp/compare" ./bench/compare
"$tmp/iotcop" lab --devices "$DEVICES" --base "$BASE" --manifest "$tmp/lab.json" >"$tmp/lab.log" 2>&1 &
labpid=$!
for _ in $(seq 100); do [ -s "$tmp/lab.json" ] && break; sleep 0.2; done
[ -s "$tmp/lab.json" ] || { cat "$tmp/lab.log"; exit 1; }
grep -o '"Address": "[0-9.]*"' "$tmp/lab.json" | cut -d'"' -f4 | sort -u >"$tmp/targets"
ntargets=$(wc -l <"$tmp/targets")

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

t0=$(now)
"$tmp/iotcop" scan -q --no-checks -p "T:$PORTS" --per-host 8 --hosts 256 --format json -o "$tmp/iotcop.json" -iL "$tmp/targets" --fail-on none
t1=$(now)
nmap -sT -n -Pn -T4 -p "$PORTS" -iL "$tmp/targets" -oX "$tmp/nmap-st.xml" >/dev/null
t2=$(now)
nmap -sT -sV -n -Pn -T4 -p "$PORTS" -iL "$tmp/targets" -oX "$tmp/nmap-sv.xml" >/dev/null
t3=$(now)

it=$(elapsed "$t0" "$t1"); st=$(elapsed "$t1" "$t2"); sv=$(elapsed "$t2" "$t3")
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); nmap $(nmap --version | awk 'NR==1{print $3}')"
echo "targets: $ntargets lab devices x $(tr ',' '\n' <<<"$PORTS" | wc -l) TCP ports"
echo
printf "%-34s %8ss\n" "iotcop scan --no-checks (sweep+id)" "$it" "nmap -sT -T4 (sweep only)" "$st" "nmap -sT -sV -T4 (sweep+id)" "$sv"
echo
awk -v i="$it" -v s="$st" -v v="$sv" 'BEGIN{
  printf "ratio nmap -sT / iotcop:      %.2fx (>1 means iotcop, with identification, is faster than nmap sweeping alone)\n", s/i;
  printf "ratio nmap -sT -sV / iotcop:  %.2fx\n", v/i }'
echo
"$tmp/compare" scan -manifest "$tmp/lab.json" -iotcop "$tmp/iotcop.json" -nmap "nmap -sT=$tmp/nmap-st.xml" -nmap "nmap -sT -sV=$tmp/nmap-sv.xml"
