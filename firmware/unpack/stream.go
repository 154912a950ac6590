package unpack

import (
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
	xi2 "github.com/xi2/xz"
)

// countingReader reads an io.ReaderAt sequentially through a small buffer
// and knows exactly how many bytes its consumer took, which tells a
// carver where a stream ended. It implements io.ByteReader so that
// decompressors read no further than they need.
type countingReader struct {
	r        io.ReaderAt
	size     int64
	pos      int64 // next byte to fill the buffer from
	buf      []byte
	off, end int
}

func newCountingReader(r io.ReaderAt, size int64) *countingReader {
	return &countingReader{r: r, size: size, buf: make([]byte, 4<<10)}
}

// consumed returns how many bytes were handed out.
func (c *countingReader) consumed() int64 { return c.pos - int64(c.end-c.off) }

func (c *countingReader) fill() error {
	if c.pos >= c.size {
		return io.EOF
	}
	n := int64(len(c.buf))
	if c.size-c.pos < n {
		n = c.size - c.pos
	}
	m, err := c.r.ReadAt(c.buf[:n], c.pos)
	if m == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	c.pos += int64(m)
	c.off, c.end = 0, m
	return nil
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.off == c.end {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.off:c.end])
	c.off += n
	return n, nil
}

func (c *countingReader) ReadByte() (byte, error) {
	if c.off == c.end {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	b := c.buf[c.off]
	c.off++
	return b, nil
}

// limit returns how many bytes the layer may still produce.
func (s *Sink) limit() int64 {
	l := s.tree.budget.remaining()
	if rl := s.ratioLimit(); rl < l {
		l = rl
	}
	return max(l, 0)
}

// readAllBounded reads dec to its end within the layer's limits.
func readAllBounded(s *Sink, dec io.Reader, name string) ([]byte, error) {
	lim := s.limit()
	out, err := io.ReadAll(io.LimitReader(dec, lim+1))
	if int64(len(out)) > lim {
		return out[:lim], s.overBudget(name)
	}
	return out, err
}

// decodeStream decompresses one stream into a blob. minOut is the output
// below which a decoding error means "false match" rather than "corrupt".
func decodeStream(ctx context.Context, s *Sink, format, name string, dec io.Reader, derr error, minOut int, used func() int64) (int64, error) {
	if derr != nil {
		return 0, fmt.Errorf("%w: %s header: %v", ErrNotFormat, format, derr)
	}
	out, err := readAllBounded(s, &ctxReader{ctx, dec}, name)
	if err != nil && !errors.Is(err, ErrBudget) && len(out) < max(minOut, 1) {
		return 0, fmt.Errorf("%w: %s: %v", ErrNotFormat, format, err)
	}
	if berr := s.fileBytes(name, 0o644, out, true); berr != nil && err == nil {
		err = berr
	}
	if err != nil {
		return used(), fmt.Errorf("decompressing %s (%d bytes out before the error): %w", format, len(out), err)
	}
	return used(), nil
}

// ctxReader stops a long decompression when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Gzip unpacks one gzip member.
type Gzip struct{}

// Format implements Unpacker.
func (Gzip) Format() string { return "gzip" }

// Magics implements Unpacker.
func (Gzip) Magics() []Magic { return []Magic{{0, []byte{0x1f, 0x8b, 0x08}}} }

// Identify implements Unpacker: deflate method, no reserved flag bits.
func (Gzip) Identify(h []byte) bool {
	return len(h) >= 10 && h[0] == 0x1f && h[1] == 0x8b && h[2] == 8 && h[3]&0xe0 == 0
}

// Unpack implements Unpacker.
func (Gzip) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	cr := newCountingReader(r, size)
	zr, err := gzip.NewReader(cr)
	name := "data"
	if err == nil {
		zr.Multistream(false)
		if n := safeBase(zr.Name); n != "" {
			name = n
		}
	}
	return decodeStream(ctx, s, "gzip", name, zr, err, 1, cr.consumed)
}

// safeBase returns the last element of an embedded file name, or "".
func safeBase(n string) string {
	n = path.Base(strings.ReplaceAll(n, "\\", "/"))
	if n == "." || n == "/" || n == ".." || strings.ContainsRune(n, 0) {
		return ""
	}
	return n
}

// XZ unpacks one xz stream.
type XZ struct{}

// Format implements Unpacker.
func (XZ) Format() string { return "xz" }

// Magics implements Unpacker.
func (XZ) Magics() []Magic { return []Magic{{0, []byte{0xfd, '7', 'z', 'X', 'Z', 0}}} }

// Identify implements Unpacker.
func (XZ) Identify(h []byte) bool { return len(h) >= 12 }

// xzStreamEnd finds where the xz stream at the start of b ends: the
// first 4-byte aligned stream footer whose CRC and flags match.
func xzStreamEnd(b []byte) (int64, bool) {
	if len(b) < 24 {
		return 0, false
	}
	flags := b[6:8]
	for i := 12; i+12 <= len(b); {
		j := bytes.Index(b[i+10:], []byte("YZ"))
		if j < 0 {
			return 0, false
		}
		f := i + j // candidate footer start
		i = f + 1
		if f%4 != 0 || f+12 > len(b) {
			continue
		}
		if crc32.ChecksumIEEE(b[f+4:f+10]) == binary.LittleEndian.Uint32(b[f:]) && bytes.Equal(b[f+8:f+10], flags) {
			return int64(f + 12), true
		}
	}
	return 0, false
}

// Unpack implements Unpacker. The stream's extent comes from its footer,
// so the faster XZ Embedded decoder (which reads ahead) can be used.
func (XZ) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil {
		return 0, err
	}
	end, ok := xzStreamEnd(b)
	if !ok {
		end = int64(len(b)) // truncated: decode what is there
	}
	zr, err := xi2.NewReader(bytes.NewReader(b[:end]), 1<<27)
	var dec io.Reader
	if err == nil {
		zr.Multistream(false)
		dec = zr
	}
	used, err := decodeStream(ctx, s, "xz", "data", dec, err, 1, func() int64 { return end })
	if err == nil && !ok {
		err = errors.New("xz stream has no footer (truncated?)")
	}
	return used, err
}

// LZMA unpacks a raw LZMA ("lzma_alone") stream as found in uImages and
// vendor kernels. Its magic is weak, so short garbage outputs are dropped.
type LZMA struct{}

// Format implements Unpacker.
func (LZMA) Format() string { return "lzma" }

// Magics implements Unpacker: the usual properties byte 0x5d and a
// dictionary of at least 64 KiB.
func (LZMA) Magics() []Magic { return []Magic{{0, []byte{0x5d, 0, 0}}} }

// Identify implements Unpacker: a plausible dictionary size and
// uncompressed size (unknown, or under 1 GiB).
func (LZMA) Identify(h []byte) bool {
	if len(h) < 13 || h[0] >= 9*5*5 {
		return false
	}
	dict := binary.LittleEndian.Uint32(h[1:5])
	if dict < 1<<12 || dict > 1<<29 || !plausibleDict(dict) {
		return false
	}
	usize := binary.LittleEndian.Uint64(h[5:13])
	return usize == ^uint64(0) || (usize > 0 && usize < 1<<30)
}

func plausibleDict(d uint32) bool {
	for i := 12; i <= 29; i++ {
		if d == 1<<i || d == 1<<i+1<<(i-1) {
			return true
		}
	}
	return false
}

// lzmaMinOut is the output a raw LZMA candidate must reach before an
// error counts as corruption rather than a false match.
const lzmaMinOut = 4096

// lzmaProbe decodes the first bytes of a candidate with a small
// dictionary (enough for the first lzmaMinOut bytes), so that false
// candidates cost kilobytes rather than their header's dictionary size.
func lzmaProbe(b []byte) error {
	if len(b) < 13 {
		return io.ErrUnexpectedEOF
	}
	hdr := append([]byte(nil), b[:13]...)
	binary.LittleEndian.PutUint32(hdr[1:], 1<<16)
	zr, err := lzma.NewReader(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(b[13:])))
	if err != nil {
		return err
	}
	want := int64(lzmaMinOut)
	if usize := binary.LittleEndian.Uint64(b[5:13]); usize != ^uint64(0) && int64(usize) < want {
		want = int64(usize)
	}
	n, err := io.CopyN(io.Discard, zr, want)
	if n < want {
		return fmt.Errorf("decodes only %d bytes: %v", n, err)
	}
	return nil
}

// Unpack implements Unpacker.
func (LZMA) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	if b, err := readAtMost(r, size, min(size, 1<<20)); err != nil || lzmaProbe(b) != nil {
		return 0, fmt.Errorf("%w: lzma probe failed", ErrNotFormat)
	}
	cr := newCountingReader(r, size)
	zr, err := lzma.NewReader(cr)
	var dec io.Reader
	if err == nil {
		dec = zr
	}
	return decodeStream(ctx, s, "lzma", "data", dec, err, lzmaMinOut, cr.consumed)
}

// Bzip2 unpacks one bzip2 stream.
type Bzip2 struct{}

// Format implements Unpacker.
func (Bzip2) Format() string { return "bzip2" }

// Magics implements Unpacker.
func (Bzip2) Magics() []Magic { return []Magic{{0, []byte("BZh")}} }

// Identify implements Unpacker: block size digit and block magic.
func (Bzip2) Identify(h []byte) bool {
	return len(h) >= 10 && h[3] >= '1' && h[3] <= '9' &&
		bytes.Equal(h[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59})
}

// Unpack implements Unpacker.
func (Bzip2) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	cr := newCountingReader(r, size)
	dec := &bzip2Single{r: bzip2.NewReader(cr)}
	used, err := decodeStream(ctx, s, "bzip2", "data", dec, nil, 1, cr.consumed)
	if dec.trailing {
		used -= 2 // the two bytes read looking for a following stream
	}
	return used, err
}

// bzip2Single turns the standard reader's complaint about data after the
// stream (it looks for a concatenated stream) into a clean end.
type bzip2Single struct {
	r        io.Reader
	trailing bool
}

func (b *bzip2Single) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var se bzip2.StructuralError
	if errors.As(err, &se) && strings.Contains(string(se), "continuation") {
		b.trailing = true
		return n, io.EOF
	}
	return n, err
}

// Zstd unpacks one Zstandard frame.
type Zstd struct{}

// Format implements Unpacker.
func (Zstd) Format() string { return "zstd" }

// Magics implements Unpacker.
func (Zstd) Magics() []Magic { return []Magic{{0, []byte{0x28, 0xb5, 0x2f, 0xfd}}} }

// Identify implements Unpacker: the reserved descriptor bit is clear.
func (Zstd) Identify(h []byte) bool { return len(h) >= 6 && h[4]&0x08 == 0 }

// zstdFrameSize walks a frame's block headers (RFC 8878) to find its end
// without decompressing.
func zstdFrameSize(b []byte) (int64, error) {
	if len(b) < 6 {
		return 0, io.ErrUnexpectedEOF
	}
	fhd := b[4]
	single := fhd&0x20 != 0
	p := 5
	if !single {
		p++
	}
	p += [4]int{0, 1, 2, 4}[fhd&3]
	fcs := [4]int{0, 2, 4, 8}[fhd>>6]
	if fhd>>6 == 0 && single {
		fcs = 1
	}
	p += fcs
	for {
		if p+3 > len(b) {
			return 0, fmt.Errorf("frame truncated at block header %d: %w", p, io.ErrUnexpectedEOF)
		}
		h := uint32(b[p]) | uint32(b[p+1])<<8 | uint32(b[p+2])<<16
		p += 3
		last, typ, bs := h&1 != 0, (h>>1)&3, int(h>>3)
		switch typ {
		case 1:
			p++
		case 3:
			return 0, errors.New("reserved block type")
		default:
			p += bs
		}
		if p > len(b) {
			return 0, fmt.Errorf("block runs past the end: %w", io.ErrUnexpectedEOF)
		}
		if last {
			break
		}
	}
	if fhd&0x04 != 0 {
		p += 4
	}
	if p > len(b) {
		return 0, io.ErrUnexpectedEOF
	}
	return int64(p), nil
}

// Unpack implements Unpacker.
func (Zstd) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil {
		return 0, err
	}
	n, ferr := zstdFrameSize(b)
	if ferr != nil {
		return 0, fmt.Errorf("%w: zstd: %v", ErrNotFormat, ferr)
	}
	dec, err := zstd.NewReader(bytes.NewReader(b[:n]), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(max(s.limit(), 1))), zstd.WithDecoderMaxWindow(1<<30))
	if err != nil {
		return 0, fmt.Errorf("%w: zstd: %v", ErrNotFormat, err)
	}
	defer dec.Close()
	return decodeStream(ctx, s, "zstd", "data", dec, nil, 1, func() int64 { return n })
}

// LZ4 unpacks one LZ4 frame.
type LZ4 struct{}

// Format implements Unpacker.
func (LZ4) Format() string { return "lz4" }

// Magics implements Unpacker.
func (LZ4) Magics() []Magic { return []Magic{{0, []byte{0x04, 0x22, 0x4d, 0x18}}} }

// Identify implements Unpacker: frame version 01.
func (LZ4) Identify(h []byte) bool { return len(h) >= 7 && h[4]>>6 == 1 && h[4]&0x02 == 0 }

// lz4FrameSize walks the block sizes of an LZ4 frame to find its end.
func lz4FrameSize(b []byte) (int64, error) {
	if len(b) < 7 {
		return 0, io.ErrUnexpectedEOF
	}
	flg := b[4]
	p := 6
	if flg&0x08 != 0 {
		p += 8
	}
	if flg&0x01 != 0 {
		p += 4
	}
	p++ // header checksum
	for {
		if p+4 > len(b) {
			return 0, fmt.Errorf("frame truncated: %w", io.ErrUnexpectedEOF)
		}
		bs := binary.LittleEndian.Uint32(b[p:])
		p += 4
		if bs == 0 {
			break
		}
		p += int(bs & 0x7fffffff)
		if flg&0x10 != 0 {
			p += 4
		}
		if p > len(b) || p < 0 {
			return 0, fmt.Errorf("block runs past the end: %w", io.ErrUnexpectedEOF)
		}
	}
	if flg&0x04 != 0 {
		p += 4
	}
	if p > len(b) {
		return 0, io.ErrUnexpectedEOF
	}
	return int64(p), nil
}

// Unpack implements Unpacker.
func (LZ4) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil {
		return 0, err
	}
	n, ferr := lz4FrameSize(b)
	if ferr != nil {
		return 0, fmt.Errorf("%w: lz4: %v", ErrNotFormat, ferr)
	}
	return decodeStream(ctx, s, "lz4", "data", lz4.NewReader(bytes.NewReader(b[:n])), nil, 1, func() int64 { return n })
}

// sliceReader is the io.ReaderAt the engine hands to unpackers; formats
// that need random access to all of their bytes use the slice directly.
type sliceReader []byte

// ReadAt implements io.ReaderAt.
func (s sliceReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(s)) {
		return 0, io.EOF
	}
	n := copy(p, s[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readAtMost returns the first min(size, limit) bytes of r, sharing the
// memory when r is a sliceReader.
func readAtMost(r io.ReaderAt, size, limit int64) ([]byte, error) {
	n := min(size, limit)
	if sr, ok := r.(sliceReader); ok {
		return sr[:min(n, int64(len(sr)))], nil
	}
	if n < 0 {
		n = 0
	}
	b := make([]byte, n)
	m, err := r.ReadAt(b, 0)
	if m == len(b) {
		return b, nil
	}
	return b[:m], fmt.Errorf("reading: %w", err)
}
