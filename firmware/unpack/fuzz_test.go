package unpack

import (
	"context"
	"testing"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
	"github.com/iotcop/iotcop/internal/daemontest"
)

// fuzzOptions keep each fuzz run small.
var fuzzOptions = Options{MaxTotalBytes: 8 << 20, MaxFiles: 2000, MaxDepth: 4, Workers: 2}

// fuzzOne runs one unpacker directly and then the whole engine on data;
// neither may panic, and the engine's layers must stay inside the data.
func fuzzOne(t *testing.T, u Unpacker, data []byte) {
	tree := &Tree{opts: fuzzOptions.withDefaults(), budget: &budget{maxBytes: fuzzOptions.MaxTotalBytes, maxFiles: fuzzOptions.MaxFiles}}
	l := tree.addLayer(&Layer{Format: u.Format()})
	s := newSink(tree, l, "", int64(len(data)))
	hdr := data[:min(len(data), HeaderSize)]
	if u.Identify(hdr) {
		used, _ := u.Unpack(context.Background(), sliceReader(data), int64(len(data)), s)
		if used < 0 || used > int64(len(data)) {
			t.Fatalf("%s used %d of %d bytes", u.Format(), used, len(data))
		}
	}
	tr, err := Data(context.Background(), data, fuzzOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range tr.Layers() {
		if l.Offset < 0 || l.Size < 0 {
			t.Fatalf("layer %s out of range", l)
		}
	}
}

func seedRoot(f *testing.F) string {
	return imagetest.Rootfs(f, map[string]imagetest.Entry{
		"etc/passwd": {Content: "root:x:0:0::/root:/bin/sh\n"},
		"bin/sh":     {Link: "busybox"},
		"bin/big":    {Content: string(make([]byte, 300))},
	})
}

func FuzzSquashFS(f *testing.F) {
	root := seedRoot(f)
	for _, c := range []string{"gzip", "xz", "lzo", "lz4", "zstd", "lzma"} {
		f.Add(imagetest.Squashfs(f, root, c, "-b", "4096"))
	}
	f.Add(imagetest.Squashfs(f, root, "gzip", "-noI", "-noD", "-noF"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, SquashFS{Workers: 2}, data) })
}

func FuzzCPIO(f *testing.F) {
	root := seedRoot(f)
	for _, h := range []string{"newc", "crc", "odc", "bin"} {
		f.Add(imagetest.CPIO(f, root, h))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, CPIO{}, data) })
}

func FuzzUImage(f *testing.F) {
	f.Add(imagetest.UImage(f, []byte("kernel payload"), "kernel", "none", "Linux-5.4"))
	f.Add(imagetest.UImage(f, imagetest.Compress(f, []byte("kernel payload"), "gzip"), "kernel", "gzip", "Linux-5.4"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, UImage{}, data) })
}

func FuzzTRX(f *testing.F) {
	hdr := []byte("HDR0\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x1c\x00\x00\x00\x30\x00\x00\x00\x00\x00\x00\x00")
	f.Add(append(hdr, make([]byte, 36)...))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, TRX{}, data) })
}

func FuzzFIT(f *testing.F) {
	root := seedRoot(f)
	dir := imagetest.Rootfs(f, map[string]imagetest.Entry{"k": {Content: "kernel"}, "rd": {Content: string(imagetest.CPIO(f, root, "newc"))}})
	daemontest.Require(f, "mkimage=u-boot-tools")
	imagetest.Run(f, dir, nil, "mkimage", "-f", "auto", "-A", "arm", "-O", "linux", "-T", "kernel", "-C", "none",
		"-a", "0", "-e", "0", "-n", "fit", "-d", "k", "-i", "rd", "fit.itb")
	f.Add(imagetest.Run(f, dir, nil, "cat", "fit.itb"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, FIT{}, data) })
}

func FuzzCarve(f *testing.F) {
	root := seedRoot(f)
	newc := imagetest.CPIO(f, root, "newc")
	f.Add(imagetest.Concat(512, imagetest.UImage(f, []byte("k"), "kernel", "none", "k"), imagetest.Squashfs(f, root, "gzip")))
	f.Add(imagetest.Compress(f, newc, "gzip"))
	f.Add(imagetest.Compress(f, newc, "xz"))
	f.Add(imagetest.Compress(f, newc, "lzma"))
	f.Add(imagetest.Compress(f, newc, "bzip2"))
	f.Add(imagetest.Compress(f, newc, "zstd"))
	f.Add(imagetest.Compress(f, newc, "lz4"))
	f.Add(imagetest.Tar(f, root))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Data(context.Background(), data, fuzzOptions); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzJFFS2(f *testing.F) {
	root := seedRoot(f)
	f.Add(imagetest.JFFS2(f, root, "-l"))
	f.Add(imagetest.JFFS2(f, root, "-b", "-x", "zlib"))
	f.Add(imagetest.JFFS2(f, root, "-l", "-X", "lzo", "-x", "zlib", "-x", "rtime"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, JFFS2{}, data) })
}

func FuzzExt(f *testing.F) {
	root := seedRoot(f)
	f.Add(imagetest.Ext(f, root, "ext2", 256, "-b", "1024"))
	f.Add(imagetest.Ext(f, root, "ext4", 512, "-b", "1024", "-O", "^has_journal"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, Ext{}, data) })
}

func FuzzCramFS(f *testing.F) {
	root := seedRoot(f)
	f.Add(imagetest.CramFS(f, root, "little", false))
	f.Add(imagetest.CramFS(f, root, "big", true))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, CramFS{}, data) })
}

func FuzzUBI(f *testing.F) {
	root := seedRoot(f)
	fs := imagetest.UBIFS(f, root, "lzo")
	f.Add(fs[:min(len(fs), 64<<10)])
	f.Add(imagetest.UBI(f, map[string][]byte{"rootfs": []byte("UBIFS-less volume data")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, UBI{}, data)
		fuzzOne(t, UBIFS{}, data)
	})
}

func FuzzLZOPAndLZ4Legacy(f *testing.F) {
	newc := imagetest.CPIO(f, seedRoot(f), "newc")
	f.Add(imagetest.Compress(f, newc, "lzop"))
	f.Add(imagetest.Compress(f, newc, "lz4", "-q", "-l"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, LZOP{}, data)
		fuzzOne(t, LZ4Legacy{}, data)
	})
}

func FuzzTPLink(f *testing.F) {
	f.Add(tplinkImage([]byte("kernel"), imagetest.CPIO(f, seedRoot(f), "newc"), 0x400))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, TPLink{}, data) })
}

func FuzzAr(f *testing.F) {
	dir := imagetest.Rootfs(f, map[string]imagetest.Entry{"debian-binary": {Content: "2.0\n"}, "a-very-long-member-name.tar": {Content: "data"}})
	daemontest.Require(f, "ar=binutils")
	imagetest.Run(f, dir, nil, "ar", "rc", "x.a", "debian-binary", "a-very-long-member-name.tar")
	f.Add(imagetest.Run(f, dir, nil, "cat", "x.a"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, Ar{}, data) })
}
