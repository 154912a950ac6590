// Package imagetest builds real firmware images for tests with the Debian
// tools vendors use (squashfs-tools, u-boot-tools, cpio, tar, zip, xz ...).
// Every builder calls daemontest.Require so a fresh machine installs the
// tool (as root) or skips with a clear message.
package imagetest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/iotcop/iotcop/internal/daemontest"
)

// Entry is one thing to create in a root filesystem: a file with Content
// and Mode, or a symlink when Link is set, or a folder when Dir is set.
type Entry struct {
	Content string
	Mode    os.FileMode
	Link    string
	Dir     bool
}

// Rootfs creates the entries under a new temporary folder and returns it.
func Rootfs(t testing.TB, entries map[string]Entry) string {
	t.Helper()
	dir := t.TempDir()
	for name, e := range entries {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Dir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case e.Link != "":
			if err := os.Symlink(e.Link, p); err != nil {
				t.Fatal(err)
			}
		default:
			mode := e.Mode
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(p, []byte(e.Content), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// Run runs a command, failing the test with its output on error, and
// returns its standard output.
func Run(t testing.TB, dir string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errb.String())
	}
	return out.Bytes()
}

func read(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Squashfs builds a SquashFS 4.0 image of dir with mksquashfs -comp comp.
func Squashfs(t testing.TB, dir, comp string, extra ...string) []byte {
	t.Helper()
	daemontest.Require(t, "mksquashfs=squashfs-tools")
	out := filepath.Join(t.TempDir(), "root.sqfs")
	args := append([]string{dir, out, "-comp", comp, "-noappend", "-all-root", "-no-progress", "-quiet"}, extra...)
	Run(t, "", nil, "mksquashfs", args...)
	return read(t, out)
}

// UImage wraps payload in a legacy U-Boot header with mkimage; comp is the
// compression the header declares (the payload must already be compressed
// that way); typ is "kernel", "filesystem", "multi", ...
func UImage(t testing.TB, payload []byte, typ, comp, name string) []byte {
	t.Helper()
	daemontest.Require(t, "mkimage=u-boot-tools")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "payload"), filepath.Join(dir, "uImage")
	if err := os.WriteFile(in, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, "", nil, "mkimage", "-A", "mips", "-O", "linux", "-T", typ, "-C", comp,
		"-a", "0x80000000", "-e", "0x80000000", "-n", name, "-d", in, out)
	return read(t, out)
}

// CPIO archives dir with GNU cpio in format (newc, odc, bin).
func CPIO(t testing.TB, dir, format string) []byte {
	t.Helper()
	daemontest.Require(t, "cpio")
	names := Run(t, dir, nil, "find", ".", "-mindepth", "1")
	return Run(t, dir, names, "cpio", "--quiet", "-o", "-H", format)
}

// Tar archives dir with GNU tar.
func Tar(t testing.TB, dir string) []byte {
	t.Helper()
	daemontest.Require(t, "tar")
	return Run(t, dir, nil, "tar", "-cf", "-", ".")
}

// Compress pipes data through a compressor command such as "gzip",
// "xz", "bzip2", "zstd", "lz4" or "lzma" (args are its flags).
func Compress(t testing.TB, data []byte, tool string, args ...string) []byte {
	t.Helper()
	pkg := map[string]string{"gzip": "gzip", "xz": "xz-utils", "lzma": "xz-utils", "bzip2": "bzip2", "zstd": "zstd", "lz4": "lz4"}[tool]
	if pkg == "" {
		pkg = tool
	}
	daemontest.Require(t, tool+"="+pkg)
	return Run(t, "", data, tool, append(args, "-c")...)
}

// Concat glues parts together, padding each to align bytes with 0xff as
// flash images do (align 0 means no padding).
func Concat(align int, parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
		if align > 0 {
			for len(b)%align != 0 {
				b = append(b, 0xff)
			}
		}
	}
	return b
}

// JFFS2 builds a JFFS2 image of dir with mkfs.jffs2 (args such as "-b"
// for big-endian or "-e", "128KiB", "-p" for padded erase blocks).
func JFFS2(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	daemontest.Require(t, "mkfs.jffs2=mtd-utils")
	out := filepath.Join(t.TempDir(), "fs.jffs2")
	Run(t, "", nil, "mkfs.jffs2", append(args, "-r", dir, "-o", out, "-q")...)
	return read(t, out)
}

// Ext builds an ext2/3/4 image of dir with mke2fs -d (fstype "ext2",
// "ext3" or "ext4"), sizeKB big.
func Ext(t testing.TB, dir, fstype string, sizeKB int, extra ...string) []byte {
	t.Helper()
	daemontest.Require(t, "mke2fs=e2fsprogs")
	out := filepath.Join(t.TempDir(), "fs."+fstype)
	args := append([]string{"-q", "-F", "-t", fstype, "-d", dir}, extra...)
	Run(t, "", nil, "mke2fs", append(args, out, fmt.Sprint(sizeKB))...)
	return read(t, out)
}

// CramFS builds a cramfs image of dir with mkfs.cramfs (endian "big" or
// "little"; pad adds the 512-byte boot area).
func CramFS(t testing.TB, dir, endian string, pad bool) []byte {
	t.Helper()
	daemontest.Require(t, "mkfs.cramfs=util-linux")
	out := filepath.Join(t.TempDir(), "fs.cramfs")
	args := []string{"-N", endian}
	if pad {
		args = append(args, "-p")
	}
	Run(t, "", nil, "mkfs.cramfs", append(args, dir, out)...)
	return read(t, out)
}

// UBIFS builds a UBIFS image of dir with mkfs.ubifs (compr "lzo", "zlib",
// "zstd" or "none"; 2 KiB pages, 128 KiB erase blocks).
func UBIFS(t testing.TB, dir, compr string) []byte {
	t.Helper()
	daemontest.Require(t, "mkfs.ubifs=mtd-utils")
	out := filepath.Join(t.TempDir(), "fs.ubifs")
	Run(t, "", nil, "mkfs.ubifs", "-r", dir, "-m", "2048", "-e", "126976", "-c", "200", "-x", compr, "-o", out)
	return read(t, out)
}

// UBI wraps UBIFS images in a UBI image with ubinize, one dynamic volume
// per image, named after the map keys.
func UBI(t testing.TB, volumes map[string][]byte) []byte {
	t.Helper()
	daemontest.Require(t, "ubinize=mtd-utils")
	dir := t.TempDir()
	var cfg bytes.Buffer
	id := 0
	names := make([]string, 0, len(volumes))
	for n := range volumes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n+".img")
		if err := os.WriteFile(p, volumes[n], 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "[%s]\nmode=ubi\nimage=%s\nvol_id=%d\nvol_type=dynamic\nvol_name=%s\n", n, p, id, n)
		id++
	}
	cfgPath := filepath.Join(dir, "ubinize.cfg")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ubi.img")
	Run(t, "", nil, "ubinize", "-o", out, "-m", "2048", "-p", "128KiB", cfgPath)
	return read(t, out)
}
