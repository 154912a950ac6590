package analyze

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/internal/imagetest"
	"github.com/iotcop/iotcop/internal/daemontest"
)

const cProgram = `#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) { char buf[64]; strcpy(buf, argc > 1 ? argv[1] : "x"); printf("%s\n", buf); return 0; }
`

// compile builds cProgram with gcc and the given flags.
func compile(t *testing.T, dir, name string, flags ...string) []byte {
	t.Helper()
	src := filepath.Join(dir, "p.c")
	if err := os.WriteFile(src, []byte(cProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	imagetest.Run(t, dir, nil, "gcc", append(append([]string{"-O2"}, flags...), "-o", out, src)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dropSections removes the section header table reference the way
// sstrip does on embedded builds.
func dropSections(b []byte) []byte {
	b = append([]byte(nil), b...)
	binary.LittleEndian.PutUint64(b[40:], 0) // e_shoff
	binary.LittleEndian.PutUint16(b[60:], 0) // e_shnum
	binary.LittleEndian.PutUint16(b[62:], 0) // e_shstrndx
	return b
}

func TestParseELF(t *testing.T) {
	t.Parallel()
	daemontest.Require(t, "gcc", "strip=binutils")
	dir := t.TempDir()
	hard := compile(t, dir, "hard", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fPIE", "-pie", "-Wl,-z,relro,-z,now")
	weak := compile(t, dir, "weak", "-fno-stack-protector", "-U_FORTIFY_SOURCE", "-no-pie", "-fno-pie", "-z", "execstack", "-Wl,-z,norelro", "-Wl,-rpath,/opt/lib")
	imagetest.Run(t, dir, nil, "strip", "hard")
	hardStripped, _ := os.ReadFile(filepath.Join(dir, "hard"))
	for _, tc := range []struct {
		name string
		bin  []byte
		want ELFInfo
	}{
		{"hardened", hard, ELFInfo{Kind: "pie", Machine: "x86-64", NX: true, PIE: true, RELRO: "full", Canary: "yes", Fortify: "yes"}},
		{"hardened, strip", hardStripped, ELFInfo{Kind: "pie", Machine: "x86-64", NX: true, PIE: true, RELRO: "full", Canary: "yes", Fortify: "yes", Stripped: true}},
		{"hardened, no section headers", dropSections(hardStripped), ELFInfo{Kind: "pie", Machine: "x86-64", NX: true, PIE: true, RELRO: "full", Canary: "yes", Fortify: "yes", Stripped: true}},
		{"weak", weak, ELFInfo{Kind: "executable", Machine: "x86-64", NX: false, PIE: false, RELRO: "none", Canary: "no", Fortify: "no", RPath: "/opt/lib"}},
	} {
		got, ok := ParseELF(tc.bin)
		if !ok {
			t.Errorf("%s: not parsed", tc.name)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	for _, junk := range [][]byte{nil, []byte("\x7fELF"), append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...), []byte("#!/bin/sh\n")} {
		if _, ok := ParseELF(junk); ok {
			t.Errorf("ParseELF(%q) ok", junk)
		}
	}
}

func TestHardeningSummary(t *testing.T) {
	t.Parallel()
	daemontest.Require(t, "gcc")
	dir := t.TempDir()
	tree := treeOf(t, map[string]string{
		"bin/hard": string(compile(t, dir, "hard", "-fstack-protector-strong", "-fPIE", "-pie", "-Wl,-z,relro,-z,now")),
		"bin/weak": string(compile(t, dir, "weak", "-fno-stack-protector", "-no-pie", "-fno-pie", "-z", "execstack", "-Wl,-z,norelro")),
		"etc/motd": "not an ELF file",
	})
	fs, err := Run(context.Background(), tree, []Analyzer{NewHardening()})
	if err != nil || len(fs) != 1 {
		t.Fatalf("findings %v, err %v", fs, err)
	}
	f := fs[0]
	if f.Check != finding.CheckBinaryHardening || f.Evidence["elf_files"] != 2 || f.Evidence["without_nx"] != 1 || f.Evidence["executables_without_pie"] != 1 {
		t.Errorf("summary %+v", f)
	}
	bins := f.Evidence["binaries"].([]any)
	if len(bins) != 1 || !strings.HasSuffix(bins[0].(ELFInfo).Path, "/bin/weak") {
		t.Errorf("per-binary detail lists %v, want only /bin/weak", bins)
	}
	// A fully hardened image yields nothing.
	tree = treeOf(t, map[string]string{"bin/hard": string(compile(t, dir, "hard2", "-fstack-protector-strong", "-fPIE", "-pie", "-Wl,-z,relro,-z,now"))})
	if fs, _ := Run(context.Background(), tree, []Analyzer{NewHardening()}); len(fs) != 0 {
		t.Errorf("hardened image: %v", fs)
	}
}

func FuzzParseELF(f *testing.F) {
	for _, p := range []string{"/bin/busybox", "/usr/sbin/dropbear", "/bin/ls"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b[:min(len(b), 16<<10)])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { ParseELF(b) })
}
