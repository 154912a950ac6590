package imagetest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"testing"

	"github.com/ulikunitz/xz/lzma"
)

// A small SquashFS 2.x/3.x writer for the tests: no Debian tool builds
// these images any more. It is written from squashfs-tools'
// squashfs_compat.h like the reader in package unpack, but deliberately
// shares none of the reader's code: every bit-packed structure is
// assembled with explicit shifts per byte order (GCC fills bit-fields from
// the least significant bit on little-endian machines and from the most
// significant bit on big-endian ones), while the reader uses generic bit
// positions. The hand-assembled hex fixtures in
// firmware/unpack/testdata/squashfs3 check both against the
// documentation, so the two cannot share one misunderstanding unnoticed.

// Squash3Options selects the SquashFS 2.x/3.x variant Squashfs3 writes.
type Squash3Options struct {
	// Major and Minor are the format version: 3.0, 3.1, 2.0 or 2.1.
	Major, Minor uint16
	// BigEndian writes every field big-endian (Broadcom, older MIPS).
	BigEndian bool
	// Compression is "gzip" (zlib), "lzma" (lzma_alone with its 8-byte
	// size field, the Broadcom kernels' form) or "lzma-nosize" (the 5
	// properties bytes and the stream, no size).
	Compression string
	// BlockSize is the data block size; 0 means 64 KiB.
	BlockSize int
	// Magic replaces the standard "hsqs" (little-endian) or "sqsh"
	// (big-endian) magic, e.g. "qshs", "shsq" (Broadcom) or "tqsh"
	// (DD-WRT).
	Magic string
	// Check sets SQUASHFS_CHECK: a marker byte after each metadata length.
	Check bool
	// Extended writes type 8/9 inodes for folders and regular files.
	Extended bool
	// FragmentEach closes a fragment block after every file, so the
	// fragment table spans several metadata blocks.
	FragmentEach bool
	// RawMetadata stores metadata blocks uncompressed (for surgical
	// corruption in tests).
	RawMetadata bool
	// Sparse stores all-zero full blocks as sparse (size 0).
	Sparse bool
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
	case fi.Mode().IsRegular():
		n.kind = 'f'
		if n.data, err = os.ReadFile(dir); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("%s: %v not supported by the SquashFS 3.x writer", dir, fi.Mode().Type())
	}
	return n
}

type sqw struct {
	t      testing.TB
	o      Squash3Options
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
	if w.o.RawMetadata || len(c) >= len(data) {
		c = data
		w.bo.PutUint16(hdr[:], uint16(len(data))|0x8000)
	} else {
		w.bo.PutUint16(hdr[:], uint16(len(c)))
	}
	out = append(out, hdr[:]...)
	if w.o.Check {
		out = append(out, 0xff) // SQUASHFS_MARKER_BYTE
	}
	return append(out, c...)
}

func (w *sqw) compress(data []byte) []byte {
	var b bytes.Buffer
	switch w.o.Compression {
	case "gzip":
		zw, _ := zlib.NewWriterLevel(&b, zlib.BestCompression)
		if _, err := zw.Write(data); err != nil {
			w.t.Fatal(err)
		}
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
		if _, err := zw.Write(data); err != nil {
			w.t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			w.t.Fatal(err)
		}
		out := b.Bytes()
		if w.o.Compression == "lzma-nosize" {
			out = append(out[:5:5], out[13:]...)
		}
		return out
	}
	w.t.Fatalf("squashfs 3.x writer: compression %q", w.o.Compression)
	return nil
}

func (w *sqw) put16(v uint16) []byte { b := make([]byte, 2); w.bo.PutUint16(b, v); return b }
func (w *sqw) put32(v uint32) []byte { b := make([]byte, 4); w.bo.PutUint32(b, v); return b }
func (w *sqw) put64(v uint64) []byte { b := make([]byte, 8); w.bo.PutUint64(b, v); return b }

// putN stores the low n bytes of v in the image's byte order: a bit-field
// run of n*8 bits.
func (w *sqw) putN(v uint64, n int) []byte {
	b := w.put64(v)
	if w.o.BigEndian {
		return b[8-n:]
	}
	return b[:n]
}

// base is the header every inode starts with: inode_type:4 mode:12 uid:8
// guid:8, and in 3.x mtime and inode_number.
func (w *sqw) base(typ uint16, n *sqwNode) []byte {
	const uid, guid = 0, 255 // uid table index 0; guid 255 = "same as uid"
	var word uint32
	if w.o.BigEndian {
		word = uint32(typ)<<28 | uint32(n.perm)<<16 | uid<<8 | guid
	} else {
		word = uint32(typ) | uint32(n.perm)<<4 | uid<<16 | guid<<24
	}
	b := w.put32(word)
	if w.o.Major == 3 {
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
	bs := w.o.BlockSize
	start, frag = uint64(len(w.img)), 0xffffffff
	full := len(b) / bs * bs
	for i := 0; i < full; i += bs {
		blk := b[i : i+bs]
		if w.o.Sparse && bytes.Count(blk, []byte{0}) == bs {
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
		if w.o.FragmentEach {
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
	case w.o.Major == 2:
		b = append(w.base(2, n), w.put32(1234567890)...) // mtime
		b = append(b, w.put32(uint32(start))...)
		b = append(b, w.put32(frag)...)
		b = append(b, w.put32(off)...)
		b = append(b, w.put32(uint32(size))...)
	case w.o.Extended:
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
	if w.o.Major == 3 {
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
		if w.o.Major == 2 { // count:8 start_block:24
			if w.o.BigEndian {
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
			if w.o.BigEndian {
				word = off<<3 | e.typ
			} else {
				word = off | e.typ<<13
			}
			b := append(w.put16(word), byte(len(e.name)-1))
			if w.o.Major == 3 {
				b = append(b, w.put16(uint16(int16(e.ino-ents[i].ino)))...)
			}
			b = append(b, e.name...)
			w.dirs.write(b)
			listed += len(b)
		}
		i = j
	}
	size := uint64(listed)
	if w.o.Major == 3 {
		size += 3 // "." and ".."
	}
	blk, o := w.inodes.pos()
	var b []byte
	switch {
	case w.o.Major == 2 && !w.o.Extended: // file_size:19 offset:13 mtime start_block:24
		b = w.base(1, n)
		if w.o.BigEndian {
			b = append(b, w.put32(uint32(size)<<13|uint32(doff))...)
		} else {
			b = append(b, w.put32(uint32(size)|uint32(doff)<<19)...)
		}
		b = append(b, w.put32(1234567890)...)
		b = append(b, w.putN(dblk, 3)...)
	case w.o.Major == 2: // file_size:27 offset:13 mtime start_block:24 i_count:16
		b = w.base(8, n)
		if w.o.BigEndian {
			b = append(b, w.putN(size<<13|uint64(doff), 5)...)
		} else {
			b = append(b, w.putN(size|uint64(doff)<<27, 5)...)
		}
		b = append(b, w.put32(1234567890)...)
		b = append(b, w.putN(dblk, 3)...)
		b = append(b, w.put16(0)...)
	case !w.o.Extended: // nlink file_size:19 offset:13 start_block parent_inode
		b = append(w.base(1, n), w.put32(uint32(2+subdirs))...)
		if w.o.BigEndian {
			b = append(b, w.put32(uint32(size)<<13|uint32(doff))...)
		} else {
			b = append(b, w.put32(uint32(size)|uint32(doff)<<19)...)
		}
		b = append(b, w.put32(uint32(dblk))...)
		b = append(b, w.put32(parent)...)
	default: // nlink file_size:27 offset:13 start_block i_count:16 parent_inode
		b = append(w.base(8, n), w.put32(uint32(2+subdirs))...)
		if w.o.BigEndian {
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

// Squashfs3 builds a SquashFS 2.x/3.x image of the host folder dir (folders,
// regular files and symlinks, all owned by root) as vendor kernels of the
// 2.4 and 2.6 era read them; squashfs-tools no longer writes these
// versions. The image is padded to 4 KiB as mksquashfs does.
func Squashfs3(t testing.TB, dir string, o Squash3Options) []byte {
	t.Helper()
	if o.BlockSize == 0 {
		o.BlockSize = 65536
	}
	w := &sqw{t: t, o: o, bo: binary.LittleEndian}
	if o.BigEndian {
		w.bo = binary.BigEndian
	}
	w.inodes.w, w.dirs.w = w, w
	sbSize := 119 // sizeof(struct squashfs_super_block_3)
	if o.Major == 2 {
		sbSize = 63
	}
	w.img = make([]byte, sbSize)
	tree := sqwTree(t, dir)
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
		if o.Major == 2 {
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
		if o.Major == 2 {
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
	magic := o.Magic
	if magic == "" {
		magic = map[bool]string{false: "hsqs", true: "sqsh"}[o.BigEndian]
	}
	copy(sb[0:], magic)
	copy(sb[4:], w.put32(w.count))
	if o.Major == 2 {
		copy(sb[8:], w.put32(uint32(used)))
		copy(sb[12:], w.put32(uint32(uidStart)))
		copy(sb[16:], w.put32(uint32(used))) // guid_start: no guids
		copy(sb[20:], w.put32(uint32(inodeTable)))
		copy(sb[24:], w.put32(uint32(dirTable)))
	}
	copy(sb[28:], w.put16(o.Major))
	copy(sb[30:], w.put16(o.Minor))
	copy(sb[32:], w.put16(uint16(o.BlockSize))) // block_size_1 (0 for 64 KiB)
	copy(sb[34:], w.put16(uint16(bits.Len(uint(o.BlockSize))-1)))
	if o.Check {
		sb[36] = 1 << 2
	}
	sb[37], sb[38] = 1, 0 // no_uids, no_guids
	copy(sb[39:], w.put32(1234567890))
	copy(sb[43:], w.put64(rootEnt.ref))
	copy(sb[51:], w.put32(uint32(o.BlockSize)))
	copy(sb[55:], w.put32(uint32(len(w.frags))))
	if o.Major == 2 {
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
