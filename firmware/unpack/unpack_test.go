package unpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
	"github.com/iotcop/iotcop/internal/daemontest"
)

// sampleRoot is a small root filesystem with the shapes firmware has:
// nested folders, a file bigger than one block, a fragment-sized file,
// absolute and relative symlinks and an empty file.
func sampleRoot(t testing.TB) string {
	big := strings.Repeat("BusyBox v1.36.1 multi-call binary\n", 9000) // > 256 KiB
	return imagetest.Rootfs(t, map[string]imagetest.Entry{
		"etc/passwd":           {Content: "root:x:0:0:root:/root:/bin/sh\n"},
		"etc/shadow":           {Content: "root:$1$abc$xyz:19000:0:99999:7:::\n", Mode: 0o600},
		"bin/busybox":          {Content: big, Mode: 0o755},
		"bin/sh":               {Link: "busybox"},
		"etc/init.d/rcS":       {Content: "#!/bin/sh\ntelnetd -l /bin/sh\n", Mode: 0o755},
		"var/empty":            {Content: ""},
		"var/passwd":           {Link: "/etc/passwd"},
		"usr/share/deep/a/b/c": {Content: "deep"},
		"tmp":                  {Dir: true},
	})
}

func checkSample(t *testing.T, tree *Tree) *FS {
	t.Helper()
	var root *FS
	for _, s := range tree.Filesystems() {
		if f, err := s.Lstat("/etc/passwd"); err == nil && f.Mode.IsRegular() {
			root = s
		}
	}
	if root == nil {
		t.Fatalf("no layer holds /etc/passwd; layers:\n%s", dumpLayers(tree))
	}
	for path, want := range map[string]string{
		"/etc/passwd":           "root:x:0:0:root:/root:/bin/sh\n",
		"/etc/shadow":           "root:$1$abc$xyz:19000:0:99999:7:::\n",
		"/var/passwd":           "root:x:0:0:root:/root:/bin/sh\n", // absolute link resolved inside the root
		"/usr/share/deep/a/b/c": "deep",
		"/var/empty":            "",
	} {
		got, err := root.ReadFile(path)
		if err != nil {
			t.Errorf("ReadFile(%s): %v", path, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	bb, err := root.ReadFile("/bin/sh")
	if err != nil || len(bb) != 9000*len("BusyBox v1.36.1 multi-call binary\n") || !bytes.HasPrefix(bb, []byte("BusyBox")) {
		t.Errorf("/bin/sh -> busybox: %d bytes, err %v", len(bb), err)
	}
	if l, err := root.Lstat("/bin/sh"); err != nil || l.Link != "busybox" {
		t.Errorf("Lstat(/bin/sh) = %+v, %v; want the symlink kept", l, err)
	}
	return root
}

func dumpLayers(tree *Tree) string {
	var b strings.Builder
	for _, l := range tree.Layers() {
		fmt.Fprintf(&b, "  %d<-%d %s files=%d\n", l.ID, l.Parent, l, l.Files)
	}
	return b.String()
}

func unpackBytes(t testing.TB, data []byte, o Options) *Tree {
	t.Helper()
	tree, err := Data(context.Background(), data, o)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func findLayer(tree *Tree, format string) *Layer {
	for _, l := range tree.Layers() {
		if l.Format == format {
			return l
		}
	}
	return nil
}

func TestSquashFSCompressions(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	for _, comp := range []string{"gzip", "xz", "lzo", "lz4", "zstd", "lzma"} {
		t.Run(comp, func(t *testing.T) {
			t.Parallel()
			img := imagetest.Squashfs(t, root, comp)
			tree := unpackBytes(t, img, Options{})
			l := findLayer(tree, "squashfs")
			if l == nil || l.Status != StatusUnpacked {
				t.Fatalf("squashfs layer missing or failed:\n%s", dumpLayers(tree))
			}
			if l.Info["compression"] != comp || l.Offset != 0 {
				t.Errorf("layer info %v offset %d", l.Info, l.Offset)
			}
			// mksquashfs's plain xz blocks all take the fast LZMA2 path.
			if n := l.Info["xz_blocks_general_decoder"]; n != "" {
				t.Errorf("%s xz blocks needed the general decoder", n)
			}
			checkSample(t, tree)
		})
	}
}

func TestSquashFSNoFragmentsAndSmallBlocks(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	img := imagetest.Squashfs(t, root, "gzip", "-no-fragments", "-b", "4096")
	checkSample(t, unpackBytes(t, img, Options{}))
	img = imagetest.Squashfs(t, root, "xz", "-always-use-fragments", "-noI", "-noD", "-noF")
	checkSample(t, unpackBytes(t, img, Options{}))
	// xz with branch/call/jump filters, as vendors build for their CPU.
	img = imagetest.Squashfs(t, root, "xz", "-Xbcj", "x86,arm,powerpc")
	checkSample(t, unpackBytes(t, img, Options{}))
}

// TestVendorLayout is the usual flash layout: a uImage holding an
// LZMA-compressed kernel, 0xff padding, then an xz SquashFS root.
func TestVendorLayout(t *testing.T) {
	t.Parallel()
	kernel := []byte(strings.Repeat("Linux version 5.10.176 (builder@buildhost) #0 SMP\x00\x01\x02", 3000))
	lz := imagetest.Compress(t, kernel, "lzma")
	uimg := imagetest.UImage(t, lz, "kernel", "lzma", "MIPS OpenWrt Linux-5.10.176")
	sq := imagetest.Squashfs(t, sampleRoot(t), "xz")
	img := imagetest.Concat(0x10000, uimg, sq)
	tree := unpackBytes(t, img, Options{})
	u := findLayer(tree, "uimage")
	if u == nil || u.Status != StatusUnpacked || u.Offset != 0 {
		t.Fatalf("uimage layer:\n%s", dumpLayers(tree))
	}
	if u.Info["name"] != "MIPS OpenWrt Linux-5.10.176" || u.Info["compression"] != "lzma" || u.Info["data_crc"] != "ok" {
		t.Errorf("uimage info = %v", u.Info)
	}
	k, err := u.FS().ReadFile("/MIPS OpenWrt Linux-5.10.176")
	if err != nil || !bytes.Equal(k, kernel) {
		t.Errorf("kernel payload: %d bytes, err %v; want the decompressed kernel", len(k), err)
	}
	sql := findLayer(tree, "squashfs")
	if sql == nil || sql.Offset != int64(len(imagetest.Concat(0x10000, uimg))) {
		t.Fatalf("squashfs layer not at the padded offset:\n%s", dumpLayers(tree))
	}
	checkSample(t, tree)
	for _, l := range tree.Layers() {
		if l.Status == StatusFailed {
			t.Errorf("unexpected failed layer %s", l)
		}
	}
}

func TestArchivesAndStreams(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	newc := imagetest.CPIO(t, root, "newc")
	tests := []struct {
		name   string
		build  func(t *testing.T) []byte
		format string // the archive layer expected
	}{
		{"cpio newc", func(t *testing.T) []byte { return newc }, "cpio"},
		{"cpio crc", func(t *testing.T) []byte { return imagetest.CPIO(t, root, "crc") }, "cpio"},
		{"cpio odc", func(t *testing.T) []byte { return imagetest.CPIO(t, root, "odc") }, "cpio"},
		{"cpio bin", func(t *testing.T) []byte { return imagetest.CPIO(t, root, "bin") }, "cpio"},
		{"tar", func(t *testing.T) []byte { return imagetest.Tar(t, root) }, "tar"},
		{"zip", func(t *testing.T) []byte {
			daemontest.Require(t, "zip")
			imagetest.Run(t, root, nil, "zip", "-q", "-r", "-y", "../out.zip", ".")
			b, err := os.ReadFile(filepath.Join(root, "../out.zip"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, "zip"},
		{"cpio.gz", func(t *testing.T) []byte { return imagetest.Compress(t, newc, "gzip") }, "cpio"},
		{"cpio.xz", func(t *testing.T) []byte { return imagetest.Compress(t, newc, "xz", "--check=crc32") }, "cpio"},
		{"cpio.lzma", func(t *testing.T) []byte { return imagetest.Compress(t, newc, "lzma") }, "cpio"},
		{"cpio.bz2", func(t *testing.T) []byte { return imagetest.Compress(t, newc, "bzip2") }, "cpio"},
		{"cpio.zst", func(t *testing.T) []byte { return imagetest.Compress(t, newc, "zstd", "-q") }, "cpio"},
		{"cpio.lz4", func(t *testing.T) []byte { return imagetest.Compress(t, newc, "lz4", "-q") }, "cpio"},
		{"tar.gz.xz", func(t *testing.T) []byte {
			return imagetest.Compress(t, imagetest.Compress(t, imagetest.Tar(t, root), "gzip"), "xz")
		}, "tar"},
		{"squashfs in tar", func(t *testing.T) []byte {
			dir := imagetest.Rootfs(t, map[string]imagetest.Entry{"fw/rootfs.sqfs": {Content: string(imagetest.Squashfs(t, root, "gzip"))}})
			return imagetest.Tar(t, dir)
		}, "squashfs"},
		{"ipk-style ar holding data.tar.gz", func(t *testing.T) []byte {
			dir := imagetest.Rootfs(t, map[string]imagetest.Entry{
				"debian-binary":  {Content: "2.0\n"},
				"control.tar.gz": {Content: string(imagetest.Compress(t, imagetest.Tar(t, imagetest.Rootfs(t, map[string]imagetest.Entry{"control": {Content: "Package: x\n"}})), "gzip"))},
				"data.tar.gz":    {Content: string(imagetest.Compress(t, imagetest.Tar(t, root), "gzip"))},
			})
			daemontest.Require(t, "ar=binutils")
			imagetest.Run(t, dir, nil, "ar", "rc", "pkg.ipk", "debian-binary", "control.tar.gz", "data.tar.gz")
			b, err := os.ReadFile(filepath.Join(dir, "pkg.ipk"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, "ar"},
		{"multi-file uImage", func(t *testing.T) []byte {
			return imagetest.UImage(t, newc, "ramdisk", "none", "initramfs")
		}, "cpio"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Trailing bytes after a stream must not break carving.
			img := append(tc.build(t), bytes.Repeat([]byte{0xff}, 4096)...)
			tree := unpackBytes(t, img, Options{})
			l := findLayer(tree, tc.format)
			if l == nil || l.Status != StatusUnpacked {
				t.Fatalf("no unpacked %s layer:\n%s", tc.format, dumpLayers(tree))
			}
			checkSample(t, tree)
		})
	}
}

func TestSquashFSInsideTarShowsNestedPath(t *testing.T) {
	t.Parallel()
	dir := imagetest.Rootfs(t, map[string]imagetest.Entry{"fw/rootfs.sqfs": {Content: string(imagetest.Squashfs(t, sampleRoot(t), "gzip"))}})
	tree := unpackBytes(t, imagetest.Tar(t, dir), Options{})
	root := checkSample(t, tree)
	f, _ := root.Lstat("/etc/shadow")
	if got := f.Path(); got != "/fw/rootfs.sqfs!/etc/shadow" {
		t.Errorf("display path %q", got)
	}
	tarFS := findLayer(tree, "tar").FS()
	if sq, _ := tarFS.Lstat("/fw/rootfs.sqfs"); sq == nil || !sq.Unpacked {
		t.Errorf("the squashfs file inside the tar is not marked unpacked: %+v", sq)
	}
}

func TestFITAndTRX(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	dir := t.TempDir()
	kernel := []byte(strings.Repeat("Linux version 6.1 ", 200))
	if err := os.WriteFile(filepath.Join(dir, "k.gz"), imagetest.Compress(t, kernel, "gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rd"), imagetest.CPIO(t, root, "newc"), 0o644); err != nil {
		t.Fatal(err)
	}
	daemontest.Require(t, "mkimage=u-boot-tools")
	imagetest.Run(t, dir, nil, "mkimage", "-f", "auto", "-A", "arm", "-O", "linux", "-T", "kernel", "-C", "gzip",
		"-a", "0", "-e", "0", "-n", "fit", "-d", "k.gz", "-i", "rd", "fit.itb")
	fit, err := os.ReadFile(filepath.Join(dir, "fit.itb"))
	if err != nil {
		t.Fatal(err)
	}
	tree := unpackBytes(t, fit, Options{})
	l := findLayer(tree, "fdt")
	if l == nil || l.Info["kind"] != "FIT image" {
		t.Fatalf("FIT layer:\n%s", dumpLayers(tree))
	}
	if k, err := l.FS().ReadFile("/kernel-1"); err != nil || !bytes.Equal(k, kernel) {
		t.Errorf("FIT kernel: %d bytes, %v", len(k), err)
	}
	checkSample(t, tree)

	// TRX v1: header, LZMA kernel partition, SquashFS root partition.
	lz := imagetest.Compress(t, kernel, "lzma")
	sq := imagetest.Squashfs(t, root, "xz")
	kOff := 28
	rOff := int(alignUp(int64(kOff+len(lz)), 4))
	trx := make([]byte, rOff+len(sq))
	copy(trx, "HDR0")
	le := func(off int, v uint32) {
		trx[off], trx[off+1], trx[off+2], trx[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	le(4, uint32(len(trx)))
	le(12, 1<<16)
	le(16, uint32(kOff))
	le(20, uint32(rOff))
	copy(trx[kOff:], lz)
	copy(trx[rOff:], sq)
	le(8, ^crc32IEEE(trx[12:]))
	tree = unpackBytes(t, trx, Options{})
	l = findLayer(tree, "trx")
	if l == nil || l.Status != StatusUnpacked || l.Info["crc"] != "ok" {
		t.Fatalf("TRX layer:\n%s", dumpLayers(tree))
	}
	checkSample(t, tree)
}

func TestJFFS2(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	daemontest.Require(t, "mkfs.jffs2=mtd-utils")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"little zlib", []string{"-l"}},
		{"big zlib", []string{"-b"}},
		{"rtime only", []string{"-l", "-x", "zlib"}},
		{"lzo", []string{"-l", "-X", "lzo", "-x", "zlib", "-x", "rtime"}},
		{"no compression", []string{"-l", "-x", "zlib", "-x", "rtime"}},
		{"padded erase blocks", []string{"-l", "-e", "128KiB", "-p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "fs.jffs2")
			imagetest.Run(t, "", nil, "mkfs.jffs2", append(tc.args, "-r", root, "-o", out, "-q")...)
			img, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			tree := unpackBytes(t, imagetest.Concat(0, []byte(strings.Repeat("\xff", 4096)), img, []byte("trailing data that is not jffs2 at all......................")), Options{})
			l := findLayer(tree, "jffs2")
			if l == nil || l.Status != StatusUnpacked || l.Offset != 4096 {
				t.Fatalf("jffs2 layer:\n%s", dumpLayers(tree))
			}
			checkSample(t, tree)
		})
	}
}

func TestExt(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	for _, tc := range []struct {
		fstype string
		extra  []string
	}{
		{"ext2", nil}, {"ext3", nil}, {"ext4", nil},
		{"ext4", []string{"-b", "1024"}},
		{"ext4", []string{"-O", "64bit,^has_journal"}},
		{"ext2", []string{"-b", "1024", "-I", "128"}},
	} {
		t.Run(tc.fstype+strings.Join(tc.extra, ""), func(t *testing.T) {
			t.Parallel()
			img := imagetest.Ext(t, root, tc.fstype, 4096, tc.extra...)
			tree := unpackBytes(t, imagetest.Concat(0x10000, []byte("vendor header"), img), Options{})
			l := findLayer(tree, "ext")
			if l == nil || l.Status != StatusUnpacked || l.Offset != 0x10000 {
				t.Fatalf("ext layer:\n%s", dumpLayers(tree))
			}
			checkSample(t, tree)
		})
	}
}

func TestCramFS(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	for _, tc := range []struct {
		endian string
		pad    bool
	}{{"little", false}, {"big", false}, {"little", true}} {
		t.Run(fmt.Sprint(tc.endian, tc.pad), func(t *testing.T) {
			t.Parallel()
			tree := unpackBytes(t, imagetest.Concat(0, []byte("header!!"), imagetest.CramFS(t, root, tc.endian, tc.pad)), Options{})
			l := findLayer(tree, "cramfs")
			if l == nil || l.Status != StatusUnpacked {
				t.Fatalf("cramfs layer:\n%s", dumpLayers(tree))
			}
			checkSample(t, tree)
		})
	}
}

func TestUBIAndUBIFS(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	for _, compr := range []string{"lzo", "zlib", "zstd", "none"} {
		t.Run(compr, func(t *testing.T) {
			t.Parallel()
			fs := imagetest.UBIFS(t, root, compr)
			tree := unpackBytes(t, fs, Options{})
			if l := findLayer(tree, "ubifs"); l == nil || l.Status != StatusUnpacked {
				t.Fatalf("ubifs layer:\n%s", dumpLayers(tree))
			}
			checkSample(t, tree)
			ubi := imagetest.UBI(t, map[string][]byte{"rootfs": fs, "kernel": []byte(strings.Repeat("Linux kernel image ", 5000))})
			tree = unpackBytes(t, ubi, Options{})
			l := findLayer(tree, "ubi")
			if l == nil || l.Status != StatusUnpacked || l.Info["volumes"] != "kernel,rootfs" {
				t.Fatalf("ubi layer:\n%s", dumpLayers(tree))
			}
			checkSample(t, tree)
		})
	}
}

// tplinkImage lays out a TP-Link v1 firmware as mktplinkfw does: the
// 512-byte header, the kernel at 0x200, the root filesystem after it.
func tplinkImage(kernel, rootfs []byte, rootfsOff int) []byte {
	img := make([]byte, rootfsOff+len(rootfs))
	be := func(off int, v uint32) { binary.BigEndian.PutUint32(img[off:], v) }
	be(0, 1)
	copy(img[4:], "TP-LINK Technologies")
	copy(img[28:], "ver. 1.0")
	be(64, 0x08410001)
	be(68, 1)
	be(0x7c, uint32(len(img)))
	be(0x80, 0x200)
	be(0x84, uint32(len(kernel)))
	be(0x88, uint32(rootfsOff))
	be(0x8c, uint32(len(rootfs)))
	copy(img[0x200:], kernel)
	copy(img[rootfsOff:], rootfs)
	return img
}

func TestTPLink(t *testing.T) {
	t.Parallel()
	kernel := imagetest.Compress(t, []byte(strings.Repeat("Linux version 4.14.171 ", 400)), "lzma")
	sq := imagetest.Squashfs(t, sampleRoot(t), "xz")
	img := tplinkImage(kernel, sq, 0x100000)
	tree := unpackBytes(t, img, Options{})
	l := findLayer(tree, "tplink")
	if l == nil || l.Status != StatusUnpacked || l.Info["vendor"] != "TP-LINK Technologies" || l.Info["hardware_id"] != "0x08410001 rev 1" {
		t.Fatalf("tplink layer:\n%s", dumpLayers(tree))
	}
	checkSample(t, tree)
	if findLayer(tree, "lzma") == nil {
		t.Errorf("kernel not decompressed:\n%s", dumpLayers(tree))
	}
}
