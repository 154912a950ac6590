package imagetest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	"github.com/ulikunitz/xz/lzma"
)

// JFFS2 node layout (linux/jffs2.h), written here independently of the
// reader in package unpack.
const (
	jffs2Magic     = 0x1985
	jffs2NodeInode = 0xe002
	jffs2InodeSize = 68 // sizeof(struct jffs2_raw_inode)
	jffs2ComprZlib = 6
)

// JFFS2 LZMA compression ids: LZMA-patched kernels and tools added two
// incompatible ones.
const (
	// JFFS2LZMAOpenWrt is JFFS2_COMPR_LZMA in OpenWrt's kernel patch: a
	// bare LZMA stream with the fixed properties lc=0 lp=0 pb=0 and an
	// 8 KiB dictionary, nothing stored in front.
	JFFS2LZMAOpenWrt = 0x08
	// JFFS2LZMAProps is JFFS2_COMPR_LZMA in mtd-utils' LZMA patch: the 5
	// properties bytes (lc=3 lp=0 pb=2, 8 KiB dictionary), then the
	// stream, no size field.
	JFFS2LZMAProps = 0x15
)

// jffs2CRC is the CRC-32 JFFS2 stores: seed 0, no final inversion.
func jffs2CRC(b []byte) uint32 { return ^crc32.Update(0xffffffff, crc32.IEEETable, b) }

// LZMARaw compresses data as LZMA-patched kernels store it: properties
// (lc, lp, pb) and a dictionary of dict bytes, a known size (so no end
// marker). withProps keeps the 5 properties bytes in front (mtd-utils' id
// 0x15 form); otherwise it returns the bare stream (OpenWrt's id 0x08
// form).
func LZMARaw(t testing.TB, data []byte, lc, lp, pb, dict int, withProps bool) []byte {
	t.Helper()
	var b bytes.Buffer
	cfg := lzma.WriterConfig{Properties: &lzma.Properties{LC: lc, LP: lp, PB: pb}, DictCap: dict, Size: int64(len(data))}
	zw, err := cfg.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	alone := b.Bytes() // props, dict (4 bytes), size (8 bytes), stream
	if withProps {
		return append(alone[:5:5], alone[13:]...)
	}
	return alone[13:]
}

// ReencodeJFFS2 rewrites every zlib-compressed data node of the JFFS2
// image img (byte order bo) with compression id compr and the bytes enc
// makes of the node's uncompressed data, fixing lengths and CRCs. It
// returns the new image and how many nodes it rewrote. Other nodes are
// copied as they are; padding between nodes and erase blocks is dropped.
func ReencodeJFFS2(t testing.TB, img []byte, bo binary.ByteOrder, compr byte, enc func([]byte) []byte) ([]byte, int) {
	t.Helper()
	var out []byte
	rewritten := 0
	for pos := 0; pos+12 <= len(img); {
		if bo.Uint16(img[pos:]) != jffs2Magic {
			pos += 4 // padding between nodes and erase blocks
			continue
		}
		totlen := int(bo.Uint32(img[pos+4:]))
		if totlen < 12 || pos+totlen > len(img) {
			t.Fatalf("jffs2 node at 0x%x: length %d", pos, totlen)
		}
		node := img[pos : pos+totlen]
		pos += (totlen + 3) &^ 3
		if bo.Uint16(node[2:]) != jffs2NodeInode || totlen < jffs2InodeSize || node[56] != jffs2ComprZlib {
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

// JFFS2LZMA builds a JFFS2 image of dir whose data nodes are LZMA, as
// LZMA-patched kernels write them: Debian's mkfs.jffs2 has no LZMA, so it
// builds a zlib image (extra holds further mkfs.jffs2 flags) and
// ReencodeJFFS2 re-encodes its data nodes with compression id id,
// JFFS2LZMAOpenWrt (bare stream, lc=0 lp=0 pb=0) or JFFS2LZMAProps
// (properties in front, lc=3 lp=0 pb=2).
func JFFS2LZMA(t testing.TB, dir string, bigEndian bool, id byte, extra ...string) []byte {
	t.Helper()
	var bo binary.ByteOrder = binary.LittleEndian
	args := []string{"-l"}
	if bigEndian {
		bo, args = binary.BigEndian, []string{"-b"}
	}
	var enc func([]byte) []byte
	switch id {
	case JFFS2LZMAOpenWrt:
		enc = func(d []byte) []byte { return LZMARaw(t, d, 0, 0, 0, 0x2000, false) }
	case JFFS2LZMAProps:
		enc = func(d []byte) []byte { return LZMARaw(t, d, 3, 0, 2, 0x2000, true) }
	default:
		t.Fatalf("JFFS2LZMA: compression id 0x%x is not an LZMA id", id)
	}
	img, n := ReencodeJFFS2(t, JFFS2(t, dir, append(args, extra...)...), bo, id, enc)
	if n == 0 {
		t.Fatalf("JFFS2LZMA: no zlib data node to re-encode")
	}
	return img
}
