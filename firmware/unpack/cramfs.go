package unpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/klauspost/compress/zlib"
)

// CramFS unpacks cramfs images (little- or big-endian, with or without
// the 512-byte boot pad), written from Linux's cramfs_fs.h: 12-byte
// inodes with bit fields, zlib-compressed 4 KiB pages behind a table of
// block end pointers.
type CramFS struct{}

// Format implements Unpacker.
func (CramFS) Format() string { return "cramfs" }

// Magics implements Unpacker.
func (CramFS) Magics() []Magic {
	le, be := []byte{0x45, 0x3d, 0xcd, 0x28}, []byte{0x28, 0xcd, 0x3d, 0x45}
	// mkfs.cramfs -p puts the superblock after a 512-byte boot pad, and
	// offsets count from the start of the pad.
	return []Magic{{0, le}, {0, be}, {cramfsPad, le}, {cramfsPad, be}}
}

// cramfsSuperOffset returns where the superblock of an image starting at
// h is: 0, or cramfsPad after a zero boot pad.
func cramfsSuperOffset(h []byte) (int, bool) {
	if _, err := parseCramfsSuper(h); err == nil {
		return 0, true
	}
	if len(h) >= cramfsPad+76 && bytes.Count(h[:cramfsPad], []byte{0}) == cramfsPad {
		if _, err := parseCramfsSuper(h[cramfsPad:]); err == nil {
			return cramfsPad, true
		}
	}
	return 0, false
}

const (
	cramfsPage       = 4096
	cramfsPad        = 512
	cramfsFlagExtPtr = 0x800
)

type cramfsSuper struct {
	bo    binary.ByteOrder
	size  uint32
	flags uint32
	files uint32
}

func parseCramfsSuper(h []byte) (cramfsSuper, error) {
	var s cramfsSuper
	if len(h) < 76 {
		return s, errors.New("cramfs superblock truncated")
	}
	switch binary.LittleEndian.Uint32(h) {
	case 0x28cd3d45:
		s.bo = binary.LittleEndian
	case 0x453dcd28:
		s.bo = binary.BigEndian
	default:
		return s, errors.New("no cramfs magic")
	}
	if string(h[16:32]) != "Compressed ROMFS" {
		return s, errors.New("no cramfs signature")
	}
	s.size, s.flags = s.bo.Uint32(h[4:]), s.bo.Uint32(h[8:])
	s.files = s.bo.Uint32(h[44:])
	if s.size < 76 {
		return s, fmt.Errorf("cramfs size %d", s.size)
	}
	return s, nil
}

// Identify implements Unpacker.
func (CramFS) Identify(h []byte) bool {
	_, ok := cramfsSuperOffset(h)
	return ok
}

type cramfsInode struct {
	mode           uint16
	size           uint32
	nameLen, start uint32 // bytes
}

// cramfsInodeAt decodes the bit fields of the inode at b[off:].
func cramfsInodeAt(b []byte, off int, bo binary.ByteOrder) (cramfsInode, error) {
	if off < 0 || off+12 > len(b) {
		return cramfsInode{}, fmt.Errorf("inode at 0x%x outside the image", off)
	}
	w0, w1, w2 := bo.Uint32(b[off:]), bo.Uint32(b[off+4:]), bo.Uint32(b[off+8:])
	if bo == binary.LittleEndian {
		return cramfsInode{mode: uint16(w0), size: w1 & 0xffffff, nameLen: (w2 & 0x3f) * 4, start: (w2 >> 6) * 4}, nil
	}
	return cramfsInode{mode: uint16(w0 >> 16), size: w1 >> 8, nameLen: (w2 >> 26) * 4, start: (w2 & 0x3ffffff) * 4}, nil
}

// cramfsData decompresses a file's pages.
func cramfsData(b []byte, in cramfsInode, bo binary.ByteOrder, flags uint32, limit int64) ([]byte, error) {
	if int64(in.size) > limit {
		return nil, fmt.Errorf("%w: file of %d bytes", ErrBudget, in.size)
	}
	if flags&cramfsFlagExtPtr != 0 {
		return nil, errors.New("extended block pointers not supported")
	}
	n := (int(in.size) + cramfsPage - 1) / cramfsPage
	tbl := int(in.start)
	if tbl+4*n > len(b) {
		return nil, errors.New("block pointer table outside the image")
	}
	out := make([]byte, 0, in.size)
	prev := tbl + 4*n
	for i := range n {
		end := int(bo.Uint32(b[tbl+4*i:]))
		want := min(cramfsPage, int(in.size)-i*cramfsPage)
		if end == prev { // hole
			out = append(out, make([]byte, want)...)
			continue
		}
		if end < prev || end > len(b) {
			return out, fmt.Errorf("block %d: pointer 0x%x out of order or outside the image", i, end)
		}
		zr, err := zlib.NewReader(bytes.NewReader(b[prev:end]))
		if err != nil {
			return out, fmt.Errorf("block %d: %w", i, err)
		}
		page, err := readBlock(zr, cramfsPage)
		if err != nil {
			return out, fmt.Errorf("block %d: %w", i, err)
		}
		if len(page) < want {
			return out, fmt.Errorf("block %d: %d bytes, want %d", i, len(page), want)
		}
		out = append(out, page[:want]...)
		prev = end
	}
	return out, nil
}

// Unpack implements Unpacker.
func (CramFS) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 76 {
		return 0, err
	}
	sbOff, ok := cramfsSuperOffset(b)
	if !ok {
		return 0, fmt.Errorf("%w: no cramfs superblock", ErrNotFormat)
	}
	sb, _ := parseCramfsSuper(b[sbOff:])
	if sbOff > 0 {
		s.SetInfo("boot_pad", "512")
	}
	if sb.bo == binary.BigEndian {
		s.SetInfo("endian", "big")
	} else {
		s.SetInfo("endian", "little")
	}
	used := int64(sb.size)
	var truncErr error
	if used > int64(len(b)) {
		truncErr = fmt.Errorf("image truncated: superblock says %d bytes, %d present", used, len(b))
		used = int64(len(b))
	}
	img := b[:used]
	var errs []error
	entries := 0
	seen := map[uint32]bool{}
	var walk func(dir cramfsInode, p string, depth int) error
	walk = func(dir cramfsInode, p string, depth int) error {
		if depth > 256 {
			return fmt.Errorf("directories nested deeper than 256 at %s", p)
		}
		if seen[dir.start] && dir.size > 0 {
			return fmt.Errorf("directory cycle at %s", p)
		}
		seen[dir.start] = true
		off, end := int(dir.start), int(dir.start)+int(dir.size)
		if end > len(img) {
			return fmt.Errorf("directory %s outside the image", p)
		}
		for off < end {
			if err := ctx.Err(); err != nil {
				return err
			}
			entries++
			if entries > int(sb.files)+1 || entries > 1<<20 {
				return errors.New("more entries than the superblock counts")
			}
			in, err := cramfsInodeAt(img, off, sb.bo)
			if err != nil {
				return err
			}
			nameOff := off + 12
			off = nameOff + int(in.nameLen)
			if in.nameLen == 0 || off > end {
				return fmt.Errorf("directory %s: bad entry name length", p)
			}
			name := string(bytes.TrimRight(img[nameOff:off], "\x00"))
			child := path.Join(p, name)
			perm := fs.FileMode(in.mode & 0o777)
			switch in.mode & 0xf000 {
			case 0x4000:
				if err := s.Dir(child, perm); err != nil {
					return err
				}
				if err := walk(in, child, depth+1); err != nil {
					if errors.Is(err, ErrBudget) || ctx.Err() != nil {
						return err
					}
					errs = append(errs, err)
				}
			case 0x8000:
				d, err := cramfsData(img, in, sb.bo, sb.flags, s.limit())
				if errors.Is(err, ErrBudget) {
					return fmt.Errorf("%s: %w", child, err)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", child, err))
				}
				if err := s.fileBytes(child, perm, d, false); err != nil {
					return err
				}
			case 0xa000:
				d, err := cramfsData(img, in, sb.bo, sb.flags, 4096)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", child, err))
					continue
				}
				if err := s.Symlink(child, string(d)); err != nil {
					return err
				}
			default:
				if err := s.Special(child, fs.ModeDevice); err != nil {
					return err
				}
			}
		}
		return nil
	}
	root, err := cramfsInodeAt(img, sbOff+64, sb.bo)
	if err == nil && root.size > 0 && int(root.start) < sbOff+76 {
		// Root entries before the superblock: not a padded image after all.
		return 0, fmt.Errorf("%w: cramfs root directory at 0x%x", ErrNotFormat, root.start)
	}
	if err == nil {
		err = walk(root, "/", 0)
	}
	if err != nil {
		if errors.Is(err, ErrBudget) {
			return used, err
		}
		errs = append(errs, err)
	}
	if len(errs) > maxSquashErrors {
		errs = append(errs[:maxSquashErrors], fmt.Errorf("and %d more errors", len(errs)-maxSquashErrors))
	}
	return used, errors.Join(append([]error{truncErr}, errs...)...)
}
