package unpack

// SquashFS 2.x and 3.x, read through the same squashReader as 4.0. Written
// from squashfs-tools' squashfs_compat.h (the 2.x and 3.x on-disk structures
// and the SQUASHFS_SWAP_* macros that give every field's bit position) and
// unsquash-2.c / unsquash-3.c (how the tables are walked).
//
// What differs from 4.0:
//   - structures are bit-packed C bit-fields, laid out the way GCC lays them
//     out on the machine that built the image: from the least significant bit
//     of each little-endian byte on little-endian images, from the most
//     significant bit on big-endian ones (sqBits);
//   - the superblock has no compressor id: mainline uses zlib, vendor kernels
//     (Broadcom, Huawei, old OpenWrt) LZMA, with or without lzma_alone's size
//     field, and sqlzma mixes both, so every block is sniffed;
//   - with the "check" flag each metadata block carries a marker byte after
//     its 2-byte length;
//   - 2.x directory sizes do not count the 3 bytes 3.x and 4.0 add, 2.x
//     fragment entries and index words are 32-bit, and 2.x inodes have no
//     mtime/inode-number words in their common header.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/klauspost/compress/zlib"
)

// sqMagics are the superblock magics: the standard one in either byte
// order and the vendor variants of 3.x LZMA images (as unblob and
// sasquatch recognise them).
var sqMagics = []struct {
	magic  string
	order  binary.ByteOrder
	vendor string
}{
	{"hsqs", binary.LittleEndian, ""},
	{"sqsh", binary.BigEndian, ""},
	{"shsq", binary.LittleEndian, "broadcom"},
	{"qshs", binary.BigEndian, "broadcom"},
	{"hsqt", binary.LittleEndian, "dd-wrt"},
	{"tqsh", binary.BigEndian, "dd-wrt"},
}

// sqVendor names the vendor variant the magic of h marks, or "".
func sqVendor(h []byte) string {
	for _, m := range sqMagics {
		if len(h) >= 4 && string(h[:4]) == m.magic {
			return m.vendor
		}
	}
	return ""
}

const (
	// sq3SuperblockSize is sizeof(struct squashfs_super_block_3): the
	// 64-bit table pointers end at bit 952.
	sq3SuperblockSize = 119
	// sq2SuperblockSize is the 2.x part of it, up to fragment_table_start_2.
	sq2SuperblockSize = 63
	// sqFlagCheck is SQUASHFS_CHECK (bit 2 of flags): metadata blocks carry
	// a marker byte after their length.
	sqFlagCheck = 1 << 2
)

// sqBits reads a field of a bit-packed 1.x–3.x structure: n bits starting
// at bit pos counted from the start of the structure, exactly the (pos,
// bits) pairs of squashfs_compat.h's SQUASHFS_SWAP calls. Little-endian
// images number bits from the least significant bit of each byte, big-endian
// ones from the most significant bit and read the field most significant
// bit first (the macro's "64 - tbits - b_pos" shift).
type sqBits struct {
	b  []byte
	be bool
}

func (f sqBits) get(pos, n int) uint64 {
	var w [8]byte
	if pos/8 < len(f.b) {
		copy(w[:], f.b[pos/8:])
	}
	sh := pos % 8
	mask := ^uint64(0) >> (64 - n)
	if f.be {
		return binary.BigEndian.Uint64(w[:]) >> (64 - n - sh) & mask
	}
	return binary.LittleEndian.Uint64(w[:]) >> sh & mask
}

// parseLegacySuperblock reads a 2.x or 3.x superblock (bit positions from
// SQUASHFS_SWAP_SUPER_BLOCK_3; 2.x uses the 32-bit "_2" table pointers).
func parseLegacySuperblock(h []byte, bo binary.ByteOrder, major, minor uint16) (superblock, error) {
	sb := superblock{major: major, minor: minor}
	if minor > 1 {
		return sb, fmt.Errorf("squashfs version %d.%d", major, minor)
	}
	need := sq3SuperblockSize
	if major == 2 {
		need = sq2SuperblockSize
	}
	if len(h) < need {
		return sb, errors.New("squashfs superblock truncated")
	}
	f := sqBits{h, bo == binary.BigEndian}
	sb.inodes = uint32(f.get(32, 32))
	sb.blockLog = uint16(f.get(272, 16))
	sb.flags = uint16(f.get(288, 8))
	sb.rootInode = f.get(344, 64)
	sb.blockSize = uint32(f.get(408, 32))
	sb.fragCount = uint32(f.get(440, 32))
	if major == 2 {
		sb.bytesUsed = f.get(64, 32)
		sb.idTable = f.get(96, 32) // uid_start_2
		sb.inodeTable = f.get(160, 32)
		sb.dirTable = f.get(192, 32)
		sb.fragTable = f.get(472, 32)
	} else {
		sb.bytesUsed = f.get(504, 64)
		sb.idTable = f.get(568, 64) // uid_start
		sb.inodeTable = f.get(696, 64)
		sb.dirTable = f.get(760, 64)
		sb.fragTable = f.get(824, 64)
		sb.exportTable = f.get(888, 64) // lookup_table_start
	}
	switch {
	case sb.blockSize < 4096 || sb.blockSize > 1<<20 || bits.OnesCount32(sb.blockSize) != 1:
		return sb, fmt.Errorf("squashfs block size %d", sb.blockSize)
	case uint32(1)<<sb.blockLog != sb.blockSize:
		return sb, fmt.Errorf("squashfs block log %d does not match block size %d", sb.blockLog, sb.blockSize)
	case sb.bytesUsed < uint64(need) || sb.inodeTable < uint64(need) || sb.dirTable < sb.inodeTable ||
		sb.dirTable >= sb.bytesUsed || sb.fragCount > 0 && sb.fragTable >= sb.bytesUsed:
		return sb, errors.New("squashfs table offsets inconsistent")
	case sb.rootInode>>16 >= sb.dirTable-sb.inodeTable:
		return sb, errors.New("squashfs root inode outside the inode table")
	}
	return sb, nil
}

// metaHeaderLen is the length of a metadata block's header: its 2-byte
// length word, plus the marker byte of 2.x/3.x images built with -check_data.
func (q *squashReader) metaHeaderLen() uint64 {
	if q.sb.major < 4 && q.sb.flags&sqFlagCheck != 0 {
		return 3
	}
	return 2
}

// isZlib reports whether b starts with a zlib header (deflate, no preset
// dictionary, valid check bits).
func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && b[1]&0x20 == 0 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// decodeLegacySquash decodes a 2.x/3.x block of either compressor.
func decodeLegacySquash(src []byte, maxOut int) ([]byte, error) {
	if !isZlib(src) {
		return decodeSquashLZMA(src, maxOut)
	}
	zr, err := zlib.NewReader(bytes.NewReader(src))
	if err == nil {
		var out []byte
		if out, err = readBlock(zr, maxOut); err == nil {
			return out, nil
		}
	}
	// 0x78 0x9c... is also a valid LZMA properties byte and dictionary.
	if out, lerr := decodeSquashLZMA(src, maxOut); lerr == nil {
		return out, nil
	}
	return nil, fmt.Errorf("zlib: %w", err)
}

// legacyCompression names the compressor of the first compressed inode
// table block, for the layer's info ("" when it is stored uncompressed).
func (q *squashReader) legacyCompression() string {
	pos, hl := q.sb.inodeTable, q.metaHeaderLen()
	if pos+hl+2 > uint64(len(q.b)) || q.bo.Uint16(q.b[pos:])&0x8000 != 0 {
		return ""
	}
	if isZlib(q.b[pos+hl:]) {
		return "gzip"
	}
	return "lzma"
}

// sqLegacyField locates one field of a 2.x/3.x inode header: bit position
// and width, from the SQUASHFS_SWAP_*_INODE_HEADER_{2,3} macros.
type sqLegacyField struct{ pos, bits int }

// sqLegacyInode describes one inode type: its header size in bytes and
// where the fields the unpacker needs sit. Absent fields have bits 0.
type sqLegacyInode struct {
	size                                    int
	fileSize, offset, start, frag, fragOffs sqLegacyField
	symlinkSize                             sqLegacyField
}

// sq3Inodes and sq2Inodes are indexed by inode type (1 dir, 2 file,
// 3 symlink, 4 block device, 5 char device, 6 fifo, 7 socket, 8 extended
// dir, 9 extended file; 2.x has no type 9). The numbering is the same as
// 4.0's, so the directory walk needs no translation.
var sq3Inodes = map[uint16]sqLegacyInode{
	1: {size: 28, fileSize: sqLegacyField{128, 19}, offset: sqLegacyField{147, 13}, start: sqLegacyField{160, 32}},
	8: {size: 31, fileSize: sqLegacyField{128, 27}, offset: sqLegacyField{155, 13}, start: sqLegacyField{168, 32}},
	2: {size: 32, start: sqLegacyField{96, 64}, frag: sqLegacyField{160, 32}, fragOffs: sqLegacyField{192, 32}, fileSize: sqLegacyField{224, 32}},
	9: {size: 40, start: sqLegacyField{128, 64}, frag: sqLegacyField{192, 32}, fragOffs: sqLegacyField{224, 32}, fileSize: sqLegacyField{256, 64}},
	3: {size: 18, symlinkSize: sqLegacyField{128, 16}},
	4: {size: 18}, 5: {size: 18},
	6: {size: 16}, 7: {size: 16},
}

var sq2Inodes = map[uint16]sqLegacyInode{
	1: {size: 15, fileSize: sqLegacyField{32, 19}, offset: sqLegacyField{51, 13}, start: sqLegacyField{96, 24}},
	8: {size: 18, fileSize: sqLegacyField{32, 27}, offset: sqLegacyField{59, 13}, start: sqLegacyField{104, 24}},
	2: {size: 24, start: sqLegacyField{64, 32}, frag: sqLegacyField{96, 32}, fragOffs: sqLegacyField{128, 32}, fileSize: sqLegacyField{160, 32}},
	3: {size: 6, symlinkSize: sqLegacyField{32, 16}},
	4: {size: 6}, 5: {size: 6},
	6: {size: 4}, 7: {size: 4},
}

// legacyInodeBase is the size of the header common to all inode types:
// type:4 mode:12 uid:8 guid:8, and in 3.x mtime and inode_number.
func legacyInodeBase(major uint16) int {
	if major == 2 {
		return 4
	}
	return 12
}

// legacyInodeLayout returns the layout of inode type typ.
func legacyInodeLayout(major, typ uint16) (sqLegacyInode, bool) {
	if major == 2 {
		l, ok := sq2Inodes[typ]
		return l, ok
	}
	l, ok := sq3Inodes[typ]
	return l, ok
}

// decodeLegacyInodeHeader decodes the fixed part of a 2.x/3.x inode (hdr
// holds at least the type's header size); for a symlink it also returns
// the length of the target that follows the header.
func decodeLegacyInodeHeader(major uint16, be bool, hdr []byte) (in inode, symlinkLen int, err error) {
	f := sqBits{hdr, be}
	in.typ, in.mode = uint16(f.get(0, 4)), uint16(f.get(4, 12))
	l, ok := legacyInodeLayout(major, in.typ)
	if !ok {
		return in, 0, fmt.Errorf("unknown inode type %d", in.typ)
	}
	if len(hdr) < l.size {
		return in, 0, fmt.Errorf("inode type %d header truncated", in.typ)
	}
	switch in.typ {
	case 1, 8:
		in.dirSize = uint32(f.get(l.fileSize.pos, l.fileSize.bits))
		in.dirOffset = uint16(f.get(l.offset.pos, l.offset.bits))
		in.dirBlock = uint32(f.get(l.start.pos, l.start.bits))
	case 2, 9:
		in.blocks = f.get(l.start.pos, l.start.bits)
		in.fragment = uint32(f.get(l.frag.pos, l.frag.bits))
		in.fragOffset = uint32(f.get(l.fragOffs.pos, l.fragOffs.bits))
		in.fileSize = f.get(l.fileSize.pos, l.fileSize.bits)
	case 3:
		symlinkLen = int(f.get(l.symlinkSize.pos, l.symlinkSize.bits))
	}
	return in, symlinkLen, nil
}

// readLegacyInode reads the 2.x/3.x inode at ref (block<<16 | offset
// within the inode table) with its block list or symlink target.
func (q *squashReader) readLegacyInode(ref uint64, limit int64) (inode, error) {
	r, err := q.metaAt(q.sb.inodeTable, ref>>16, uint16(ref&0xffff))
	if err != nil {
		return inode{}, fmt.Errorf("inode 0x%x: %w", ref, err)
	}
	be := q.bo == binary.BigEndian
	base := legacyInodeBase(q.sb.major)
	hdr, err := r.bytes(base)
	if err != nil {
		return inode{}, fmt.Errorf("inode 0x%x: %w", ref, err)
	}
	typ := uint16(sqBits{hdr, be}.get(0, 4))
	l, ok := legacyInodeLayout(q.sb.major, typ)
	if !ok {
		return inode{}, fmt.Errorf("inode 0x%x: unknown type %d", ref, typ)
	}
	rest, err := r.bytes(l.size - base)
	if err != nil {
		return inode{}, fmt.Errorf("inode 0x%x: %w", ref, err)
	}
	in, symlinkLen, err := decodeLegacyInodeHeader(q.sb.major, be, append(hdr, rest...))
	if err != nil {
		return in, fmt.Errorf("inode 0x%x: %w", ref, err)
	}
	switch in.typ {
	case 2, 9:
		if in.fileSize > uint64(limit) {
			return in, fmt.Errorf("%w: file of %d bytes (sparse or bomb?)", ErrBudget, in.fileSize)
		}
		n := in.fileSize >> q.sb.blockLog
		if in.fragment == sqNoFragment && in.fileSize%uint64(q.sb.blockSize) != 0 {
			n++
		}
		raw, err := r.bytes(int(n) * 4)
		if err != nil {
			return in, fmt.Errorf("inode 0x%x block list: %w", ref, err)
		}
		in.blockSizes = make([]uint32, n)
		for i := range in.blockSizes {
			in.blockSizes[i] = q.bo.Uint32(raw[4*i:])
		}
	case 3:
		if symlinkLen == 0 || symlinkLen > 4096 {
			return in, fmt.Errorf("inode 0x%x: symlink target of %d bytes", ref, symlinkLen)
		}
		t, err := r.bytes(symlinkLen)
		if err != nil {
			return in, fmt.Errorf("inode 0x%x: %w", ref, err)
		}
		in.target = string(t)
	}
	return in, nil
}

// dirListBytes is how many bytes of directory table a directory inode's
// listing spans. 4.0 and 3.x store 3 more (for "." and ".."), 2.x does not.
func (q *squashReader) dirListBytes(d inode) int64 {
	if q.sb.major == 2 {
		return int64(d.dirSize)
	}
	return int64(d.dirSize) - 3
}

// dirHeader reads a directory header: how many entries follow and the
// inode table block holding their inodes.
func (q *squashReader) dirHeader(r *metaReader) (count, start uint32, err error) {
	switch q.sb.major {
	case 4:
		h, err := r.bytes(12)
		if err != nil {
			return 0, 0, err
		}
		return q.bo.Uint32(h) + 1, q.bo.Uint32(h[4:]), nil
	case 3: // count:8 start_block:32 inode_number:32
		h, err := r.bytes(9)
		if err != nil {
			return 0, 0, err
		}
		f := sqBits{h, q.bo == binary.BigEndian}
		return uint32(f.get(0, 8)) + 1, uint32(f.get(8, 32)), nil
	default: // 2.x: count:8 start_block:24
		h, err := r.bytes(4)
		if err != nil {
			return 0, 0, err
		}
		f := sqBits{h, q.bo == binary.BigEndian}
		return uint32(f.get(0, 8)) + 1, uint32(f.get(8, 24)), nil
	}
}

// dirEntry reads one directory entry: the offset of its inode inside the
// header's inode block, and its name.
func (q *squashReader) dirEntry(r *metaReader) (uint16, []byte, error) {
	var off uint16
	var nameLen int
	switch q.sb.major {
	case 4:
		e, err := r.bytes(8)
		if err != nil {
			return 0, nil, err
		}
		off, nameLen = q.bo.Uint16(e), int(q.bo.Uint16(e[6:]))+1
	default:
		// 3.x: offset:13 type:3 size:8 inode_number:16; 2.x lacks the last.
		n := 5
		if q.sb.major == 2 {
			n = 3
		}
		e, err := r.bytes(n)
		if err != nil {
			return 0, nil, err
		}
		f := sqBits{e, q.bo == binary.BigEndian}
		off, nameLen = uint16(f.get(0, 13)), int(f.get(16, 8))+1
	}
	name, err := r.bytes(nameLen)
	return off, name, err
}
