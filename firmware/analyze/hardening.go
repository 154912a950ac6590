package analyze

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/unpack"
)

// Hardening checks every ELF binary for the exploit mitigations the
// toolchain can add: non-executable stack (NX), position-independent
// executables (PIE), RELRO, stack canaries, FORTIFY_SOURCE, RPATH and
// symbol stripping. It reads the program headers and the dynamic segment
// itself, so it works on embedded binaries whose section headers were
// stripped. It reports one summary finding per image, with per-binary
// details in the evidence.
type Hardening struct {
	mu       sync.Mutex
	binaries []ELFInfo
}

// NewHardening returns the analysis.
func NewHardening() *Hardening { return &Hardening{} }

// Name implements Analyzer.
func (*Hardening) Name() string { return "binary-hardening" }

// PerFile implements PerFile.
func (*Hardening) PerFile() bool { return true }

// Required implements Analyzer.
func (*Hardening) Required(_ string, info fs.FileInfo) bool {
	return info.Mode().IsRegular() && info.Size() >= 52
}

// ELFInfo is what the hardening check found in one binary.
type ELFInfo struct {
	Path     string `json:"path"`
	Kind     string `json:"kind"` // executable, pie, shared-library
	Machine  string `json:"machine"`
	NX       bool   `json:"nx"`
	PIE      bool   `json:"pie"`
	RELRO    string `json:"relro"`   // none, partial, full
	Canary   string `json:"canary"`  // yes, no, unknown (static and stripped)
	Fortify  string `json:"fortify"` // yes, no, unknown
	RPath    string `json:"rpath,omitempty"`
	Stripped bool   `json:"stripped"`
}

var elfMachines = map[uint16]string{2: "sparc", 3: "x86", 8: "mips", 20: "ppc", 21: "ppc64", 40: "arm", 42: "sh", 62: "x86-64", 183: "aarch64", 243: "riscv", 94: "xtensa", 0x5441: "arc"}

const (
	ptLoad     = 1
	ptDynamic  = 2
	ptInterp   = 3
	ptGNUStack = 0x6474e551
	ptGNURelro = 0x6474e552
	pfX        = 1
	dtNeeded   = 1
	dtStrSz    = 10
	dtStrTab   = 5
	dtRPath    = 15
	dtBindNow  = 24
	dtRunPath  = 29
	dtFlags    = 30
	dtFlags1   = 0x6ffffffb
)

// ParseELF inspects an ELF image from its headers and dynamic segment.
// ok is false for anything that is not a well-formed ELF file.
func ParseELF(b []byte) (ELFInfo, bool) {
	var info ELFInfo
	if len(b) < 52 || !bytes.HasPrefix(b, []byte("\x7fELF")) {
		return info, false
	}
	is64 := b[4] == 2
	var bo binary.ByteOrder = binary.LittleEndian
	if b[5] == 2 {
		bo = binary.BigEndian
	}
	if b[4] != 1 && !is64 || b[5] != 1 && b[5] != 2 || is64 && len(b) < 64 {
		return info, false
	}
	typ, machine := bo.Uint16(b[16:]), bo.Uint16(b[18:])
	var phoff, shoff uint64
	var phentsize, phnum, shentsize, shnum int
	if is64 {
		phoff, shoff = bo.Uint64(b[32:]), bo.Uint64(b[40:])
		phentsize, phnum, shentsize, shnum = int(bo.Uint16(b[54:])), int(bo.Uint16(b[56:])), int(bo.Uint16(b[58:])), int(bo.Uint16(b[60:]))
	} else {
		phoff, shoff = uint64(bo.Uint32(b[28:])), uint64(bo.Uint32(b[32:]))
		phentsize, phnum, shentsize, shnum = int(bo.Uint16(b[42:])), int(bo.Uint16(b[44:])), int(bo.Uint16(b[46:])), int(bo.Uint16(b[48:]))
	}
	if typ != 2 && typ != 3 || phnum == 0 || phentsize < 32 || phoff+uint64(phnum*phentsize) > uint64(len(b)) {
		return info, false
	}
	info.Machine = elfMachines[machine]
	if info.Machine == "" {
		info.Machine = fmt.Sprintf("machine-%d", machine)
	}
	type seg struct{ typ, flags, off, vaddr, filesz uint64 }
	var segs []seg
	for i := range phnum {
		p := b[phoff+uint64(i*phentsize):]
		var s seg
		if is64 {
			s = seg{uint64(bo.Uint32(p)), uint64(bo.Uint32(p[4:])), bo.Uint64(p[8:]), bo.Uint64(p[16:]), bo.Uint64(p[32:])}
		} else {
			s = seg{uint64(bo.Uint32(p)), uint64(bo.Uint32(p[24:])), uint64(bo.Uint32(p[4:])), uint64(bo.Uint32(p[8:])), uint64(bo.Uint32(p[16:]))}
		}
		segs = append(segs, s)
	}
	hasInterp, hasStack, hasRelro := false, false, false
	var dyn []byte
	for _, s := range segs {
		switch s.typ {
		case ptInterp:
			hasInterp = true
		case ptGNUStack:
			hasStack = true
			info.NX = s.flags&pfX == 0
		case ptGNURelro:
			hasRelro = true
		case ptDynamic:
			if s.off+s.filesz <= uint64(len(b)) {
				dyn = b[s.off : s.off+s.filesz]
			}
		}
	}
	_ = hasStack // no PT_GNU_STACK: the stack is executable (NX stays false)
	// vaddr -> file offset through the loadable segments.
	toOff := func(va uint64) (uint64, bool) {
		for _, s := range segs {
			if s.typ == ptLoad && va >= s.vaddr && va < s.vaddr+s.filesz {
				return va - s.vaddr + s.off, true
			}
		}
		return 0, false
	}
	var flags, flags1, strtab, strsz uint64
	var bindNow bool
	var rpathOff []uint64
	ent := 8
	if is64 {
		ent = 16
	}
	for i := 0; i+ent <= len(dyn); i += ent {
		var tag, val uint64
		if is64 {
			tag, val = bo.Uint64(dyn[i:]), bo.Uint64(dyn[i+8:])
		} else {
			tag, val = uint64(bo.Uint32(dyn[i:])), uint64(bo.Uint32(dyn[i+4:]))
		}
		switch tag {
		case 0:
			i = len(dyn)
		case dtFlags:
			flags = val
		case dtFlags1:
			flags1 = val
		case dtBindNow:
			bindNow = true
		case dtStrTab:
			strtab = val
		case dtStrSz:
			strsz = val
		case dtRPath, dtRunPath:
			rpathOff = append(rpathOff, val)
		}
	}
	bindNow = bindNow || flags&0x8 != 0 || flags1&0x1 != 0
	switch {
	case typ == 2:
		info.Kind = "executable"
	case hasInterp || flags1&0x08000000 != 0:
		info.Kind, info.PIE = "pie", true
	default:
		info.Kind = "shared-library"
	}
	info.RELRO = "none"
	if hasRelro {
		info.RELRO = "partial"
		if bindNow {
			info.RELRO = "full"
		}
	}
	var dynstr []byte
	if off, ok := toOff(strtab); ok && strsz > 0 && off+strsz <= uint64(len(b)) {
		dynstr = b[off : off+strsz]
	}
	var rpaths []string
	for _, o := range rpathOff {
		if o < uint64(len(dynstr)) {
			s := dynstr[o:]
			if i := bytes.IndexByte(s, 0); i >= 0 {
				rpaths = append(rpaths, string(s[:i]))
			}
		}
	}
	info.RPath = strings.Join(rpaths, ":")
	// Imported names tell whether the compiler added canaries or
	// FORTIFY_SOURCE checks; a static, stripped binary keeps no names.
	names := dynstr
	if dyn == nil {
		names = nil
	}
	info.Canary, info.Fortify = "unknown", "unknown"
	if names != nil {
		info.Canary, info.Fortify = "no", "no"
		if bytes.Contains(names, []byte("__stack_chk_fail")) || bytes.Contains(names, []byte("__stack_chk_guard")) {
			info.Canary = "yes"
		}
		if fortified(names) {
			info.Fortify = "yes"
		}
	}
	info.Stripped = true
	if shnum > 0 && shentsize >= 40 && shoff+uint64(shnum*shentsize) <= uint64(len(b)) {
		for i := range shnum {
			if bo.Uint32(b[shoff+uint64(i*shentsize)+4:]) == 2 { // SHT_SYMTAB
				info.Stripped = false
			}
		}
	}
	return info, true
}

// fortified reports imported *_chk functions (FORTIFY_SOURCE).
func fortified(names []byte) bool {
	for _, n := range bytes.Split(names, []byte{0}) {
		if bytes.HasPrefix(n, []byte("__")) && bytes.HasSuffix(n, []byte("_chk")) && !bytes.HasPrefix(n, []byte("__stack_chk")) {
			return true
		}
	}
	return false
}

// Analyze implements Analyzer: it records each binary; Finish reports.
func (h *Hardening) Analyze(ctx context.Context, _ *unpack.Tree, files []*unpack.File) ([]finding.Finding, error) {
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, ok := ParseELF(f.Data())
		if !ok {
			continue
		}
		info.Path = f.Path()
		h.mu.Lock()
		h.binaries = append(h.binaries, info)
		h.mu.Unlock()
	}
	return nil, nil
}

// maxHardeningDetails caps the per-binary list in the evidence.
const maxHardeningDetails = 300

// Finish implements Finisher: one summary finding when any binary lacks
// a mitigation.
func (h *Hardening) Finish(context.Context) ([]finding.Finding, error) {
	h.mu.Lock()
	bins := append([]ELFInfo(nil), h.binaries...)
	h.mu.Unlock()
	if len(bins) == 0 {
		return nil, nil
	}
	sort.Slice(bins, func(i, j int) bool { return bins[i].Path < bins[j].Path })
	var exes, noNX, noPIE, noCanary, noRelro, rpath, notStripped int
	var weak []ELFInfo
	for _, b := range bins {
		exe := b.Kind != "shared-library"
		if exe {
			exes++
		}
		issue := false
		if !b.NX {
			noNX++
			issue = true
		}
		if exe && !b.PIE {
			noPIE++
			issue = true
		}
		if b.Canary == "no" {
			noCanary++
			issue = true
		}
		if b.RELRO == "none" {
			noRelro++
			issue = true
		}
		if b.RPath != "" {
			rpath++
			issue = true
		}
		if !b.Stripped {
			notStripped++
		}
		if issue && len(weak) < maxHardeningDetails {
			weak = append(weak, b)
		}
	}
	if noNX+noPIE+noCanary+noRelro+rpath == 0 {
		return nil, nil
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{noNX, "without NX"}, {noPIE, "executables without PIE"}, {noCanary, "without stack canaries"}, {noRelro, "without RELRO"}, {rpath, "with RPATH/RUNPATH"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	sev := finding.Low
	if noNX*2 > len(bins) || exes > 0 && noPIE*2 > exes && noCanary*2 > len(bins) {
		sev = finding.Medium
	}
	details := make([]any, len(weak))
	for i, w := range weak {
		details[i] = w
	}
	return []finding.Finding{{
		Check: finding.CheckBinaryHardening, Provisions: []string{"5.6-9"}, Severity: sev,
		Title: fmt.Sprintf("Binaries built without exploit mitigations: %s (of %d ELF files)", strings.Join(parts, ", "), len(bins)),
		Path:  "/",
		Evidence: map[string]any{"elf_files": len(bins), "executables": exes, "without_nx": noNX, "executables_without_pie": noPIE,
			"without_canary": noCanary, "without_relro": noRelro, "with_rpath": rpath, "not_stripped": notStripped,
			"binaries": details, "binaries_listed": len(weak)},
		Remediation: "Build with -fstack-protector-strong, -D_FORTIFY_SOURCE=2, -fPIE -pie, -Wl,-z,relro,-z,now and a non-executable stack; avoid RPATH.",
	}}, nil
}
