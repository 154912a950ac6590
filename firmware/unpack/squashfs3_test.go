package unpack

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
)

// A small SquashFS 2.x/3.x writer for the tests: no Debian tool builds
// these images any more. It is written from squashfs-tools'
// squashfs_compat.h like the reader, but deliberately shares none of the
// reader's code: every bit-packed structure is assembled with explicit
// shifts per byte order (GCC fills bit-fields from the least significant
// bit on little-endian machines and from the most significant bit on
// big-endian ones), while the reader uses generic bit positions. The
// hand-assembled hex fixtures in testdata/squashfs3 check both against the
// documentation, so the two cannot share one misunderstanding unnoticed.

type sqwOptions struct {
	major, minor uint16
	be           bool
	// comp is "gzip" (zlib), "lzma" (lzma_alone with its size field, the
	// Broadcom kernels' form) or "lzma-nosize" (props + stream, no size).
	comp      string
	blockSize int    // default 65536
	magic     string // default "hsqs" / "sqsh" for the byte order
	check     bool   // SQUASHFS_CHECK: marker byte after each metadata length
	extended  bool   // type 8/9 inodes for directories and regular files
	fragEach  bool   // one fragment block per file: a multi-block fragment table
	rawMeta   bool   // metadata blocks stored uncompressed (for surgical corruption)
	sparse    bool   // all-zero full blocks stored as sparse (size 0)
}

type sqwNode struct {
	name     string
	perm     uint16
	kind     byte // 'd', 'f' or 'l'
	data     []byte
	link     string
	children []*sqwNode
	ino      uint32
}

// sqwTree reads the host folder dir into a tree, entries sorted by name.
func sqwTree(t testing.TB, dir string) *sqwNode {
	t.Helper()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := &sqwNode{name: filepath.Base(dir), perm: uint16(fi.Mode().Perm())}
	switch {
	case fi.IsDir():
		n.kind = 'd'
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			n.children = append(n.children, sqwTree(t, filepath.Join(dir, e.Name())))
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		n.kind = 'l'
		if n.link, err = os.Readlink(dir); err != nil {
			t.Fatal(err)
		}
	default:
		n.kind = 'f'
		if n.data, err = os.ReadFile(dir); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

type sqw struct {
	t      testing.TB
	o      sqwOptions
	bo     binary.ByteOrder
	img    []byte
	frag   []byte      // pending fragment block
	frags  [][2]uint64 // written fragments: start, size word
	inodes sqwMeta
	dirs   sqwMeta
	count  uint32
}

// sqwMeta accumulates a metadata table: 8 KiB blocks, each compressed
// unless that does not help, behind a 2-byte length (bit 15: stored).
type sqwMeta struct {
	w   *sqw
	out []byte
	cur []byte
}

// pos is where the next byte goes: the table-relative start of the block
// being filled and the offset inside it.
func (m *sqwMeta) pos() (uint64, int) { return uint64(len(m.out)), len(m.cur) }

func (m *sqwMeta) write(b []byte) {
	m.cur = append(m.cur, b...)
	for len(m.cur) >= 8192 {
		m.out = m.w.metaBlock(m.out, m.cur[:8192])
		m.cur = append([]byte(nil), m.cur[8192:]...)
	}
}

func (m *sqwMeta) finish() []byte {
	if len(m.cur) > 0 {
		m.out = m.w.metaBlock(m.out, m.cur)
		m.cur = nil
	}
	return m.out
}

func (w *sqw) metaBlock(out, data []byte) []byte {
	c := w.compress(data)
	var hdr [2]byte
	if w.o.rawMeta || len(c) >= len(data) {
		c = data
		w.bo.PutUint16(hdr[:], uint16(len(data))|0x8000)
	} else {
		w.bo.PutUint16(hdr[:], uint16(len(c)))
	}
	out = append(out, hdr[:]...)
	if w.o.check {
		out = append(out, 0xff) // SQUASHFS_MARKER_BYTE
	}
	return append(out, c...)
}

func (w *sqw) compress(data []byte) []byte {
	var b bytes.Buffer
	switch w.o.comp {
	case "gzip":
		zw, _ := zlib.NewWriterLevel(&b, zlib.BestCompression)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			w.t.Fatal(err)
		}
		return b.Bytes()
	case "lzma", "lzma-nosize":
		cfg := lzma.WriterConfig{Properties: &lzma.Properties{LC: 3, LP: 0, PB: 2}, DictCap: 1 << 16, Size: int64(len(data))}
		zw, err := cfg.NewWriter(&b)
		if err != nil {
			w.t.Fatal(err)
		}
		zw.Write(data)
		if err := zw.Close(); err != nil {
			w.t.Fatal(err)
		}
		out := b.Bytes()
		if w.o.comp == "lzma-nosize" {
			out = append(out[:5:5], out[13:]...)
		}
		return out
	}
	w.t.Fatalf("compression %q", w.o.comp)
	return nil
}

func (w *sqw) put16(v uint16) []byte { b := make([]byte, 2); w.bo.PutUint16(b, v); return b }
func (w *sqw) put32(v uint32) []byte { b := make([]byte, 4); w.bo.PutUint32(b, v); return b }
func (w *sqw) put64(v uint64) []byte { b := make([]byte, 8); w.bo.PutUint64(b, v); return b }

// putN stores the low n bytes of v in the image's byte order: a bit-field
// run of n*8 bits.
func (w *sqw) putN(v uint64, n int) []byte {
	b := w.put64(v)
	if w.o.be {
		return b[8-n:]
	}
	return b[:n]
}

// base is the header every inode starts with: inode_type:4 mode:12 uid:8
// guid:8, and in 3.x mtime and inode_number.
func (w *sqw) base(typ uint16, n *sqwNode) []byte {
	const uid, guid = 0, 255 // uid table index 0; guid 255 = "same as uid"
	var word uint32
	if w.o.be {
		word = uint32(typ)<<28 | uint32(n.perm)<<16 | uid<<8 | guid
	} else {
		word = uint32(typ) | uint32(n.perm)<<4 | uid<<16 | guid<<24
	}
	b := w.put32(word)
	if w.o.major == 3 {
		b = append(b, w.put32(1234567890)...) // mtime
		b = append(b, w.put32(n.ino)...)
	}
	return b
}

// number assigns inode numbers children first, as mksquashfs does.
func (w *sqw) number(n *sqwNode) {
	for _, c := range n.children {
		w.number(c)
	}
	w.count++
	n.ino = w.count
}

// data writes a file's blocks (and queues its tail as a fragment) and
// returns the start, the block size words, the fragment index and offset.
func (w *sqw) data(b []byte) (start uint64, sizes []uint32, frag, off uint32) {
	bs := w.o.blockSize
	start, frag = uint64(len(w.img)), 0xffffffff
	full := len(b) / bs * bs
	for i := 0; i < full; i += bs {
		blk := b[i : i+bs]
		if w.o.sparse && bytes.Count(blk, []byte{0}) == bs {
			sizes = append(sizes, 0)
			continue
		}
		c := w.compress(blk)
		if len(c) >= bs {
			w.img = append(w.img, blk...)
			sizes = append(sizes, uint32(bs)|1<<24)
		} else {
			w.img = append(w.img, c...)
			sizes = append(sizes, uint32(len(c)))
		}
	}
	if tail := b[full:]; len(tail) > 0 {
		if len(w.frag)+len(tail) > bs {
			w.flushFrag()
		}
		frag, off = uint32(len(w.frags)), uint32(len(w.frag))
		w.frag = append(w.frag, tail...)
		if w.o.fragEach {
			w.flushFrag()
		}
	}
	return start, sizes, frag, off
}

func (w *sqw) flushFrag() {
	if len(w.frag) == 0 {
		return
	}
	c := w.compress(w.frag)
	size := uint64(len(c))
	if len(c) >= len(w.frag) {
		c, size = w.frag, uint64(len(w.frag))|1<<24
	}
	w.frags = append(w.frags, [2]uint64{uint64(len(w.img)), size})
	w.img = append(w.img, c...)
	w.frag = nil
}

type sqwEntry struct {
	name string
	ref  uint64 // inode block << 16 | offset
	typ  uint16 // basic type for the entry
	ino  uint32
}

// file, symlink and dir write an inode and return its entry.
func (w *sqw) file(n *sqwNode) sqwEntry {
	start, sizes, frag, off := w.data(n.data)
	blk, o := w.inodes.pos()
	size := uint64(len(n.data))
	var b []byte
	switch {
	case w.o.major == 2:
		b = append(w.base(2, n), w.put32(1234567890)...) // mtime
		b = append(b, w.put32(uint32(start))...)
		b = append(b, w.put32(frag)...)
		b = append(b, w.put32(off)...)
		b = append(b, w.put32(uint32(size))...)
	case w.o.extended:
		b = append(w.base(9, n), w.put32(1)...) // nlink
		b = append(b, w.put64(start)...)
		b = append(b, w.put32(frag)...)
		b = append(b, w.put32(off)...)
		b = append(b, w.put64(size)...)
	default:
		b = append(w.base(2, n), w.put64(start)...)
		b = append(b, w.put32(frag)...)
		b = append(b, w.put32(off)...)
		b = append(b, w.put32(uint32(size))...)
	}
	for _, s := range sizes {
		b = append(b, w.put32(s)...)
	}
	w.inodes.write(b)
	return sqwEntry{n.name, blk<<16 | uint64(o), 2, n.ino}
}

func (w *sqw) symlink(n *sqwNode) sqwEntry {
	blk, o := w.inodes.pos()
	b := w.base(3, n)
	if w.o.major == 3 {
		b = append(b, w.put32(1)...) // nlink
	}
	b = append(b, w.put16(uint16(len(n.link)))...)
	w.inodes.write(append(b, n.link...))
	return sqwEntry{n.name, blk<<16 | uint64(o), 3, n.ino}
}

func (w *sqw) dir(n *sqwNode, parent uint32) sqwEntry {
	var ents []sqwEntry
	subdirs := 0
	for _, c := range n.children {
		switch c.kind {
		case 'd':
			ents = append(ents, w.dir(c, n.ino))
			subdirs++
		case 'l':
			ents = append(ents, w.symlink(c))
		default:
			ents = append(ents, w.file(c))
		}
	}
	// The listing: runs of entries whose inodes share a metadata block,
	// at most 256 per header.
	dblk, doff := w.dirs.pos()
	listed := 0
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && j-i < 256 && ents[j].ref>>16 == ents[i].ref>>16 {
			j++
		}
		var h []byte
		count, start := uint32(j-i-1), uint32(ents[i].ref>>16)
		if w.o.major == 2 { // count:8 start_block:24
			if w.o.be {
				h = w.put32(count<<24 | start)
			} else {
				h = w.put32(count | start<<8)
			}
		} else { // count:8 start_block:32 inode_number:32
			h = append([]byte{byte(count)}, w.put32(start)...)
			h = append(h, w.put32(ents[i].ino)...)
		}
		w.dirs.write(h)
		listed += len(h)
		for _, e := range ents[i:j] {
			off := uint16(e.ref & 0xffff)
			var word uint16 // offset:13 type:3
			if w.o.be {
				word = off<<3 | e.typ
			} else {
				word = off | e.typ<<13
			}
			b := append(w.put16(word), byte(len(e.name)-1))
			if w.o.major == 3 {
				b = append(b, w.put16(uint16(int16(e.ino-ents[i].ino)))...)
			}
			b = append(b, e.name...)
			w.dirs.write(b)
			listed += len(b)
		}
		i = j
	}
	size := uint64(listed)
	if w.o.major == 3 {
		size += 3 // "." and ".."
	}
	blk, o := w.inodes.pos()
	var b []byte
	switch {
	case w.o.major == 2 && !w.o.extended: // file_size:19 offset:13 mtime start_block:24
		b = w.base(1, n)
		if w.o.be {
			b = append(b, w.put32(uint32(size)<<13|uint32(doff))...)
		} else {
			b = append(b, w.put32(uint32(size)|uint32(doff)<<19)...)
		}
		b = append(b, w.put32(1234567890)...)
		b = append(b, w.putN(dblk, 3)...)
	case w.o.major == 2: // file_size:27 offset:13 mtime start_block:24 i_count:16
		b = w.base(8, n)
		if w.o.be {
			b = append(b, w.putN(size<<13|uint64(doff), 5)...)
		} else {
			b = append(b, w.putN(size|uint64(doff)<<27, 5)...)
		}
		b = append(b, w.put32(1234567890)...)
		b = append(b, w.putN(dblk, 3)...)
		b = append(b, w.put16(0)...)
	case !w.o.extended: // nlink file_size:19 offset:13 start_block parent_inode
		b = append(w.base(1, n), w.put32(uint32(2+subdirs))...)
		if w.o.be {
			b = append(b, w.put32(uint32(size)<<13|uint32(doff))...)
		} else {
			b = append(b, w.put32(uint32(size)|uint32(doff)<<19)...)
		}
		b = append(b, w.put32(uint32(dblk))...)
		b = append(b, w.put32(parent)...)
	default: // nlink file_size:27 offset:13 start_block i_count:16 parent_inode
		b = append(w.base(8, n), w.put32(uint32(2+subdirs))...)
		if w.o.be {
			b = append(b, w.putN(size<<13|uint64(doff), 5)...)
		} else {
			b = append(b, w.putN(size|uint64(doff)<<27, 5)...)
		}
		b = append(b, w.put32(uint32(dblk))...)
		b = append(b, w.put16(0)...)
		b = append(b, w.put32(parent)...)
	}
	w.inodes.write(b)
	return sqwEntry{n.name, blk<<16 | uint64(o), 1, n.ino}
}

// buildSquash3 builds a SquashFS 2.x/3.x image of the host folder root.
func buildSquash3(t testing.TB, root string, o sqwOptions) []byte {
	t.Helper()
	if o.blockSize == 0 {
		o.blockSize = 65536
	}
	w := &sqw{t: t, o: o, bo: binary.LittleEndian}
	if o.be {
		w.bo = binary.BigEndian
	}
	w.inodes.w, w.dirs.w = w, w
	sbSize := 119 // sizeof(struct squashfs_super_block_3)
	if o.major == 2 {
		sbSize = 63
	}
	w.img = make([]byte, sbSize)
	tree := sqwTree(t, root)
	w.number(tree)
	rootEnt := w.dir(tree, w.count+1)
	w.flushFrag()

	inodeTable := uint64(len(w.img))
	w.img = append(w.img, w.inodes.finish()...)
	dirTable := uint64(len(w.img))
	w.img = append(w.img, w.dirs.finish()...)
	// Fragment table: entries in 8 KiB metadata blocks, then the index of
	// those blocks' positions.
	var entries []byte
	for _, f := range w.frags {
		if o.major == 2 {
			entries = append(entries, w.put32(uint32(f[0]))...)
			entries = append(entries, w.put32(uint32(f[1]))...)
		} else {
			entries = append(entries, w.put64(f[0])...)
			entries = append(entries, w.put32(uint32(f[1]))...)
			entries = append(entries, w.put32(0)...) // pending
		}
	}
	var index []byte
	for i := 0; i < len(entries); i += 8192 {
		pos := uint64(len(w.img))
		if o.major == 2 {
			index = append(index, w.put32(uint32(pos))...)
		} else {
			index = append(index, w.put64(pos)...)
		}
		w.img = w.metaBlock(w.img, entries[i:min(len(entries), i+8192)])
	}
	fragTable := uint64(len(w.img))
	w.img = append(w.img, index...)
	uidStart := uint64(len(w.img))
	w.img = append(w.img, w.put32(0)...) // one uid: root
	used := uint64(len(w.img))

	// The superblock at the byte offsets of squashfs_super_block_3.
	sb := w.img[:sbSize]
	magic := o.magic
	if magic == "" {
		magic = map[bool]string{false: "hsqs", true: "sqsh"}[o.be]
	}
	copy(sb[0:], magic)
	copy(sb[4:], w.put32(w.count))
	if o.major == 2 {
		copy(sb[8:], w.put32(uint32(used)))
		copy(sb[12:], w.put32(uint32(uidStart)))
		copy(sb[16:], w.put32(uint32(used))) // guid_start: no guids
		copy(sb[20:], w.put32(uint32(inodeTable)))
		copy(sb[24:], w.put32(uint32(dirTable)))
	}
	copy(sb[28:], w.put16(o.major))
	copy(sb[30:], w.put16(o.minor))
	copy(sb[32:], w.put16(uint16(o.blockSize))) // block_size_1 (0 for 64 KiB)
	copy(sb[34:], w.put16(uint16(bitsLen(o.blockSize)-1)))
	if o.check {
		sb[36] = 1 << 2
	}
	sb[37], sb[38] = 1, 0 // no_uids, no_guids
	copy(sb[39:], w.put32(1234567890))
	copy(sb[43:], w.put64(rootEnt.ref))
	copy(sb[51:], w.put32(uint32(o.blockSize)))
	copy(sb[55:], w.put32(uint32(len(w.frags))))
	if o.major == 2 {
		copy(sb[59:], w.put32(uint32(fragTable)))
	} else {
		copy(sb[63:], w.put64(used))
		copy(sb[71:], w.put64(uidStart))
		copy(sb[79:], w.put64(used))
		copy(sb[87:], w.put64(inodeTable))
		copy(sb[95:], w.put64(dirTable))
		copy(sb[103:], w.put64(fragTable))
		copy(sb[111:], w.put64(^uint64(0))) // no export table
	}
	// mksquashfs pads the image to 4 KiB.
	if r := len(w.img) % 4096; r != 0 {
		w.img = append(w.img, make([]byte, 4096-r)...)
	}
	return w.img
}

func bitsLen(n int) int {
	l := 0
	for ; n > 0; n >>= 1 {
		l++
	}
	return l
}

// assertSameTree checks that s holds exactly the entries of the host
// folder root: same names, types, permissions, contents and link targets.
func assertSameTree(t *testing.T, s *FS, root string) {
	t.Helper()
	want := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		name := "/" + filepath.ToSlash(rel)
		want[name] = true
		fi, _ := os.Lstat(p)
		got, err := s.Lstat(name)
		if err != nil {
			t.Errorf("%s missing: %v", name, err)
			return nil
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, _ := os.Readlink(p)
			if got.Mode&fs.ModeSymlink == 0 || got.Link != link {
				t.Errorf("%s = %v -> %q, want a link to %q", name, got.Mode, got.Link, link)
			}
		case fi.IsDir():
			if !got.Mode.IsDir() {
				t.Errorf("%s = %v, want a folder", name, got.Mode)
			}
		default:
			data, _ := os.ReadFile(p)
			if !got.Mode.IsRegular() || !bytes.Equal(got.Data(), data) {
				t.Errorf("%s: %v, %d bytes; want a regular file of %d bytes", name, got.Mode, len(got.Data()), len(data))
			}
			if got.Mode.Perm() != fi.Mode().Perm() {
				t.Errorf("%s mode %v, want %v", name, got.Mode.Perm(), fi.Mode().Perm())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Files() {
		if !want[f.Name] {
			t.Errorf("unexpected entry %s", f.Name)
		}
	}
}

// sq3Layer unpacks img and returns its SquashFS layer, which must have
// unpacked cleanly.
func sq3Layer(t *testing.T, img []byte) *Layer {
	t.Helper()
	tree := unpackBytes(t, img, Options{})
	l := findLayer(tree, "squashfs")
	if l == nil || l.Status != StatusUnpacked {
		t.Fatalf("squashfs layer missing or failed:\n%s", dumpLayers(tree))
	}
	return l
}

func TestSquashFS3And2(t *testing.T) {
	t.Parallel()
	// sampleRoot: folders, a file spanning several blocks, small files in
	// fragments, relative and absolute symlinks, an empty file and folder,
	// and /etc/shadow with a known hash.
	root := sampleRoot(t)
	for _, tc := range []struct {
		name string
		o    sqwOptions
		comp string // expected compression info
	}{
		{"3.1 BE lzma (Broadcom)", sqwOptions{major: 3, minor: 1, be: true, comp: "lzma"}, "lzma"},
		{"3.1 BE lzma without size field, qshs magic", sqwOptions{major: 3, minor: 1, be: true, comp: "lzma-nosize", magic: "qshs"}, "lzma"},
		{"3.1 BE gzip", sqwOptions{major: 3, minor: 1, be: true, comp: "gzip"}, "gzip"},
		{"3.1 BE gzip extended inodes, check data", sqwOptions{major: 3, minor: 1, be: true, comp: "gzip", extended: true, check: true}, "gzip"},
		{"3.1 LE gzip 4K blocks", sqwOptions{major: 3, minor: 1, comp: "gzip", blockSize: 4096}, "gzip"},
		{"3.1 LE lzma extended, shsq magic", sqwOptions{major: 3, minor: 1, comp: "lzma", extended: true, magic: "shsq"}, "lzma"},
		{"3.0 BE gzip DD-WRT magic", sqwOptions{major: 3, minor: 0, be: true, comp: "gzip", magic: "tqsh"}, "gzip"},
		{"2.1 BE gzip", sqwOptions{major: 2, minor: 1, be: true, comp: "gzip"}, "gzip"},
		{"2.1 BE lzma extended dirs", sqwOptions{major: 2, minor: 1, be: true, comp: "lzma", extended: true}, "lzma"},
		{"2.1 LE gzip 4K blocks", sqwOptions{major: 2, minor: 1, comp: "gzip", blockSize: 4096}, "gzip"},
		{"2.0 LE gzip check data", sqwOptions{major: 2, minor: 0, comp: "gzip", check: true}, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := buildSquash3(t, root, tc.o)
			sb, _, err := parseSuperblock(img)
			if err != nil {
				t.Fatal(err)
			}
			l := sq3Layer(t, img)
			endian := map[bool]string{false: "little", true: "big"}[tc.o.be]
			if l.Info["version"] != fmt.Sprintf("%d.%d", tc.o.major, tc.o.minor) || l.Info["endian"] != endian || l.Info["compression"] != tc.comp {
				t.Errorf("layer info %v", l.Info)
			}
			if vendor := map[string]string{"qshs": "broadcom", "shsq": "broadcom", "tqsh": "dd-wrt"}[tc.o.magic]; l.Info["magic"] != vendor {
				t.Errorf("magic info %q, want %q", l.Info["magic"], vendor)
			}
			if l.Offset != 0 || l.Size != int64(sb.bytesUsed) {
				t.Errorf("layer at %d size %d, want 0 and %d", l.Offset, l.Size, sb.bytesUsed)
			}
			assertSameTree(t, l.FS(), root)
			if b, err := l.FS().ReadFile("/etc/shadow"); err != nil || string(b) != "root:$1$abc$xyz:19000:0:99999:7:::\n" {
				t.Errorf("/etc/shadow = %q, %v", b, err)
			}
			if b, err := l.FS().ReadFile("/var/passwd"); err != nil || !strings.HasPrefix(string(b), "root:x:0:0") {
				t.Errorf("absolute link /var/passwd resolved to %q, %v", b, err)
			}
		})
	}
}

// A directory with hundreds of entries: listings and inodes span several
// metadata blocks, headers split at 256 entries and at inode block
// changes, and (one fragment block per file) the fragment table needs more
// than one metadata block.
func TestSquashFS3ManyEntries(t *testing.T) {
	t.Parallel()
	entries := map[string]imagetest.Entry{"etc/shadow": {Content: "admin:$1$salt$hash:0:0:99999:7:::\n", Mode: 0o600}}
	for i := range 1100 {
		entries[path.Join("www", strings.Repeat("x", i%40)+hex.EncodeToString([]byte{byte(i >> 8), byte(i)}))] = imagetest.Entry{Content: strings.Repeat("w", i%97+1)}
	}
	entries["zeros"] = imagetest.Entry{Content: string(make([]byte, 3*4096)) + "end"}
	root := imagetest.Rootfs(t, entries)
	for _, o := range []sqwOptions{
		{major: 3, minor: 1, be: true, comp: "gzip", fragEach: true, blockSize: 4096, sparse: true},
		{major: 2, minor: 1, comp: "gzip", fragEach: true, blockSize: 4096},
	} {
		img := buildSquash3(t, root, o)
		sb, bo, err := parseSuperblock(img)
		if err != nil {
			t.Fatal(err)
		}
		entry := map[uint16]uint32{2: 8, 3: 16}[o.major]
		firstInodeBlock := 2 + uint64(bo.Uint16(img[sb.inodeTable:])&0x7fff)
		if sb.fragCount <= 8192/entry || sb.inodeTable+firstInodeBlock >= sb.dirTable {
			t.Fatalf("%d fragments, first inode block of %d bytes: the tables fit one block", sb.fragCount, firstInodeBlock)
		}
		assertSameTree(t, sq3Layer(t, img).FS(), root)
	}
}

// The Broadcom layout: a uImage kernel, 0xff padding, then a big-endian
// LZMA SquashFS 3.1 root, found by carving.
func TestSquashFS3InVendorImage(t *testing.T) {
	t.Parallel()
	// sampleRoot: folders, a file spanning several blocks, small files in
	// fragments, relative and absolute symlinks, an empty file and folder,
	// and /etc/shadow with a known hash.
	root := sampleRoot(t)
	kernel := imagetest.UImage(t, bytes.Repeat([]byte("Linux version 2.6.21.5 (broadcom) #1\n"), 500), "kernel", "none", "Linux-2.6.21.5")
	img := imagetest.Concat(0x10000, kernel, buildSquash3(t, root, sqwOptions{major: 3, minor: 1, be: true, comp: "lzma"}))
	tree := unpackBytes(t, img, Options{})
	l := findLayer(tree, "squashfs")
	if l == nil || l.Status != StatusUnpacked || l.Offset != 0x10000 {
		t.Fatalf("squashfs 3.1 not carved at 0x10000:\n%s", dumpLayers(tree))
	}
	checkSample(t, tree)
}

// readHexFixture reads a testdata hex file: hex bytes, with "#" comments.
func readHexFixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "squashfs3", name))
	if err != nil {
		t.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// The fixtures were assembled by hand from squashfs_compat.h (see the
// comments in each file); they pin the reader's bit positions and byte
// orders to the documentation rather than to the test writer.
func TestSquashFS3Fixtures(t *testing.T) {
	t.Parallel()
	t.Run("3.1 big-endian superblock", func(t *testing.T) {
		sb, bo, err := parseSuperblock(readHexFixture(t, "superblock-3.1-be.hex"))
		if err != nil || bo != binary.BigEndian {
			t.Fatalf("parse: %v, %v", bo, err)
		}
		want := superblock{inodes: 12, blockSize: 65536, fragCount: 3, blockLog: 16, flags: 4, major: 3, minor: 1,
			rootInode: 0x0210<<16 | 0x01a4, bytesUsed: 0x12340, idTable: 0x12330, inodeTable: 0x10000,
			dirTable: 0x11000, fragTable: 0x12300, exportTable: ^uint64(0)}
		if sb != want {
			t.Errorf("superblock\n got %+v\nwant %+v", sb, want)
		}
	})
	t.Run("2.1 little-endian superblock", func(t *testing.T) {
		sb, bo, err := parseSuperblock(readHexFixture(t, "superblock-2.1-le.hex"))
		if err != nil || bo != binary.LittleEndian {
			t.Fatalf("parse: %v, %v", bo, err)
		}
		want := superblock{inodes: 5, blockSize: 32768, fragCount: 2, blockLog: 15, major: 2, minor: 1,
			rootInode: 0x100<<16 | 0x20, bytesUsed: 0x2000, idTable: 0x1ff0, inodeTable: 0x1000,
			dirTable: 0x1800, fragTable: 0x1fe0}
		if sb != want {
			t.Errorf("superblock\n got %+v\nwant %+v", sb, want)
		}
	})
	for _, tc := range []struct {
		file  string
		major uint16
		be    bool
		want  inode
	}{
		{"dir-inode-3.1-be.hex", 3, true, inode{typ: 1, mode: 0o755, dirSize: 0x1234, dirOffset: 0xabc, dirBlock: 0x00010203}},
		{"dir-inode-3.1-le.hex", 3, false, inode{typ: 1, mode: 0o755, dirSize: 0x1234, dirOffset: 0xabc, dirBlock: 0x00010203}},
		{"reg-inode-3.1-be.hex", 3, true, inode{typ: 2, mode: 0o644, blocks: 0x1_0000_0077, fragment: 5, fragOffset: 0x300, fileSize: 0x2_0100}},
		{"dir-inode-2.1-be.hex", 2, true, inode{typ: 1, mode: 0o755, dirSize: 0x100, dirOffset: 0x20, dirBlock: 0x000456}},
		{"ldir-inode-2.1-le.hex", 2, false, inode{typ: 8, mode: 0o700, dirSize: 0x0123456, dirOffset: 0x1abc, dirBlock: 0x0789ab}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in, _, err := decodeLegacyInodeHeader(tc.major, tc.be, readHexFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if in.typ != tc.want.typ || in.mode != tc.want.mode || in.dirSize != tc.want.dirSize || in.dirOffset != tc.want.dirOffset ||
				in.dirBlock != tc.want.dirBlock || in.blocks != tc.want.blocks || in.fragment != tc.want.fragment ||
				in.fragOffset != tc.want.fragOffset || in.fileSize != tc.want.fileSize {
				t.Errorf("got %+v\nwant %+v", in, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		file  string
		major uint16
		be    bool
	}{
		{"dirent-3.1-be.hex", 3, true},
		{"dirent-3.1-le.hex", 3, false},
		{"dirent-2.1-be.hex", 2, true},
		{"dirent-2.1-le.hex", 2, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			// A header (5 entries, inode block 0x012345) and one entry
			// (inode offset 0x123, type 2, name "hello").
			q := &squashReader{sb: superblock{major: tc.major}, bo: binary.LittleEndian}
			if tc.be {
				q.bo = binary.BigEndian
			}
			data := readHexFixture(t, tc.file)
			r := &metaReader{q: q, cur: metaBlock{data: data, next: ^uint64(0)}}
			count, start, err := q.dirHeader(r)
			if err != nil || count != 5 || start != 0x012345 {
				t.Errorf("header: %d entries at block 0x%x, %v", count, start, err)
			}
			off, name, err := q.dirEntry(r)
			if err != nil || off != 0x123 || string(name) != "hello" {
				t.Errorf("entry: offset 0x%x name %q, %v", off, name, err)
			}
			if r.read != int64(len(data)) {
				t.Errorf("read %d of %d bytes", r.read, len(data))
			}
		})
	}
}

func TestSquashFS3Hostile(t *testing.T) {
	t.Parallel()
	// sampleRoot: folders, a file spanning several blocks, small files in
	// fragments, relative and absolute symlinks, an empty file and folder,
	// and /etc/shadow with a known hash.
	root := sampleRoot(t)
	raw := buildSquash3(t, root, sqwOptions{major: 3, minor: 1, be: true, comp: "gzip", rawMeta: true})
	sb, bo, err := parseSuperblock(raw)
	if err != nil {
		t.Fatal(err)
	}
	failed := func(t *testing.T, img []byte, want string) *Layer {
		t.Helper()
		tree := unpackBytes(t, img, Options{})
		l := findLayer(tree, "squashfs")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, want) {
			t.Fatalf("want a failed squashfs layer saying %q:\n%s", want, dumpLayers(tree))
		}
		return l
	}
	t.Run("truncated", func(t *testing.T) {
		for _, o := range []sqwOptions{{major: 3, minor: 1, be: true, comp: "lzma"}, {major: 2, minor: 1, comp: "gzip"}} {
			img := buildSquash3(t, root, o)
			sb, _, err := parseSuperblock(img)
			if err != nil {
				t.Fatal(err)
			}
			failed(t, img[:sb.bytesUsed/2], "truncated")
		}
	})
	t.Run("corrupt inode table", func(t *testing.T) {
		if sb.rootInode>>16 != 0 {
			t.Fatalf("root inode 0x%x not in the first metadata block", sb.rootInode)
		}
		bad := bytes.Clone(raw)
		// The root directory's inode: give it type 15.
		at := sb.inodeTable + 2 + sb.rootInode&0xffff // past the block's length word
		bad[at] |= 0xf0                               // big-endian: inode_type is the top nibble
		failed(t, bad, "unknown type 15")
		// A compressed inode table with garbage in it.
		gz := buildSquash3(t, root, sqwOptions{major: 3, minor: 1, comp: "gzip"})
		gsb, _, _ := parseSuperblock(gz)
		for i := gsb.inodeTable + 4; i < gsb.dirTable-2; i++ {
			gz[i] ^= 0xa5
		}
		failed(t, gz, "root inode")
	})
	t.Run("directory cycle", func(t *testing.T) {
		bad := bytes.Clone(raw)
		// Point the "usr" entry (in the root listing) at the root inode.
		dirs := bad[sb.dirTable:]
		i := bytes.Index(dirs, []byte("usr"))
		if i < 5 || sb.rootInode>>16 != 0 {
			t.Fatalf("unexpected layout: usr at %d, root inode 0x%x", i, sb.rootInode)
		}
		bo.PutUint16(dirs[i-5:], uint16(sb.rootInode&0xffff)<<3|1)
		failed(t, bad, "cycle")
	})
	t.Run("symlink target too long", func(t *testing.T) {
		bad := bytes.Clone(raw)
		// bin/sh -> busybox: its 16-bit length sits just before the target.
		inodes := bad[sb.inodeTable:sb.dirTable]
		i := bytes.Index(inodes, []byte("busybox"))
		if i < 2 {
			t.Fatal("symlink target not found")
		}
		bo.PutUint16(inodes[i-2:], 0xffff)
		failed(t, bad, "symlink target of 65535 bytes")
	})
	t.Run("bomb file size", func(t *testing.T) {
		bad := bytes.Clone(raw)
		// Make /bin/busybox claim 3 GiB: the reader must refuse, not allocate.
		inodes := bad[sb.inodeTable:sb.dirTable]
		var size [4]byte
		bo.PutUint32(size[:], uint32(9000*len("BusyBox v1.36.1 multi-call binary\n")))
		i := bytes.Index(inodes, size[:])
		if i < 0 {
			t.Fatal("file size not found")
		}
		bo.PutUint32(inodes[i:], 3<<30)
		tree := unpackBytes(t, bad, Options{MaxTotalBytes: 64 << 20})
		l := findLayer(tree, "squashfs")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "budget") {
			t.Fatalf("bomb not refused:\n%s", dumpLayers(tree))
		}
	})
}

// An LZMA block whose header claims a 4 GiB dictionary must not make the
// decoder allocate it: the dictionary is capped at the block size. Not
// parallel, so the allocation count is this test's alone.
func TestSquashLZMADictionaryCapped(t *testing.T) {
	want := bytes.Repeat([]byte("root:x:0:0:root:/root:/bin/sh\n"), 200)
	var b bytes.Buffer
	zw, err := lzma.WriterConfig{Size: int64(len(want))}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(want)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	src := b.Bytes()
	binary.LittleEndian.PutUint32(src[1:], 0xffffffff)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := decodeLegacySquash(src, 8192)
	runtime.ReadMemStats(&after)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("decoding one 8 KiB block allocated %d bytes", n)
	}
}

// fuzzSeedsSquash3 are small images of each variant.
func fuzzSeedsSquash3(f *testing.F) [][]byte {
	root := imagetest.Rootfs(f, map[string]imagetest.Entry{
		"etc/shadow": {Content: "root:$1$abc$xyz:19000:0:99999:7:::\n"},
		"bin/sh":     {Link: "busybox"},
		"bin/big":    {Content: strings.Repeat("0123456789abcdef", 600)},
	})
	var seeds [][]byte
	for _, o := range []sqwOptions{
		{major: 3, minor: 1, be: true, comp: "lzma", blockSize: 4096},
		{major: 3, minor: 1, comp: "gzip", blockSize: 4096, extended: true},
		{major: 3, minor: 1, be: true, comp: "gzip", rawMeta: true, check: true, blockSize: 4096},
		{major: 2, minor: 1, be: true, comp: "gzip", blockSize: 4096},
		{major: 2, minor: 0, comp: "lzma-nosize", rawMeta: true, blockSize: 4096},
	} {
		img := buildSquash3(f, root, o)
		seeds = append(seeds, bytes.TrimRight(img, "\x00"))
	}
	return seeds
}

func FuzzSquashFS3(f *testing.F) {
	for _, s := range fuzzSeedsSquash3(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, SquashFS{Workers: 2}, data) })
}

// The legacy superblock parser on arbitrary headers: no panic, and a
// header it accepts has self-consistent tables.
func TestLegacySuperblockRejectsNonsense(t *testing.T) {
	t.Parallel()
	h := make([]byte, 128)
	copy(h, "sqsh")
	binary.BigEndian.PutUint16(h[28:], 3)
	if _, _, err := parseSuperblock(h); err == nil {
		t.Error("all-zero 3.x superblock accepted")
	}
	binary.BigEndian.PutUint16(h[30:], 2)
	if _, _, err := parseSuperblock(h); err == nil || !strings.Contains(err.Error(), "3.2") {
		t.Errorf("squashfs 3.2: %v", err)
	}
	ctx := context.Background()
	if _, err := (SquashFS{}).Unpack(ctx, sliceReader(h), int64(len(h)), nil); err == nil {
		t.Error("Unpack accepted a bad superblock")
	}
}
