package unpack

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
)

// Debian's mkfs.jffs2 has no LZMA: build zlib images with it and re-encode
// their data nodes the way LZMA-patched kernels write them.
func TestJFFS2LZMA(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	openwrt := func(d []byte) []byte { return imagetest.LZMARaw(t, d, 0, 0, 0, 0x2000, false) }
	mtdutils := func(d []byte) []byte { return imagetest.LZMARaw(t, d, 3, 0, 2, 0x2000, true) }
	for _, tc := range []struct {
		name  string
		args  []string
		bo    binary.ByteOrder
		compr byte
		enc   func([]byte) []byte
	}{
		{"OpenWrt 0x08 little-endian", []string{"-l"}, binary.LittleEndian, 0x08, openwrt},
		{"OpenWrt 0x08 big-endian", []string{"-b"}, binary.BigEndian, 0x08, openwrt},
		{"mtd-utils 0x15 little-endian", []string{"-l"}, binary.LittleEndian, 0x15, mtdutils},
		{"mtd-utils 0x15 big-endian", []string{"-b"}, binary.BigEndian, 0x15, mtdutils},
		// Vendors reused the ids: the other form under either id decodes too.
		{"props form under 0x08", []string{"-l"}, binary.LittleEndian, 0x08, mtdutils},
		{"bare form under 0x15", []string{"-b"}, binary.BigEndian, 0x15, openwrt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, n := imagetest.ReencodeJFFS2(t, imagetest.JFFS2(t, root, tc.args...), tc.bo, tc.compr, tc.enc)
			if n < 5 {
				t.Fatalf("only %d zlib nodes re-encoded", n)
			}
			tree := unpackBytes(t, img, Options{})
			l := findLayer(tree, "jffs2")
			if l == nil || l.Status != StatusUnpacked {
				t.Fatalf("jffs2 layer:\n%s", dumpLayers(tree))
			}
			checkSample(t, tree)
		})
	}
}

func TestJFFS2LZMACorruptNode(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	img, _ := imagetest.ReencodeJFFS2(t, imagetest.JFFS2(t, root, "-l"), binary.LittleEndian, 0x08, func(d []byte) []byte {
		if bytes.HasPrefix(d, []byte("BusyBox")) {
			return bytes.Repeat([]byte{0xa5}, 40) // garbage for /bin/busybox's first page
		}
		return imagetest.LZMARaw(t, d, 0, 0, 0, 0x2000, false)
	})
	tree := unpackBytes(t, img, Options{})
	l := findLayer(tree, "jffs2")
	if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "/bin/busybox") || !strings.Contains(l.Error, "lzma") {
		t.Fatalf("corrupt lzma node not reported against its file:\n%s", dumpLayers(tree))
	}
	if b, err := l.FS().ReadFile("/etc/shadow"); err != nil || !strings.HasPrefix(string(b), "root:$1$") {
		t.Errorf("the rest of the image was not kept: %q %v", b, err)
	}
}

func TestJFFS2NodeSizeBomb(t *testing.T) {
	t.Parallel()
	if _, err := jffs2Decompress(jffs2Data{compr: 1, dsize: 1 << 31}); err == nil {
		t.Error("a zero node claiming 2 GiB was expanded")
	}
}

func FuzzJFFS2LZMA(f *testing.F) {
	root := imagetest.Rootfs(f, map[string]imagetest.Entry{
		"etc/shadow": {Content: "root:$1$abc$xyz:19000:0:99999:7:::\n"},
		"bin/sh":     {Link: "busybox"},
		"bin/big":    {Content: strings.Repeat("0123456789abcdef", 600)},
	})
	for _, tc := range []struct {
		args  []string
		bo    binary.ByteOrder
		compr byte
		props bool
	}{
		{[]string{"-l"}, binary.LittleEndian, 0x08, false},
		{[]string{"-b"}, binary.BigEndian, 0x15, true},
	} {
		img, _ := imagetest.ReencodeJFFS2(f, imagetest.JFFS2(f, root, tc.args...), tc.bo, tc.compr, func(d []byte) []byte {
			if tc.props {
				return imagetest.LZMARaw(f, d, 3, 0, 2, 0x2000, true)
			}
			return imagetest.LZMARaw(f, d, 0, 0, 0, 0x2000, false)
		})
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, JFFS2{}, data) })
}
