package unpack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// Tar unpacks a POSIX/GNU tar archive.
type Tar struct{}

// Format implements Unpacker.
func (Tar) Format() string { return "tar" }

// Magics implements Unpacker.
func (Tar) Magics() []Magic { return []Magic{{257, []byte("ustar")}} }

// Identify implements Unpacker: the header checksum matches.
func (Tar) Identify(h []byte) bool {
	if len(h) < 512 {
		return false
	}
	want, err := strconv.ParseUint(string(bytes.Trim(h[148:156], " \x00")), 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, c := range h[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += uint64(c)
	}
	return sum == want
}

// Unpack implements Unpacker.
func (Tar) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	cr := newCountingReader(r, size)
	tr := tar.NewReader(cr)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return cr.consumed(), err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return cr.consumed(), nil
		}
		if err != nil {
			if n == 0 {
				return 0, fmt.Errorf("%w: tar: %v", ErrNotFormat, err)
			}
			return cr.consumed(), fmt.Errorf("reading tar entry %d: %w", n, err)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = s.Dir(h.Name, mode)
		case tar.TypeReg, tar.TypeGNUSparse:
			err = s.File(h.Name, mode, tr)
		case tar.TypeSymlink:
			err = s.Symlink(h.Name, h.Linkname)
		case tar.TypeLink:
			err = s.Hardlink(h.Name, h.Linkname)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			err = s.Special(h.Name, h.FileInfo().Mode())
		}
		if err != nil {
			return cr.consumed(), err
		}
	}
}

// Zip unpacks a zip archive; encrypted members are recorded as refused.
type Zip struct{}

// Format implements Unpacker.
func (Zip) Format() string { return "zip" }

// Magics implements Unpacker.
func (Zip) Magics() []Magic { return []Magic{{0, []byte("PK\x03\x04")}} }

// Identify implements Unpacker.
func (Zip) Identify(h []byte) bool { return len(h) >= 30 }

// zipEnd finds where a zip that starts at 0 ends: the first end-of-central-
// directory record whose directory lies right before it.
func zipEnd(b []byte) (int64, bool) {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("PK\x05\x06"))
		if j < 0 {
			return 0, false
		}
		e := i + j
		i = e + 1
		if e+22 > len(b) {
			return 0, false
		}
		cdSize := int64(binary.LittleEndian.Uint32(b[e+12:]))
		cdOff := int64(binary.LittleEndian.Uint32(b[e+16:]))
		comment := int64(binary.LittleEndian.Uint16(b[e+20:]))
		end := int64(e) + 22 + comment
		if cdOff+cdSize == int64(e) && end <= int64(len(b)) {
			return end, true
		}
		// ZIP64 and archives with prefixes are not carved precisely.
		if cdOff == 0xffffffff && end <= int64(len(b)) {
			return end, true
		}
	}
}

// Unpack implements Unpacker.
func (Zip) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil {
		return 0, err
	}
	end, ok := zipEnd(b)
	if !ok {
		return 0, fmt.Errorf("%w: zip: no end of central directory", ErrNotFormat)
	}
	zr, err := zip.NewReader(bytes.NewReader(b[:end]), end)
	if err != nil {
		return 0, fmt.Errorf("%w: zip: %v", ErrNotFormat, err)
	}
	var firstErr error
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return end, err
		}
		mode := f.Mode()
		switch {
		case f.Flags&0x1 != 0:
			s.refuse(f.Name, "encrypted zip member")
		case mode.IsDir():
			err = s.Dir(f.Name, mode.Perm())
		case mode&fs.ModeSymlink != 0:
			err = zipSymlink(s, f)
		case mode.IsRegular():
			var rc io.ReadCloser
			if rc, err = f.Open(); err == nil {
				err = s.File(f.Name, mode.Perm(), rc)
				rc.Close()
			}
		default:
			err = s.Special(f.Name, mode)
		}
		if errors.Is(err, ErrBudget) {
			return end, err
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("zip member %q: %w", f.Name, err)
		}
	}
	return end, firstErr
}

func zipSymlink(s *Sink, f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	t, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return err
	}
	return s.Symlink(f.Name, string(t))
}

// CPIO unpacks cpio archives: "newc" (070701), "crc" (070702), portable
// "odc" (070707) and old binary (0x71c7, either byte order).
type CPIO struct{}

// Format implements Unpacker.
func (CPIO) Format() string { return "cpio" }

// Magics implements Unpacker.
func (CPIO) Magics() []Magic {
	return []Magic{{0, []byte("07070")}, {0, []byte{0xc7, 0x71}}, {0, []byte{0x71, 0xc7}}}
}

// Identify implements Unpacker.
func (CPIO) Identify(h []byte) bool {
	if len(h) < 26 {
		return false
	}
	if bytes.HasPrefix(h, []byte("07070")) {
		return h[5] == '1' || h[5] == '2' || h[5] == '7'
	}
	return true
}

// cpioEntry is one parsed header.
type cpioEntry struct {
	name          string
	mode          uint32
	ino, nlink    uint64
	size          int64
	dataOff, next int64
}

const maxCPIOName = 4096

// parseCPIOHeader reads the header at off. It is a pure function of the
// bytes so it can be fuzzed.
func parseCPIOHeader(r io.ReaderAt, off, size int64) (cpioEntry, error) {
	var e cpioEntry
	var magic [6]byte
	if _, err := r.ReadAt(magic[:], off); err != nil {
		return e, fmt.Errorf("header at 0x%x: %w", off, err)
	}
	hex := func(b []byte) (uint64, error) { return strconv.ParseUint(string(b), 16, 32) }
	oct := func(b []byte) (uint64, error) { return strconv.ParseUint(string(b), 8, 64) }
	var namesize uint64
	var hdrLen, align int64
	switch {
	case string(magic[:]) == "070701" || string(magic[:]) == "070702":
		hdrLen, align = 110, 4
		var h [110]byte
		if _, err := r.ReadAt(h[:], off); err != nil {
			return e, fmt.Errorf("newc header at 0x%x: %w", off, err)
		}
		var v [13]uint64
		for i := range v {
			x, err := hex(h[6+8*i : 14+8*i])
			if err != nil {
				return e, fmt.Errorf("newc header at 0x%x: field %d: %w", off, i, err)
			}
			v[i] = x
		}
		e.ino, e.mode, e.nlink, e.size, namesize = v[0], uint32(v[1]), v[4], int64(v[6]), v[11]
	case string(magic[:]) == "070707":
		hdrLen, align = 76, 1
		var h [76]byte
		if _, err := r.ReadAt(h[:], off); err != nil {
			return e, fmt.Errorf("odc header at 0x%x: %w", off, err)
		}
		fields := []struct{ a, b int }{{12, 18}, {18, 24}, {36, 42}, {59, 65}, {65, 76}}
		var v [5]uint64
		for i, f := range fields {
			x, err := oct(h[f.a:f.b])
			if err != nil {
				return e, fmt.Errorf("odc header at 0x%x: %w", off, err)
			}
			v[i] = x
		}
		e.ino, e.mode, e.nlink, namesize, e.size = v[0], uint32(v[1]), v[2], v[3], int64(v[4])
	case magic[0] == 0xc7 && magic[1] == 0x71 || magic[0] == 0x71 && magic[1] == 0xc7:
		hdrLen, align = 26, 2
		var h [26]byte
		if _, err := r.ReadAt(h[:], off); err != nil {
			return e, fmt.Errorf("binary header at 0x%x: %w", off, err)
		}
		var bo binary.ByteOrder = binary.LittleEndian
		if magic[0] == 0x71 {
			bo = binary.BigEndian
		}
		u := func(i int) uint64 { return uint64(bo.Uint16(h[i:])) }
		e.ino, e.mode, e.nlink = u(4), uint32(u(6)), u(12)
		namesize = u(20)
		e.size = int64(u(22)<<16 | u(24))
	default:
		return e, fmt.Errorf("bad cpio magic %q at 0x%x", magic[:], off)
	}
	if namesize == 0 || namesize > maxCPIOName {
		return e, fmt.Errorf("cpio name size %d at 0x%x", namesize, off)
	}
	nameOff := off + hdrLen
	name := make([]byte, namesize)
	if _, err := r.ReadAt(name, nameOff); err != nil {
		return e, fmt.Errorf("cpio name at 0x%x: %w", nameOff, err)
	}
	e.name = string(bytes.TrimRight(name, "\x00"))
	e.dataOff = alignUp(nameOff+int64(namesize), align)
	if align == 4 {
		e.dataOff = off + alignUp(hdrLen+int64(namesize), 4)
	}
	if e.size < 0 || e.dataOff+e.size > size {
		return e, fmt.Errorf("cpio member %q: %d bytes of data run past the end", e.name, e.size)
	}
	e.next = alignUp(e.dataOff+e.size, align)
	if align == 4 {
		e.next = off + alignUp(e.dataOff-off+e.size, 4)
	}
	return e, nil
}

func alignUp(v, a int64) int64 { return (v + a - 1) / a * a }

// Unpack implements Unpacker.
func (CPIO) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	var off int64
	links := map[uint64][]string{} // newc hard links whose data comes last
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		e, err := parseCPIOHeader(r, off, size)
		if err != nil {
			if n == 0 {
				return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
			}
			return off, fmt.Errorf("cpio entry %d: %w", n, err)
		}
		off = min(e.next, size)
		if e.name == "TRAILER!!!" {
			// Links whose data never came are empty files.
			for _, names := range links {
				for _, name := range names {
					if err := s.File(name, 0o644, bytes.NewReader(nil)); err != nil {
						return off, err
					}
				}
			}
			return off, nil
		}
		perm := fs.FileMode(e.mode & 0o777)
		data := io.NewSectionReader(r, e.dataOff, e.size)
		switch e.mode & 0o170000 {
		case 0o040000:
			err = s.Dir(e.name, perm)
		case 0o100000:
			if e.nlink > 1 && e.size == 0 {
				links[e.ino] = append(links[e.ino], e.name)
				continue
			}
			err = s.File(e.name, perm, data)
			for _, other := range links[e.ino] {
				if err == nil {
					err = s.Hardlink(other, e.name)
				}
			}
			delete(links, e.ino)
		case 0o120000:
			t, rerr := io.ReadAll(io.LimitReader(data, 4096))
			if rerr != nil {
				return off, fmt.Errorf("cpio symlink %q: %w", e.name, rerr)
			}
			err = s.Symlink(e.name, string(t))
		default:
			err = s.Special(e.name, fs.ModeDevice)
		}
		if err != nil {
			return off, err
		}
	}
}

// Ar unpacks Unix ar archives (System V/GNU), the outer layer of .deb
// and older .ipk packages.
type Ar struct{}

// Format implements Unpacker.
func (Ar) Format() string { return "ar" }

// Magics implements Unpacker.
func (Ar) Magics() []Magic { return []Magic{{0, []byte("!<arch>\n")}} }

// Identify implements Unpacker: the first member header ends in "`\n".
func (Ar) Identify(h []byte) bool { return len(h) >= 68 && string(h[66:68]) == "`\n" }

// Unpack implements Unpacker.
func (Ar) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 68 {
		return 0, err
	}
	pos := int64(8)
	var longNames []byte
	for n := 0; pos+60 <= int64(len(b)); n++ {
		if err := ctx.Err(); err != nil {
			return pos, err
		}
		h := b[pos : pos+60]
		if string(h[58:60]) != "`\n" {
			if n == 0 {
				return 0, fmt.Errorf("%w: bad ar member header", ErrNotFormat)
			}
			break // trailing data after the archive
		}
		sz, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || sz < 0 || pos+60+sz > int64(len(b)) {
			return pos, fmt.Errorf("ar member %d: bad size %q", n, h[48:58])
		}
		name := strings.TrimRight(string(h[0:16]), " ")
		data := b[pos+60 : pos+60+sz]
		pos = alignUp(pos+60+sz, 2)
		switch {
		case name == "/" || name == "/SYM64/" || name == "__.SYMDEF":
			continue // symbol table
		case name == "//":
			longNames = data
			continue
		case strings.HasPrefix(name, "/") && len(name) > 1:
			off, err := strconv.Atoi(name[1:])
			if err != nil || off >= len(longNames) {
				return pos, fmt.Errorf("ar member %d: bad long name %q", n, name)
			}
			end := bytes.IndexAny(longNames[off:], "/\n")
			if end < 0 {
				end = len(longNames) - off
			}
			name = string(longNames[off : off+end])
		case strings.HasPrefix(name, "#1/"): // BSD: name stored before the data
			l, err := strconv.Atoi(name[3:])
			if err != nil || l < 0 || int64(l) > sz {
				return pos, fmt.Errorf("ar member %d: bad BSD name %q", n, name)
			}
			name, data = string(bytes.TrimRight(data[:l], "\x00")), data[l:]
		}
		name = strings.TrimSuffix(name, "/")
		mode, _ := strconv.ParseUint(strings.TrimSpace(string(h[40:48])), 8, 32)
		if err := s.fileBytes(name, fs.FileMode(mode&0o777), data, false); err != nil {
			return pos, err
		}
	}
	return min(pos, int64(len(b))), nil
}
