package unpack

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
)

// metaStream maps the logical bytes of a run of uncompressed metadata
// blocks to their positions in the image, so fields that straddle a block
// boundary can be byte-swapped.
type metaStream struct{ pos []int }

func newMetaStream(t *testing.T, img []byte, start, end int) *metaStream {
	m := &metaStream{}
	for p := start; p < end; {
		h := int(binary.LittleEndian.Uint16(img[p:]))
		if h&0x8000 == 0 {
			t.Fatalf("metadata block at 0x%x is compressed; build with -noI -noId -noF", p)
		}
		n := h & 0x7fff
		for i := range n {
			m.pos = append(m.pos, p+2+i)
		}
		img[p], img[p+1] = img[p+1], img[p] // the block header itself
		p += 2 + n
	}
	return m
}

// swap reverses the size bytes at logical offset at; get reads them (LE,
// before swapping).
func (m *metaStream) swap(img []byte, at, size int) uint64 {
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(img[m.pos[at+i]])
	}
	for i := range size / 2 {
		a, b := m.pos[at+i], m.pos[at+size-1-i]
		img[a], img[b] = img[b], img[a]
	}
	return v
}

// toBigEndian rewrites a little-endian SquashFS 4.0 image with
// uncompressed metadata as the big-endian variant some vendors ship.
func toBigEndian(t *testing.T, le []byte) []byte {
	img := append([]byte(nil), le...)
	sb, _, err := parseSuperblock(img)
	if err != nil {
		t.Fatal(err)
	}
	u64 := func(p int) int { return int(binary.LittleEndian.Uint64(img[p:])) }
	// Where each table's metadata blocks start: the first index entry.
	fragBlocks, idBlocks := int(sb.fragTable), u64(int(sb.idTable))
	if sb.fragCount > 0 {
		fragBlocks = u64(int(sb.fragTable))
	}
	dirEnd := min(fragBlocks, idBlocks)

	ino := newMetaStream(t, img, int(sb.inodeTable), int(sb.dirTable))
	for at := 0; at < len(ino.pos); {
		typ := int(ino.swap(img, at, 2))
		for _, n := range []int{2, 2, 2, 4, 4} {
			ino.swap(img, at+2, n)
			at += n
		}
		at += 2
		fields := func(sizes ...int) {
			for _, n := range sizes {
				ino.swap(img, at, n)
				at += n
			}
		}
		switch typ {
		case 1:
			fields(4, 4, 2, 2, 4)
		case 8:
			fields(4, 4, 4, 4, 2, 2, 4)
		case 2, 9:
			var size, frag uint64
			if typ == 2 {
				ino.swap(img, at, 4) // blocks start
				frag = ino.swap(img, at+4, 4)
				ino.swap(img, at+8, 4) // fragment offset
				size = ino.swap(img, at+12, 4)
				at += 16
			} else {
				ino.swap(img, at, 8) // blocks start
				size = ino.swap(img, at+8, 8)
				ino.swap(img, at+16, 8) // sparse
				ino.swap(img, at+24, 4) // nlink
				frag = ino.swap(img, at+28, 4)
				ino.swap(img, at+32, 4) // fragment offset
				ino.swap(img, at+36, 4) // xattr
				at += 40
			}
			n := size / uint64(sb.blockSize)
			if frag == sqNoFragment && size%uint64(sb.blockSize) != 0 {
				n++
			}
			for range n {
				fields(4)
			}
		case 3, 10:
			ino.swap(img, at, 4)
			n := int(ino.swap(img, at+4, 4))
			at += 8 + n
			if typ == 10 {
				fields(4)
			}
		case 4, 5:
			fields(4, 4)
		case 6, 7:
			fields(4)
		default:
			t.Fatalf("inode type %d not handled by the test converter", typ)
		}
	}
	dir := newMetaStream(t, img, int(sb.dirTable), dirEnd)
	for at := 0; at < len(dir.pos); {
		count := int(dir.swap(img, at, 4)) + 1
		dir.swap(img, at+4, 4)
		dir.swap(img, at+8, 4)
		at += 12
		for range count {
			dir.swap(img, at, 2)
			dir.swap(img, at+2, 2)
			dir.swap(img, at+4, 2)
			n := int(dir.swap(img, at+6, 2)) + 1
			at += 8 + n
		}
	}
	if sb.fragCount > 0 {
		fr := newMetaStream(t, img, fragBlocks, int(sb.fragTable))
		for at := 0; at+16 <= len(fr.pos); at += 16 {
			fr.swap(img, at, 8)
			fr.swap(img, at+8, 4)
			fr.swap(img, at+12, 4)
		}
		for i := range (int(sb.fragCount)*16 + sqMetaSize - 1) / sqMetaSize {
			p := int(sb.fragTable) + 8*i
			binary.BigEndian.PutUint64(img[p:], binary.LittleEndian.Uint64(img[p:]))
		}
	}
	ids := newMetaStream(t, img, idBlocks, int(sb.idTable))
	for at := 0; at+4 <= len(ids.pos); at += 4 {
		ids.swap(img, at, 4)
	}
	idCount := int(binary.LittleEndian.Uint16(img[26:]))
	for i := range (idCount*4 + sqMetaSize - 1) / sqMetaSize {
		p := int(sb.idTable) + 8*i
		binary.BigEndian.PutUint64(img[p:], binary.LittleEndian.Uint64(img[p:]))
	}
	copy(img, "sqsh")
	for _, p := range []int{4, 8, 12, 16} {
		binary.BigEndian.PutUint32(img[p:], binary.LittleEndian.Uint32(img[p:]))
	}
	for _, p := range []int{20, 22, 24, 26, 28, 30} {
		binary.BigEndian.PutUint16(img[p:], binary.LittleEndian.Uint16(img[p:]))
	}
	for p := 32; p < 96; p += 8 {
		binary.BigEndian.PutUint64(img[p:], binary.LittleEndian.Uint64(img[p:]))
	}
	return img
}

func TestSquashFSBigEndian(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	// A hard link makes mksquashfs write an extended file inode (type 9).
	if err := os.Link(filepath.Join(root, "etc/passwd"), filepath.Join(root, "etc/passwd.link")); err != nil {
		t.Fatal(err)
	}
	le := imagetest.Squashfs(t, root, "gzip", "-noI", "-noId", "-noF", "-no-xattrs", "-no-exports")
	be := toBigEndian(t, le)
	tree := unpackBytes(t, be, Options{})
	l := findLayer(tree, "squashfs")
	if l == nil || l.Status != StatusUnpacked || l.Info["endian"] != "big" {
		t.Fatalf("big-endian squashfs:\n%s", dumpLayers(tree))
	}
	fs := checkSample(t, tree)
	if b, err := fs.ReadFile("/etc/passwd.link"); err != nil || string(b) != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("hard link: %q %v", b, err)
	}
}
