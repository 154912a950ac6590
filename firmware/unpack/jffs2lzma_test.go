package unpack

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
)

// lzmaRaw compresses data as the patched kernels store it: props (lc, lp,
// pb) and dictionary dict, a known size (so no end marker). withProps keeps
// the 5 properties bytes in front (mtd-utils' id 0x15 form); otherwise the
// bare stream (OpenWrt's id 0x08 form).
func lzmaRaw(t testing.TB, data []byte, lc, lp, pb, dict int, withProps bool) []byte {
	t.Helper()
	var b bytes.Buffer
	cfg := lzma.WriterConfig{Properties: &lzma.Properties{LC: lc, LP: lp, PB: pb}, DictCap: dict, Size: int64(len(data))}
	zw, err := cfg.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	alone := b.Bytes() // props, dict (4 bytes), size (8 bytes), stream
	if withProps {
		return append(alone[:5:5], alone[13:]...)
	}
	return alone[13:]
}

// reencodeJFFS2 rewrites every zlib-compressed data node of a JFFS2 image
// with compression id compr and the bytes enc makes of the node's data,
// fixing lengths and CRCs, and returns the new image and how many nodes
// it rewrote. Other nodes are copied as they are.
func reencodeJFFS2(t testing.TB, img []byte, bo binary.ByteOrder, compr byte, enc func([]byte) []byte) ([]byte, int) {
	t.Helper()
	var out []byte
	rewritten := 0
	for pos := 0; pos+12 <= len(img); {
		if bo.Uint16(img[pos:]) != jffs2Magic {
			pos += 4 // padding between nodes and erase blocks
			continue
		}
		totlen := int(bo.Uint32(img[pos+4:]))
		node := img[pos : pos+totlen]
		pos += (totlen + 3) &^ 3
		if bo.Uint16(node[2:]) != jffs2Inode || node[56] != 6 {
			out = append(out, node...)
		} else {
			zr, err := zlib.NewReader(bytes.NewReader(node[jffs2InodeSize:]))
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(zr)
			if err != nil || len(data) != int(bo.Uint32(node[52:])) {
				t.Fatalf("zlib node: %d bytes, %v", len(data), err)
			}
			payload := enc(data)
			hdr := bytes.Clone(node[:jffs2InodeSize])
			bo.PutUint32(hdr[4:], uint32(jffs2InodeSize+len(payload))) // totlen
			bo.PutUint32(hdr[8:], jffs2CRC(hdr[:8]))                   // hdr_crc
			bo.PutUint32(hdr[48:], uint32(len(payload)))               // csize
			hdr[56], hdr[57] = compr, compr                            // compr, usercompr
			bo.PutUint32(hdr[60:], jffs2CRC(payload))                  // data_crc
			bo.PutUint32(hdr[64:], jffs2CRC(hdr[:60]))                 // node_crc
			out = append(append(out, hdr...), payload...)
			rewritten++
		}
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out, rewritten
}

// Debian's mkfs.jffs2 has no LZMA: build zlib images with it and re-encode
// their data nodes the way LZMA-patched kernels write them.
func TestJFFS2LZMA(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	openwrt := func(d []byte) []byte { return lzmaRaw(t, d, 0, 0, 0, 0x2000, false) }
	mtdutils := func(d []byte) []byte { return lzmaRaw(t, d, 3, 0, 2, 0x2000, true) }
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
			img, n := reencodeJFFS2(t, imagetest.JFFS2(t, root, tc.args...), tc.bo, tc.compr, tc.enc)
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
	img, _ := reencodeJFFS2(t, imagetest.JFFS2(t, root, "-l"), binary.LittleEndian, 0x08, func(d []byte) []byte {
		if bytes.HasPrefix(d, []byte("BusyBox")) {
			return bytes.Repeat([]byte{0xa5}, 40) // garbage for /bin/busybox's first page
		}
		return lzmaRaw(t, d, 0, 0, 0, 0x2000, false)
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
		img, _ := reencodeJFFS2(f, imagetest.JFFS2(f, root, tc.args...), tc.bo, tc.compr, func(d []byte) []byte {
			if tc.props {
				return lzmaRaw(f, d, 3, 0, 2, 0x2000, true)
			}
			return lzmaRaw(f, d, 0, 0, 0, 0x2000, false)
		})
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, JFFS2{}, data) })
}
