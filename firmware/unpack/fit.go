package unpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// FIT unpacks a flattened device tree: a U-Boot FIT image (mkimage -f)
// yields every /images/* node's data (embedded or external), decompressed
// per its "compression" property; a plain device tree yields nothing but
// is recognised so that it is not reported as unknown.
type FIT struct{}

// Format implements Unpacker.
func (FIT) Format() string { return "fdt" }

// Magics implements Unpacker.
func (FIT) Magics() []Magic { return []Magic{{0, []byte{0xd0, 0x0d, 0xfe, 0xed}}} }

// Identify implements Unpacker.
func (FIT) Identify(h []byte) bool {
	_, err := parseFDTHeader(h)
	return err == nil
}

type fdtHeader struct {
	total, structOff, stringsOff, structSize, stringsSize uint32
}

func parseFDTHeader(h []byte) (fdtHeader, error) {
	if len(h) < 40 || binary.BigEndian.Uint32(h) != 0xd00dfeed {
		return fdtHeader{}, errors.New("no device tree magic")
	}
	u := func(i int) uint32 { return binary.BigEndian.Uint32(h[i:]) }
	f := fdtHeader{total: u(4), structOff: u(8), stringsOff: u(12), stringsSize: u(32), structSize: u(36)}
	version := u(20)
	switch {
	case version < 16 || version > 17:
		return f, fmt.Errorf("device tree version %d", version)
	case f.total < 40 || f.total > 64<<20:
		return f, fmt.Errorf("device tree size %d", f.total)
	case uint64(f.structOff)+uint64(f.structSize) > uint64(f.total) || uint64(f.stringsOff)+uint64(f.stringsSize) > uint64(f.total):
		return f, errors.New("device tree blocks outside its size")
	}
	return f, nil
}

// fdtImage is one /images/* node.
type fdtImage struct {
	name, compression, typ string
	data                   []byte
	extOff, extSize        int64 // data-offset (after the tree) or data-position (absolute)
	hasExt, absolute       bool
}

// parseFIT walks the structure block and returns the /images nodes.
func parseFIT(b []byte, h fdtHeader) ([]fdtImage, bool, error) {
	st := b[h.structOff : h.structOff+h.structSize]
	strs := b[h.stringsOff : h.stringsOff+h.stringsSize]
	var stack []string
	var imgs []fdtImage
	isFIT := false
	var cur *fdtImage
	p := 0
	u32 := func() (uint32, error) {
		if p+4 > len(st) {
			return 0, errors.New("device tree structure truncated")
		}
		v := binary.BigEndian.Uint32(st[p:])
		p += 4
		return v, nil
	}
	for steps := 0; ; steps++ {
		if steps > 1<<20 {
			return nil, false, errors.New("device tree structure too long")
		}
		tok, err := u32()
		if err != nil {
			return imgs, isFIT, err
		}
		switch tok {
		case 1: // begin node
			end := bytes.IndexByte(st[p:], 0)
			if end < 0 {
				return imgs, isFIT, errors.New("unterminated node name")
			}
			name := string(st[p : p+end])
			p += int(alignUp(int64(end+1), 4))
			stack = append(stack, name)
			if len(stack) > 64 {
				return imgs, isFIT, errors.New("device tree nested too deep")
			}
			if len(stack) == 2 && name == "images" {
				isFIT = true
			}
			if len(stack) == 3 && stack[1] == "images" {
				imgs = append(imgs, fdtImage{name: name})
				cur = &imgs[len(imgs)-1]
			}
		case 2: // end node
			if len(stack) == 0 {
				return imgs, isFIT, errors.New("unbalanced end of node")
			}
			if len(stack) == 3 {
				cur = nil
			}
			stack = stack[:len(stack)-1]
		case 3: // property
			n, err := u32()
			if err != nil {
				return imgs, isFIT, err
			}
			nameOff, err := u32()
			if err != nil {
				return imgs, isFIT, err
			}
			if uint64(p)+uint64(n) > uint64(len(st)) || nameOff >= uint32(len(strs)) {
				return imgs, isFIT, errors.New("property outside the structure block")
			}
			val := st[p : p+int(n)]
			p += int(alignUp(int64(n), 4))
			if cur == nil || len(stack) != 3 {
				continue
			}
			pn := strs[nameOff:]
			if i := bytes.IndexByte(pn, 0); i >= 0 {
				pn = pn[:i]
			}
			str := strings.TrimRight(string(val), "\x00")
			switch string(pn) {
			case "data":
				cur.data = val
			case "compression":
				cur.compression = str
			case "type":
				cur.typ = str
			case "data-offset", "data-position":
				if len(val) == 4 {
					cur.extOff, cur.hasExt = int64(binary.BigEndian.Uint32(val)), true
					cur.absolute = string(pn) == "data-position"
				}
			case "data-size":
				if len(val) == 4 {
					cur.extSize = int64(binary.BigEndian.Uint32(val))
				}
			}
		case 4: // nop
		case 9: // end
			return imgs, isFIT, nil
		default:
			return imgs, isFIT, fmt.Errorf("bad device tree token 0x%x", tok)
		}
	}
}

// Unpack implements Unpacker.
func (FIT) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 40 {
		return 0, err
	}
	h, err := parseFDTHeader(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	if int64(h.total) > int64(len(b)) {
		return int64(len(b)), fmt.Errorf("device tree truncated: header says %d bytes, %d present", h.total, len(b))
	}
	imgs, isFIT, err := parseFIT(b, h)
	used := int64(h.total)
	if !isFIT {
		s.SetInfo("kind", "device tree")
		return used, err
	}
	s.SetInfo("kind", "FIT image")
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	extBase := alignUp(int64(h.total), 4)
	for _, im := range imgs {
		data := im.data
		if im.hasExt {
			off := extBase + im.extOff
			if im.absolute {
				off = im.extOff
			}
			if im.extSize < 0 || off+im.extSize > int64(len(b)) {
				errs = append(errs, fmt.Errorf("image %q: external data outside the file", im.name))
				continue
			}
			data = b[off : off+im.extSize]
			used = max(used, off+im.extSize)
		}
		if len(data) == 0 {
			continue
		}
		comp := im.compression
		if comp == "" {
			comp = "none"
		}
		name := safeBase(im.name)
		if name == "" {
			name = "image"
		}
		if err := decompressPayload(ctx, s, comp, name, data); err != nil {
			if errors.Is(err, ErrBudget) {
				return used, err
			}
			errs = append(errs, fmt.Errorf("image %q: %w", im.name, err))
		}
	}
	return used, errors.Join(errs...)
}
