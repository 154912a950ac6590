package unpack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
)

// Ext unpacks ext2, ext3 and ext4 filesystems (block maps and extent
// trees, 32- and 64-bit group descriptors), written from the ext4 disk
// layout documentation. The journal is not replayed.
type Ext struct{}

// Format implements Unpacker.
func (Ext) Format() string { return "ext" }

// Magics implements Unpacker: s_magic 0xEF53 at byte 1080.
func (Ext) Magics() []Magic { return []Magic{{1080, []byte{0x53, 0xef}}} }

// Identify implements Unpacker.
func (Ext) Identify(h []byte) bool {
	_, err := parseExtSuper(h)
	return err == nil
}

const (
	extIncompatFiletype = 0x2
	extIncompat64Bit    = 0x80
	extFlagExtents      = 0x80000
	extFlagInline       = 0x10000000
	extRootIno          = 2
)

type extSuper struct {
	blockSize                    int64
	blocks                       uint64
	inodes, inodesPerGroup       uint32
	blocksPerGroup, firstDataBlk uint32
	inodeSize, descSize          int64
	incompat                     uint32
	version                      string
}

func parseExtSuper(h []byte) (extSuper, error) {
	var s extSuper
	if len(h) < 2048 {
		return s, errors.New("ext superblock truncated")
	}
	sb := h[1024:2048]
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xef53 {
		return s, errors.New("no ext magic")
	}
	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 {
		return s, fmt.Errorf("ext block size 1024<<%d", logBS)
	}
	s.blockSize = 1024 << logBS
	s.inodes = le.Uint32(sb[0:])
	s.blocks = uint64(le.Uint32(sb[4:]))
	s.firstDataBlk = le.Uint32(sb[0x14:])
	s.blocksPerGroup = le.Uint32(sb[0x20:])
	s.inodesPerGroup = le.Uint32(sb[0x28:])
	rev := le.Uint32(sb[0x4c:])
	s.inodeSize = 128
	if rev >= 1 {
		s.inodeSize = int64(le.Uint16(sb[0x58:]))
		s.incompat = le.Uint32(sb[0x60:])
	}
	s.descSize = 32
	if s.incompat&extIncompat64Bit != 0 {
		s.blocks |= uint64(le.Uint32(sb[0x150:])) << 32
		if d := int64(le.Uint16(sb[0xfe:])); d >= 32 {
			s.descSize = d
		}
	}
	switch {
	case rev > 1:
		return s, fmt.Errorf("ext revision %d", rev)
	case s.inodesPerGroup == 0 || s.blocksPerGroup == 0 || s.inodes == 0 || s.blocks == 0:
		return s, errors.New("ext group geometry is zero")
	case s.inodeSize < 128 || s.inodeSize > s.blockSize || s.inodeSize&(s.inodeSize-1) != 0:
		return s, fmt.Errorf("ext inode size %d", s.inodeSize)
	case s.descSize > 1024:
		return s, fmt.Errorf("ext descriptor size %d", s.descSize)
	}
	s.version = "ext2"
	if le.Uint32(sb[0x5c:])&0x4 != 0 { // has_journal
		s.version = "ext3"
	}
	if s.incompat&0x2c0 != 0 { // extents, 64bit, flex_bg
		s.version = "ext4"
	}
	return s, nil
}

type extReader struct {
	b  []byte
	sb extSuper
}

// block returns block n, or an error if it lies outside the image.
func (x *extReader) block(n uint64) ([]byte, error) {
	off := n * uint64(x.sb.blockSize)
	if n >= x.sb.blocks || off+uint64(x.sb.blockSize) > uint64(len(x.b)) {
		return nil, fmt.Errorf("block %d outside the image", n)
	}
	return x.b[off : off+uint64(x.sb.blockSize)], nil
}

type extInode struct {
	mode  uint16
	size  uint64
	flags uint32
	iblk  []byte // the 60-byte i_block area
}

func (x *extReader) inode(ino uint32) (extInode, error) {
	var in extInode
	if ino == 0 || ino > x.sb.inodes {
		return in, fmt.Errorf("inode %d out of range", ino)
	}
	g := uint64(ino-1) / uint64(x.sb.inodesPerGroup)
	idx := uint64(ino-1) % uint64(x.sb.inodesPerGroup)
	descBlock := uint64(x.sb.firstDataBlk) + 1
	descOff := descBlock*uint64(x.sb.blockSize) + g*uint64(x.sb.descSize)
	if descOff+uint64(x.sb.descSize) > uint64(len(x.b)) {
		return in, fmt.Errorf("group descriptor %d outside the image", g)
	}
	d := x.b[descOff:]
	table := uint64(binary.LittleEndian.Uint32(d[8:]))
	if x.sb.descSize >= 64 {
		table |= uint64(binary.LittleEndian.Uint32(d[0x28:])) << 32
	}
	off := table*uint64(x.sb.blockSize) + idx*uint64(x.sb.inodeSize)
	if off+128 > uint64(len(x.b)) || off < uint64(x.sb.blockSize) {
		return in, fmt.Errorf("inode %d at 0x%x outside the image", ino, off)
	}
	r := x.b[off : off+128]
	le := binary.LittleEndian
	in.mode = le.Uint16(r)
	in.size = uint64(le.Uint32(r[4:])) | uint64(le.Uint32(r[0x6c:]))<<32
	in.flags = le.Uint32(r[0x20:])
	in.iblk = r[0x28:0x64]
	return in, nil
}

// blocks lists the physical block of each logical block of an inode
// (0 for holes), up to n blocks.
func (x *extReader) blocks(in extInode, n uint64) ([]uint64, error) {
	out := make([]uint64, n)
	if in.flags&extFlagExtents != 0 {
		return out, x.extents(in.iblk, out, 0)
	}
	le := binary.LittleEndian
	per := uint64(x.sb.blockSize / 4)
	var walk func(blk uint64, level int, base uint64) error
	walk = func(blk uint64, level int, base uint64) error {
		if blk == 0 || base >= n {
			return nil
		}
		b, err := x.block(blk)
		if err != nil {
			return err
		}
		span := uint64(1)
		for range level - 1 {
			span *= per
		}
		for i := range per {
			child := uint64(le.Uint32(b[4*i:]))
			at := base + i*span
			if at >= n {
				break
			}
			if level == 1 {
				out[at] = child
			} else if err := walk(child, level-1, at); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range uint64(12) {
		if i < n {
			out[i] = uint64(le.Uint32(in.iblk[4*i:]))
		}
	}
	base := uint64(12)
	for level := 1; level <= 3; level++ {
		if err := walk(uint64(le.Uint32(in.iblk[4*(11+level):])), level, base); err != nil {
			return out, err
		}
		span := uint64(1)
		for range level {
			span *= per
		}
		base += span
	}
	return out, nil
}

// extents fills out from an extent tree node.
func (x *extReader) extents(node []byte, out []uint64, depth int) error {
	le := binary.LittleEndian
	if len(node) < 12 || le.Uint16(node) != 0xf30a {
		return errors.New("bad extent header")
	}
	if depth > 8 {
		return errors.New("extent tree too deep")
	}
	entries, d := int(le.Uint16(node[2:])), le.Uint16(node[6:])
	if 12+12*entries > len(node) {
		return errors.New("extent entries past the node")
	}
	for i := range entries {
		e := node[12+12*i:]
		if d == 0 {
			logical := uint64(le.Uint32(e))
			length := uint64(le.Uint16(e[4:]))
			uninit := length > 32768
			if uninit {
				length -= 32768
			}
			start := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			for j := range length {
				if logical+j < uint64(len(out)) && !uninit {
					out[logical+j] = start + j
				}
			}
			continue
		}
		leaf := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		b, err := x.block(leaf)
		if err != nil {
			return err
		}
		if err := x.extents(b, out, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// data returns an inode's content (at most limit bytes).
func (x *extReader) data(in extInode, limit int64) ([]byte, error) {
	if in.size > uint64(limit) {
		return nil, fmt.Errorf("%w: file of %d bytes", ErrBudget, in.size)
	}
	if in.flags&extFlagInline != 0 {
		if in.size > 60 {
			return nil, errors.New("inline data beyond the inode not supported")
		}
		return append([]byte(nil), in.iblk[:in.size]...), nil
	}
	bs := uint64(x.sb.blockSize)
	n := (in.size + bs - 1) / bs
	blks, err := x.blocks(in, n)
	if err != nil {
		return nil, err
	}
	out := make([]byte, in.size)
	for i, p := range blks {
		if p == 0 {
			continue
		}
		b, err := x.block(p)
		if err != nil {
			return out, err
		}
		copy(out[uint64(i)*bs:], b)
	}
	return out, nil
}

// Unpack implements Unpacker.
func (Ext) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 2048 {
		return 0, err
	}
	sb, err := parseExtSuper(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	s.SetInfo("version", sb.version)
	s.SetInfo("block_size", fmt.Sprint(sb.blockSize))
	used := int64(sb.blocks) * sb.blockSize
	var truncErr error
	if used > int64(len(b)) {
		truncErr = fmt.Errorf("image truncated: superblock says %d bytes, %d present", used, len(b))
		used = int64(len(b))
	}
	x := &extReader{b: b[:used], sb: sb}
	var errs []error
	seen := map[uint32]bool{extRootIno: true}
	var walk func(ino uint32, dir string, depth int) error
	walk = func(ino uint32, dir string, depth int) error {
		if depth > 256 {
			return fmt.Errorf("directories nested deeper than 256 at %s", dir)
		}
		in, err := x.inode(ino)
		if err != nil {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		data, err := x.data(in, 64<<20)
		if err != nil {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		for off := 0; off+8 <= len(data); {
			if err := ctx.Err(); err != nil {
				return err
			}
			le := binary.LittleEndian
			child, recLen := le.Uint32(data[off:]), int(le.Uint16(data[off+4:]))
			nameLen := int(data[off+6])
			if sb.incompat&extIncompatFiletype == 0 {
				nameLen = int(le.Uint16(data[off+6:]))
			}
			if recLen < 8 || off+recLen > len(data) || 8+nameLen > recLen {
				errs = append(errs, fmt.Errorf("directory %s: bad entry at %d", dir, off))
				break
			}
			name := string(data[off+8 : off+8+nameLen])
			off += recLen
			if child == 0 || name == "." || name == ".." || nameLen == 0 {
				continue
			}
			p := path.Join(dir, name)
			cin, err := x.inode(child)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			perm := fs.FileMode(cin.mode & 0o777)
			switch cin.mode & 0xf000 {
			case 0x4000:
				if seen[child] {
					errs = append(errs, fmt.Errorf("directory cycle at %s", p))
					continue
				}
				seen[child] = true
				if err := s.Dir(p, perm); err != nil {
					return err
				}
				if err := walk(child, p, depth+1); err != nil {
					if errors.Is(err, ErrBudget) || ctx.Err() != nil {
						return err
					}
					errs = append(errs, err)
				}
			case 0x8000:
				d, err := x.data(cin, s.limit())
				if errors.Is(err, ErrBudget) {
					return fmt.Errorf("%s: %w", p, err)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p, err))
				}
				if err := s.fileBytes(p, perm, d, false); err != nil {
					return err
				}
			case 0xa000:
				var target []byte
				if cin.size < 60 && cin.flags&(extFlagExtents|extFlagInline) == 0 {
					target = cin.iblk[:cin.size]
				} else if target, err = x.data(cin, 4096); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p, err))
					continue
				}
				if err := s.Symlink(p, string(target)); err != nil {
					return err
				}
			default:
				if err := s.Special(p, fs.ModeDevice); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(extRootIno, "/", 0); err != nil {
		errs = append(errs, err)
		if errors.Is(err, ErrBudget) {
			return used, err
		}
	}
	if len(errs) > maxSquashErrors {
		errs = append(errs[:maxSquashErrors], fmt.Errorf("and %d more errors", len(errs)-maxSquashErrors))
	}
	return used, errors.Join(append([]error{truncErr}, errs...)...)
}
