package lab

import (
	"crypto/rand"
	"fmt"
	"hash/fnv"
	"strings"
)

// device is the identity a virtual device shows across its services: the
// same hostname, serial number, MAC address, CPU and kernel everywhere.
type device struct {
	name, kind              string
	vendor, model, firmware string
	addr                    string
	hostname, serial, mac   string
	uuid                    string
	arch, kernel, cpuinfo   string
	busybox                 string
}

// personality holds what differs between kinds.
type personality struct {
	arch, kernel, cpu, busybox string
	vendor, model, firmware    string
}

var personalities = map[string]personality{
	"camera":   {"armv7l", "3.10.0", "ARMv7 Processor rev 5 (v7l)", "BusyBox v1.20.2 (2017-08-10 11:09:39 CST)", "Vistacam", "IPC-2130", "V4.02.R11"},
	"hub":      {"armv7l", "4.9.118", "ARMv7 Processor rev 4 (v7l)", "BusyBox v1.31.1 (2020-05-14 09:12:51 UTC)", "Hearthly", "HomeHub H1", "2.3.7"},
	"plug":     {"mips", "3.3.8", "MediaTek MT7688 ver:1 eco:2", "BusyBox v1.22.1 (2018-03-06 16:21:13 CST)", "Voltra", "SP-10", "1.0.9"},
	"router":   {"mips", "2.6.36", "MIPS 24Kc V7.4", "BusyBox v1.19.4 (2018-03-06 10:49:57 CST)", "Netlyn", "WR-840", "3.16.9"},
	"tv":       {"aarch64", "4.9.113", "AArch64 Processor rev 4 (aarch64)", "toybox 0.7.6-android", "Streambox", "SB-4K", "9.0.0"},
	"nvr":      {"armv7l", "3.18.20", "ARMv7 Processor rev 1 (v7l)", "BusyBox v1.16.1 (2019-01-22 18:02:11 CST)", "Sentrix", "NVR-808", "V3.4.92"},
	"hardened": {"aarch64", "6.1.55", "AArch64 Processor rev 4 (aarch64)", "BusyBox v1.36.1 (2024-02-01 08:00:00 UTC)", "Ironclad", "SecureCam S1", "5.4.2"},
}

// newDevice derives a device's identity from its spec and address; the
// same spec and address always give the same serial and MAC.
func newDevice(spec DeviceSpec, addr string) *device {
	p, ok := personalities[spec.Kind]
	if !ok {
		p = personalities["camera"]
	}
	d := &device{name: spec.Name, kind: spec.Kind, vendor: spec.Vendor, model: spec.Model,
		firmware: spec.Firmware, addr: addr, arch: p.arch, kernel: p.kernel, busybox: p.busybox}
	if d.vendor == "" {
		d.vendor = p.vendor
	}
	if d.model == "" {
		d.model = p.model
	}
	if d.firmware == "" {
		d.firmware = p.firmware
	}
	h := fnv.New64a()
	h.Write([]byte(spec.Name + "|" + addr))
	sum := h.Sum64()
	d.serial = fmt.Sprintf("%s%010d", strings.ToUpper(firstLetters(d.vendor, 2)), sum%10_000_000_000)
	d.mac = fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(sum>>8), byte(sum>>16), byte(sum>>24), byte(sum>>32), byte(sum>>40))
	d.uuid = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", uint32(sum), uint16(sum>>32), 0x4000|uint16(sum>>48)&0x0fff,
		0x8000|uint16(sum>>20)&0x3fff, sum&0xffffffffffff)
	d.hostname = strings.ToLower(strings.NewReplacer(" ", "", "_", "-").Replace(firstLetters(d.vendor, 8) + "-" + d.kind))
	d.cpuinfo = cpuinfo(p)
	return d
}

func firstLetters(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "dev"
	}
	return b.String()
}

func cpuinfo(p personality) string {
	switch p.arch {
	case "mips":
		return "system type\t\t: " + p.cpu + "\nmachine\t\t\t: " + p.model + "\nprocessor\t\t: 0\ncpu model\t\t: MIPS 24KEc V5.5\nBogoMIPS\t\t: 385.84\nwait instruction\t: yes\nmicrosecond timers\t: yes\ntlb_entries\t\t: 32\nisa\t\t\t: mips1 mips2 mips32r1 mips32r2\nASEs implemented\t: mips16 dsp\n"
	case "aarch64":
		return "processor\t: 0\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd03\nCPU revision\t: 4\n\nHardware\t: " + p.model + "\n"
	}
	return "Processor\t: " + p.cpu + "\nprocessor\t: 0\nBogoMIPS\t: 1196.03\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt\nCPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\nCPU part\t: 0xc07\nCPU revision\t: 5\n\nHardware\t: " + p.model + "\nRevision\t: 0000\nSerial\t\t: 0000000000000000\n"
}

// randomPassword returns a strong password no dictionary holds.
func randomPassword() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
