#!/usr/bin/env bash
# Firmware benchmark: full iotcop analysis vs binwalk's extraction alone.
# For each SIZE in $SIZES (MB of image, default "10 30 60") it builds a
# vendor-style image from real binaries of this machine: a uImage holding
# an LZMA-compressed "kernel", 0xff padding, then an xz SquashFS root with
# planted flaws (a shadow entry with a Mirai password, a telnetd start, a
# private key). Then it times, on the same file:
#   iotcop firmware (full analysis; bench/firmwarebench when the
#                    CLI does not build)   vs   binwalk -Me (extraction only)
# and prints wall time (median of RUNS runs), peak memory, the ratio and
# what each found.
# Needs squashfs-tools, u-boot-tools, xz-utils, binwalk (apt-get as root).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10 30 60"}

need() { # binary package
  command -v "$1" >/dev/null && return
  [ "$(id -u)" = 0 ] || { echo "$1 missing: apt-get install $2 (as root)" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need mksquashfs squashfs-tools
need mkimage u-boot-tools
need xz xz-utils
need binwalk binwalk
need openssl openssl
[ -x /usr/bin/time ] || need time time

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The binary is built from this tree, so the numbers are those of the
# source (IOTCOP_BIN=path measures a given build instead).
if [ -n "${IOTCOP_BIN:-}" ]; then
  IOTCOP=("$IOTCOP_BIN" firmware)
elif go build -o "$tmp/iotcop" ./cmd/iotcop 2>/dev/null && "$tmp/iotcop" firmware --help >/dev/null 2>&1; then
  IOTCOP=("$tmp/iotcop" firmware)
else
  go build -o "$tmp/firmwarebench" ./bench/firmwarebench
  IOTCOP=("$tmp/firmwarebench")
fi

# build_image SIZE_MB OUT: fill a rootfs with real binaries until the xz
# squashfs reaches about SIZE_MB (binaries compress about 3.5:1). Files
# over 4 MB are left out: device binaries are small.
build_image() {
  local mb=$1 out=$2 root="$tmp/root-$1"
  rm -rf "$root"; mkdir -p "$root/etc/init.d" "$root/etc/ssl/private" "$root/bin" "$root/lib"
  local want=$((mb * 1024 * 1024 * 7 / 2)) have=0 f
  while IFS= read -r f; do
    [ "$have" -ge "$want" ] && break
    local dst="$root/lib/${f#/usr/}"
    mkdir -p "$(dirname "$dst")"
    cp -p "$f" "$dst" 2>/dev/null || continue
    have=$((have + $(stat -c %s "$f")))
  done < <(find /usr/bin /usr/sbin /usr/lib/x86_64-linux-gnu /usr/libexec /usr/lib/go*/pkg -type f -size +8k -size -4M 2>/dev/null | sort)
  ln -s ../lib/bin/busybox "$root/bin/sh" 2>/dev/null || true
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:%s:19000:0:99999:7:::\n' "$(openssl passwd -1 -salt benchslt xc3511)" >"$root/etc/shadow"
  printf '#!/bin/sh\n/usr/sbin/telnetd -l /bin/sh &\n' >"$root/etc/init.d/rcS"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$root/etc/ssl/private/server.key" 2>/dev/null
  mksquashfs "$root" "$tmp/root.sqfs" -comp xz -noappend -all-root -no-progress -quiet >/dev/null
  head -c 3000000 /usr/bin/perl | xz --format=lzma -c >"$tmp/kernel.lzma"
  mkimage -A mips -O linux -T kernel -C lzma -a 0x80000000 -e 0x80000000 -n "Linux-5.10.176" \
    -d "$tmp/kernel.lzma" "$tmp/uImage" >/dev/null
  cp "$tmp/uImage" "$out"
  local pad=$(( (0x200000 - $(stat -c %s "$out") % 0x200000) % 0x200000 ))
  head -c "$pad" /dev/zero | tr '\0' '\377' >>"$out"
  cat "$tmp/root.sqfs" >>"$out"
  rm -rf "$root"
}

# measure OUTFILE CMD...: runs CMD, prints "seconds peak_kb". Exit 1 is
# success too: iotcop exits 1 when it reports findings.
measure() {
  local out=$1; shift
  local rc=0
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" -gt 1 ]; then echo "command failed ($rc): $*" >&2; cat "$out" >&2; return 1; fi
  tail -1 "$tmp/time"
}

# median VALUES...: the middle value (of an odd count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
# maxof VALUES...: the largest.
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }

# Each tool runs RUNS times (default 3), alternating, on the same file; the
# median time is reported, so a burst of other work on this shared
# machine does not decide the ratio. Peak memory is the largest seen.
RUNS=${RUNS:-3}
echo "iotcop: ${IOTCOP[*]##*/}   binwalk: $(binwalk --help 2>&1 | grep -m1 -o "Binwalk v[0-9.]*")   cores: $(nproc)   load: $(cut -d' ' -f1 /proc/loadavg)   runs: $RUNS (median time)"
printf '%-6s %-9s %-20s %-20s %-7s %s\n' "image" "MB" "iotcop s / peak MB" "binwalk s / peak MB" "ratio" "notes"
for mb in $SIZES; do
  img="$tmp/fw-$mb.bin"
  build_image "$mb" "$img"
  size=$(awk -v b="$(stat -c %s "$img")" 'BEGIN{printf "%.1f", b/1048576}')
  its=() ims=() bts=() bms=()
  for _ in $(seq "$RUNS"); do
    read -r t m < <(measure "$tmp/iotcop.out" "${IOTCOP[@]}" "$img")
    its+=("$t") ims+=("$m")
    rm -rf "$tmp/bw"; mkdir -p "$tmp/bw"
    read -r t m < <(cd "$tmp/bw" && measure "$tmp/binwalk.out" binwalk -Me -q --run-as=root -C "$tmp/bw" "$img")
    bts+=("$t") bms+=("$m")
  done
  it=$(median "${its[@]}") im=$(maxof "${ims[@]}") bt=$(median "${bts[@]}") bm=$(maxof "${bms[@]}")
  ratio=$(awk -v a="$it" -v b="$bt" 'BEGIN{ if (a > 0) printf "%.1fx", b/a; else print "n/a" }')
  printf '%-6s %-9s %-20s %-20s %-7s %s\n' "fw-$mb" "$size" "$it / $((im / 1024))" "$bt / $((bm / 1024))" "$ratio" "(binwalk time / iotcop time)"
  echo "  runs: iotcop ${its[*]} s; binwalk ${bts[*]} s"
  echo "  iotcop found:  $(tail -1 "$tmp/iotcop.out")"
  bwfiles=$(find "$tmp/bw" -type f | wc -l)
  echo "  binwalk found: extracted $bwfiles files (extraction only, no analysis)"
done
