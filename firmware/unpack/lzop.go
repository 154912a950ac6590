package unpack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"

	"github.com/anchore/go-lzo"
	"github.com/pierrec/lz4/v4"
)

// LZOP unpacks an lzop file (also the "lzo" payload format of U-Boot
// images): a header, then LZO1X blocks each with its sizes and optional
// checksums. Written from the lzop file format description.
type LZOP struct{}

// Format implements Unpacker.
func (LZOP) Format() string { return "lzop" }

var lzopMagic = []byte{0x89, 'L', 'Z', 'O', 0, 0x0d, 0x0a, 0x1a, 0x0a}

// Magics implements Unpacker.
func (LZOP) Magics() []Magic { return []Magic{{0, lzopMagic}} }

// Identify implements Unpacker.
func (LZOP) Identify(h []byte) bool { return len(h) >= 30 }

const (
	lzopAdler32D = 0x1
	lzopAdler32C = 0x2
	lzopExtra    = 0x40
	lzopCRC32D   = 0x100
	lzopCRC32C   = 0x200
	lzopFilter   = 0x800
	lzopMaxBlock = 64 << 20
)

// lzopHeader parses the header and returns the offset of the first block.
func lzopHeader(b []byte) (flags uint32, pos int, name string, err error) {
	be := binary.BigEndian
	if len(b) < 30 {
		return 0, 0, "", io.ErrUnexpectedEOF
	}
	pos = 9
	version := be.Uint16(b[pos:])
	pos += 4 // version, library version
	if version >= 0x0940 {
		pos += 2 // version needed
	}
	method := b[pos]
	pos++
	if version >= 0x0940 {
		pos++ // level
	}
	if method < 1 || method > 3 {
		return 0, 0, "", fmt.Errorf("lzop method %d not supported", method)
	}
	flags = be.Uint32(b[pos:])
	pos += 4
	if flags&lzopFilter != 0 {
		pos += 4
	}
	pos += 8 // mode, mtime low
	if version >= 0x0940 {
		pos += 4 // mtime high
	}
	if pos+1 > len(b) {
		return 0, 0, "", io.ErrUnexpectedEOF
	}
	n := int(b[pos])
	pos++
	if pos+n+4 > len(b) {
		return 0, 0, "", io.ErrUnexpectedEOF
	}
	name = string(b[pos : pos+n])
	pos += n + 4 // name, header checksum
	if flags&lzopExtra != 0 {
		if pos+4 > len(b) {
			return 0, 0, "", io.ErrUnexpectedEOF
		}
		pos += 4 + int(be.Uint32(b[pos:])) + 4
	}
	if pos > len(b) {
		return 0, 0, "", io.ErrUnexpectedEOF
	}
	return flags, pos, name, nil
}

// Unpack implements Unpacker.
func (LZOP) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 30 {
		return 0, err
	}
	flags, pos, name, err := lzopHeader(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	be := binary.BigEndian
	var out []byte
	limit := s.limit()
	var derr error
	for {
		if err := ctx.Err(); err != nil {
			return int64(pos), err
		}
		if pos+4 > len(b) {
			derr = errors.New("lzop data truncated")
			break
		}
		usize := int(be.Uint32(b[pos:]))
		pos += 4
		if usize == 0 {
			break
		}
		if pos+4 > len(b) || usize > lzopMaxBlock {
			derr = fmt.Errorf("lzop block of %d bytes", usize)
			break
		}
		csize := int(be.Uint32(b[pos:]))
		pos += 4
		var dsum uint32
		hasD := flags&(lzopAdler32D|lzopCRC32D) != 0
		if hasD {
			if pos+4 > len(b) {
				derr = io.ErrUnexpectedEOF
				break
			}
			dsum = be.Uint32(b[pos:])
			pos += 4
		}
		if csize < usize && flags&(lzopAdler32C|lzopCRC32C) != 0 {
			pos += 4
		}
		if csize > usize || pos+csize > len(b) {
			derr = fmt.Errorf("lzop block: %d compressed bytes for %d", csize, usize)
			break
		}
		if int64(len(out)+usize) > limit {
			derr = s.overBudget(name)
			break
		}
		var blk []byte
		if csize == usize {
			blk = b[pos : pos+csize]
		} else {
			dst := make([]byte, usize)
			n, err := lzo.Decompress(b[pos:pos+csize], dst)
			if err != nil || n != usize {
				derr = fmt.Errorf("lzo block at 0x%x: %v (%d of %d bytes)", pos, err, n, usize)
				break
			}
			blk = dst
		}
		if hasD {
			var got uint32
			if flags&lzopCRC32D != 0 {
				got = crc32.ChecksumIEEE(blk)
			} else {
				got = adler32.Checksum(blk)
			}
			if got != dsum {
				derr = fmt.Errorf("lzop block at 0x%x: checksum mismatch", pos)
				break
			}
		}
		out = append(out, blk...)
		pos += csize
	}
	if derr != nil && len(out) == 0 && !errors.Is(derr, ErrBudget) {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, derr)
	}
	if n := safeBase(name); n != "" {
		name = n
	} else {
		name = "data"
	}
	if err := s.fileBytes(name, 0o644, out, true); err != nil {
		return int64(pos), err
	}
	return int64(pos), derr
}

// LZ4Legacy unpacks the legacy LZ4 frame the Linux kernel's lz4
// compression (and lz4 -l) writes: 8 MiB blocks, each behind its
// compressed size, until the data ends.
type LZ4Legacy struct{}

// Format implements Unpacker.
func (LZ4Legacy) Format() string { return "lz4-legacy" }

// Magics implements Unpacker.
func (LZ4Legacy) Magics() []Magic { return []Magic{{0, []byte{0x02, 0x21, 0x4c, 0x18}}} }

// Identify implements Unpacker.
func (LZ4Legacy) Identify(h []byte) bool {
	return len(h) >= 8 && int(binary.LittleEndian.Uint32(h[4:])) <= lz4.CompressBlockBound(8<<20)
}

// Unpack implements Unpacker.
func (LZ4Legacy) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 8 {
		return 0, err
	}
	le := binary.LittleEndian
	pos := 4
	var out []byte
	limit := s.limit()
	buf := make([]byte, 8<<20)
	var derr error
	for pos+4 <= len(b) {
		if err := ctx.Err(); err != nil {
			return int64(pos), err
		}
		n := le.Uint32(b[pos:])
		if n == 0x184c2102 { // concatenated frame
			pos += 4
			continue
		}
		if int(n) > lz4.CompressBlockBound(8<<20) || pos+4+int(n) > len(b) || n == 0 {
			break // end of the stream (the kernel appends its size here)
		}
		m, err := lz4.UncompressBlock(b[pos+4:pos+4+int(n)], buf)
		if err != nil {
			if len(out) == 0 {
				return 0, fmt.Errorf("%w: lz4 legacy block: %v", ErrNotFormat, err)
			}
			break
		}
		if int64(len(out)+m) > limit {
			derr = s.overBudget("lz4 legacy stream")
			break
		}
		out = append(out, buf[:m]...)
		pos += 4 + int(n)
	}
	if len(out) == 0 && derr == nil {
		return 0, fmt.Errorf("%w: empty lz4 legacy stream", ErrNotFormat)
	}
	if err := s.fileBytes("data", 0o644, out, true); err != nil {
		return int64(pos), err
	}
	return int64(pos), derr
}
