package unpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"path"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
	xi2 "github.com/xi2/xz"
	"golang.org/x/sync/errgroup"
)

// SquashFS unpacks SquashFS 4.0 images, little- and big-endian, with
// gzip, lzma (with or without the 8-byte size field vendors drop), lzo,
// xz, lz4 and zstd compression, and the 2.x and 3.x images older and
// vendor firmware ships (zlib or LZMA blocks, see squashfs3.go). Data
// blocks are decompressed by Workers goroutines in parallel. Written from
// the format documentation (squashfs-tools' squashfs_fs.h and
// squashfs_compat.h layouts).
type SquashFS struct {
	Workers int
}

// Format implements Unpacker.
func (SquashFS) Format() string { return "squashfs" }

// Magics implements Unpacker.
func (SquashFS) Magics() []Magic {
	ms := make([]Magic, 0, len(sqMagics))
	for _, m := range sqMagics {
		ms = append(ms, Magic{0, []byte(m.magic)})
	}
	return ms
}

// Identify implements Unpacker.
func (SquashFS) Identify(h []byte) bool {
	_, _, err := parseSuperblock(h)
	return err == nil
}

const (
	sqSuperblockSize = 96
	sqMetaSize       = 8192
	sqNoFragment     = 0xffffffff
	sqUncompressed   = 1 << 24
	sqMaxDirDepth    = 256
)

var sqCompressors = map[uint16]string{1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}

type superblock struct {
	inodes, blockSize, fragCount     uint32
	compression, blockLog, flags     uint16
	major, minor                     uint16
	rootInode, bytesUsed             uint64
	idTable, xattrTable, inodeTable  uint64
	dirTable, fragTable, exportTable uint64
}

// parseSuperblock validates the fixed header. 2.x and 3.x superblocks are
// parsed by parseLegacySuperblock; 1.x parses (so the layer is reported)
// but Unpack refuses it.
func parseSuperblock(h []byte) (superblock, binary.ByteOrder, error) {
	var sb superblock
	if len(h) < sqSuperblockSize {
		return sb, nil, errors.New("squashfs superblock truncated")
	}
	var bo binary.ByteOrder
	for _, m := range sqMagics {
		if string(h[:4]) == m.magic {
			bo = m.order
		}
	}
	if bo == nil {
		return sb, nil, errors.New("no squashfs magic")
	}
	sb.major, sb.minor = bo.Uint16(h[28:]), bo.Uint16(h[30:])
	switch sb.major {
	case 1:
		return sb, bo, nil
	case 2, 3:
		sb, err := parseLegacySuperblock(h, bo, sb.major, sb.minor)
		return sb, bo, err
	case 4:
	default:
		return sb, bo, fmt.Errorf("squashfs version %d.%d", sb.major, sb.minor)
	}
	sb.inodes = bo.Uint32(h[4:])
	sb.blockSize = bo.Uint32(h[12:])
	sb.fragCount = bo.Uint32(h[16:])
	sb.compression = bo.Uint16(h[20:])
	sb.blockLog = bo.Uint16(h[22:])
	sb.flags = bo.Uint16(h[24:])
	sb.rootInode = bo.Uint64(h[32:])
	sb.bytesUsed = bo.Uint64(h[40:])
	sb.idTable = bo.Uint64(h[48:])
	sb.xattrTable = bo.Uint64(h[56:])
	sb.inodeTable = bo.Uint64(h[64:])
	sb.dirTable = bo.Uint64(h[72:])
	sb.fragTable = bo.Uint64(h[80:])
	sb.exportTable = bo.Uint64(h[88:])
	switch {
	case sb.blockSize < 4096 || sb.blockSize > 1<<20 || bits.OnesCount32(sb.blockSize) != 1:
		return sb, bo, fmt.Errorf("squashfs block size %d", sb.blockSize)
	case uint32(1)<<sb.blockLog != sb.blockSize:
		return sb, bo, fmt.Errorf("squashfs block log %d does not match block size %d", sb.blockLog, sb.blockSize)
	case sqCompressors[sb.compression] == "":
		return sb, bo, fmt.Errorf("squashfs compression id %d", sb.compression)
	case sb.bytesUsed < sqSuperblockSize || sb.inodeTable >= sb.bytesUsed || sb.dirTable >= sb.bytesUsed ||
		sb.inodeTable < sqSuperblockSize || sb.dirTable < sb.inodeTable:
		return sb, bo, errors.New("squashfs table offsets inconsistent")
	}
	return sb, bo, nil
}

// squashReader reads one image held in b.
type squashReader struct {
	b      []byte
	bo     binary.ByteOrder
	sb     superblock
	decode func(src []byte, maxOut int) ([]byte, error)
	zstd   *zstd.Decoder
	// xzFallbacks counts xz blocks the fast LZMA2 path handed to xi2/xz.
	xzFallbacks atomic.Int64

	mu       sync.Mutex
	meta     map[uint64]metaBlock
	frags    []fragEntry
	fragErr  error
	fragOnce sync.Once
	fragData map[uint64]*fragSlot
}

type fragSlot struct {
	once sync.Once
	data []byte
	err  error
}

type metaBlock struct {
	data []byte
	next uint64
}

type fragEntry struct {
	start uint64
	size  uint32
}

// readMeta returns the metadata block at absolute position pos.
func (q *squashReader) readMeta(pos uint64) (metaBlock, error) {
	q.mu.Lock()
	m, ok := q.meta[pos]
	q.mu.Unlock()
	if ok {
		return m, nil
	}
	hl := q.metaHeaderLen()
	if pos+hl > q.sb.bytesUsed {
		return m, fmt.Errorf("metadata block at 0x%x outside the image", pos)
	}
	h := q.bo.Uint16(q.b[pos:])
	n := uint64(h & 0x7fff)
	if n == 0 || pos+hl+n > q.sb.bytesUsed {
		return m, fmt.Errorf("metadata block at 0x%x: bad length %d", pos, n)
	}
	src := q.b[pos+hl : pos+hl+n]
	if h&0x8000 != 0 {
		m.data = src
	} else {
		d, err := q.decode(src, sqMetaSize)
		if err != nil {
			return m, fmt.Errorf("metadata block at 0x%x: %w", pos, err)
		}
		m.data = d
	}
	if len(m.data) > sqMetaSize {
		return m, fmt.Errorf("metadata block at 0x%x decompresses to %d bytes", pos, len(m.data))
	}
	m.next = pos + hl + n
	q.mu.Lock()
	if len(q.meta) > 1<<16 {
		clear(q.meta)
	}
	q.meta[pos] = m
	q.mu.Unlock()
	return m, nil
}

// metaReader reads a byte stream that runs across metadata blocks.
type metaReader struct {
	q    *squashReader
	cur  metaBlock
	off  int
	read int64
}

func (q *squashReader) metaAt(tableStart, block uint64, offset uint16) (*metaReader, error) {
	m, err := q.readMeta(tableStart + block)
	if err != nil {
		return nil, err
	}
	if int(offset) > len(m.data) {
		return nil, fmt.Errorf("offset %d past metadata block at 0x%x", offset, tableStart+block)
	}
	return &metaReader{q: q, cur: m, off: int(offset)}, nil
}

func (r *metaReader) Read(p []byte) (int, error) {
	if r.off >= len(r.cur.data) {
		if r.cur.next >= r.q.sb.bytesUsed {
			return 0, io.EOF
		}
		m, err := r.q.readMeta(r.cur.next)
		if err != nil {
			return 0, err
		}
		r.cur, r.off = m, 0
	}
	n := copy(p, r.cur.data[r.off:])
	r.off += n
	r.read += int64(n)
	return n, nil
}

func (r *metaReader) bytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("metadata truncated: %w", err)
	}
	return b, nil
}

// inode is the part of an inode the unpacker needs.
type inode struct {
	typ        uint16
	mode       uint16
	dirBlock   uint32
	dirOffset  uint16
	dirSize    uint32
	blocks     uint64
	fileSize   uint64
	fragment   uint32
	fragOffset uint32
	blockSizes []uint32
	target     string
}

func (q *squashReader) readInode(ref uint64, limit int64) (inode, error) {
	if q.sb.major < 4 {
		return q.readLegacyInode(ref, limit)
	}
	var in inode
	r, err := q.metaAt(q.sb.inodeTable, ref>>16, uint16(ref&0xffff))
	if err != nil {
		return in, fmt.Errorf("inode 0x%x: %w", ref, err)
	}
	h, err := r.bytes(16)
	if err != nil {
		return in, fmt.Errorf("inode 0x%x: %w", ref, err)
	}
	bo := q.bo
	in.typ, in.mode = bo.Uint16(h), bo.Uint16(h[2:])
	switch in.typ {
	case 1:
		b, err := r.bytes(16)
		if err != nil {
			return in, err
		}
		in.dirBlock, in.dirSize, in.dirOffset = bo.Uint32(b), uint32(bo.Uint16(b[8:])), bo.Uint16(b[10:])
	case 8:
		b, err := r.bytes(24)
		if err != nil {
			return in, err
		}
		in.dirSize, in.dirBlock, in.dirOffset = bo.Uint32(b[4:]), bo.Uint32(b[8:]), bo.Uint16(b[18:])
	case 2, 9:
		if in.typ == 2 {
			b, err := r.bytes(16)
			if err != nil {
				return in, err
			}
			in.blocks, in.fragment, in.fragOffset, in.fileSize = uint64(bo.Uint32(b)), bo.Uint32(b[4:]), bo.Uint32(b[8:]), uint64(bo.Uint32(b[12:]))
		} else {
			b, err := r.bytes(40)
			if err != nil {
				return in, err
			}
			in.blocks, in.fileSize, in.fragment, in.fragOffset = bo.Uint64(b), bo.Uint64(b[8:]), bo.Uint32(b[28:]), bo.Uint32(b[32:])
		}
		if in.fileSize > uint64(limit) {
			return in, fmt.Errorf("%w: file of %d bytes (sparse or bomb?)", ErrBudget, in.fileSize)
		}
		n := in.fileSize / uint64(q.sb.blockSize)
		if in.fragment == sqNoFragment && in.fileSize%uint64(q.sb.blockSize) != 0 {
			n++
		}
		raw, err := r.bytes(int(n) * 4)
		if err != nil {
			return in, fmt.Errorf("inode 0x%x block list: %w", ref, err)
		}
		in.blockSizes = make([]uint32, n)
		for i := range in.blockSizes {
			in.blockSizes[i] = bo.Uint32(raw[4*i:])
		}
	case 3, 10:
		b, err := r.bytes(8)
		if err != nil {
			return in, err
		}
		n := bo.Uint32(b[4:])
		if n == 0 || n > 4096 {
			return in, fmt.Errorf("inode 0x%x: symlink target of %d bytes", ref, n)
		}
		t, err := r.bytes(int(n))
		if err != nil {
			return in, err
		}
		in.target = string(t)
	case 4, 5, 6, 7, 11, 12, 13, 14:
	default:
		return in, fmt.Errorf("inode 0x%x: unknown type %d", ref, in.typ)
	}
	return in, nil
}

type sqJob struct {
	path string
	in   inode
}

// walk lists directory d (at path p) into the sink and collects files.
func (q *squashReader) walk(ctx context.Context, s *Sink, p string, d inode, depth int, seen map[uint64]bool, jobs *[]sqJob) error {
	if depth > sqMaxDirDepth {
		return fmt.Errorf("directories nested deeper than %d at %s", sqMaxDirDepth, p)
	}
	total := q.dirListBytes(d)
	if total <= 0 {
		return nil
	}
	r, err := q.metaAt(q.sb.dirTable, uint64(d.dirBlock), d.dirOffset)
	if err != nil {
		return fmt.Errorf("directory %s: %w", p, err)
	}
	for r.read < total {
		if err := ctx.Err(); err != nil {
			return err
		}
		count, start, err := q.dirHeader(r)
		if err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
		if count > 256 {
			return fmt.Errorf("directory %s: header claims %d entries", p, count)
		}
		for range count {
			off, nb, err := q.dirEntry(r)
			if err != nil {
				return fmt.Errorf("directory %s: %w", p, err)
			}
			name := string(nb)
			child := path.Join(p, name)
			if name == "." || name == ".." || bytes.ContainsAny(nb, "/\x00") {
				s.refuse(child, "bad directory entry name")
				continue
			}
			ref := uint64(start)<<16 | uint64(off)
			in, err := q.readInode(ref, s.limit())
			if err != nil {
				if errors.Is(err, ErrBudget) {
					return fmt.Errorf("%s: %w", child, err)
				}
				return fmt.Errorf("%s: %w", child, err)
			}
			perm := fs.FileMode(in.mode & 0o777)
			switch in.typ {
			case 1, 8:
				if seen[ref] {
					return fmt.Errorf("directory cycle: %s refers back to an ancestor or repeats inode 0x%x", child, ref)
				}
				seen[ref] = true
				if err := s.Dir(child, perm); err != nil {
					return err
				}
				if err := q.walk(ctx, s, child, in, depth+1, seen, jobs); err != nil {
					return err
				}
			case 2, 9:
				*jobs = append(*jobs, sqJob{child, in})
			case 3, 10:
				if err := s.Symlink(child, in.target); err != nil {
					return err
				}
			default:
				if err := s.Special(child, fs.ModeDevice); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (q *squashReader) loadFragments() {
	n := uint64(q.sb.fragCount)
	if n == 0 {
		return
	}
	// 3.x entries match 4.0's (64-bit start, size, unused word); 2.x
	// entries and index words are 32-bit.
	entry, index := uint64(16), uint64(8)
	if q.sb.major == 2 {
		entry, index = 8, 4
	}
	if n*entry > q.sb.bytesUsed*sqMetaSize/2 {
		q.fragErr = fmt.Errorf("fragment count %d too large for the image", n)
		return
	}
	idx := (n*entry + sqMetaSize - 1) / sqMetaSize
	if q.sb.fragTable+idx*index > q.sb.bytesUsed {
		q.fragErr = errors.New("fragment index outside the image")
		return
	}
	for i := range idx {
		var pos uint64
		if index == 4 {
			pos = uint64(q.bo.Uint32(q.b[q.sb.fragTable+4*i:]))
		} else {
			pos = q.bo.Uint64(q.b[q.sb.fragTable+8*i:])
		}
		m, err := q.readMeta(pos)
		if err != nil {
			q.fragErr = fmt.Errorf("fragment table: %w", err)
			return
		}
		for j := uint64(0); j+entry <= uint64(len(m.data)) && uint64(len(q.frags)) < n; j += entry {
			if entry == 8 {
				q.frags = append(q.frags, fragEntry{uint64(q.bo.Uint32(m.data[j:])), q.bo.Uint32(m.data[j+4:])})
			} else {
				q.frags = append(q.frags, fragEntry{q.bo.Uint64(m.data[j:]), q.bo.Uint32(m.data[j+8:])})
			}
		}
	}
}

// block returns the decompressed data block stored at pos with the
// encoded size word sz.
func (q *squashReader) block(pos uint64, sz uint32) ([]byte, error) {
	n := uint64(sz &^ sqUncompressed)
	if n > uint64(q.sb.blockSize)*2 || pos+n > q.sb.bytesUsed {
		return nil, fmt.Errorf("data block at 0x%x of %d bytes outside the image", pos, n)
	}
	src := q.b[pos : pos+n]
	if sz&sqUncompressed != 0 {
		return src, nil
	}
	d, err := q.decode(src, int(q.sb.blockSize))
	if err != nil {
		return nil, fmt.Errorf("data block at 0x%x: %w", pos, err)
	}
	return d, nil
}

func (q *squashReader) fragment(i uint32) ([]byte, error) {
	q.fragOnce.Do(q.loadFragments)
	if q.fragErr != nil {
		return nil, q.fragErr
	}
	if int(i) >= len(q.frags) {
		return nil, fmt.Errorf("fragment %d of %d", i, len(q.frags))
	}
	f := q.frags[i]
	q.mu.Lock()
	slot := q.fragData[f.start]
	if slot == nil {
		slot = &fragSlot{}
		q.fragData[f.start] = slot
	}
	q.mu.Unlock()
	// Many files share a fragment block: decompress it once.
	slot.once.Do(func() {
		slot.data, slot.err = q.block(f.start, f.size)
		if slot.err != nil {
			slot.err = fmt.Errorf("fragment %d: %w", i, slot.err)
		}
	})
	return slot.data, slot.err
}

// fileData assembles a regular file from its blocks and fragment. Blocks
// are decompressed in parallel, each holding a slot of sem.
func (q *squashReader) fileData(in inode, sem chan struct{}) ([]byte, error) {
	out := make([]byte, in.fileSize)
	pos := in.blocks
	bs := uint64(q.sb.blockSize)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, sz := range in.blockSizes {
		n := uint64(sz &^ sqUncompressed)
		if n == 0 { // sparse block: already zero
			continue
		}
		start := uint64(i) * bs
		want := min(bs, in.fileSize-start)
		p := pos
		pos += n
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d, err := q.block(p, sz)
			if err == nil && uint64(len(d)) < want {
				err = fmt.Errorf("data block at 0x%x: %d bytes, want %d", p, len(d), want)
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			copy(out[start:start+want], d)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return out, firstErr
	}
	if in.fragment != sqNoFragment {
		full := uint64(len(in.blockSizes)) * bs
		tail := in.fileSize - full
		d, err := q.fragment(in.fragment)
		if err != nil {
			return out, err
		}
		if uint64(in.fragOffset)+tail > uint64(len(d)) {
			return out, fmt.Errorf("fragment %d: tail of %d bytes at %d past its %d bytes", in.fragment, tail, in.fragOffset, len(d))
		}
		copy(out[full:], d[in.fragOffset:uint64(in.fragOffset)+tail])
	}
	return out, nil
}

// newDecoder returns the block decompressor for a compression id.
func (q *squashReader) newDecoder(workers int) error {
	switch q.sb.compression {
	case 1:
		q.decode = func(src []byte, maxOut int) ([]byte, error) {
			zr, err := zlib.NewReader(bytes.NewReader(src))
			if err != nil {
				return nil, err
			}
			return readBlock(zr, maxOut)
		}
	case 2:
		q.decode = decodeSquashLZMA
	case 3:
		q.decode = func(src []byte, maxOut int) ([]byte, error) {
			dst := make([]byte, maxOut)
			n, err := lzo.Decompress(src, dst)
			if err != nil {
				return nil, fmt.Errorf("lzo: %w", err)
			}
			return dst[:n], nil
		}
	case 4:
		// mksquashfs writes each block as one xz block of plain LZMA2:
		// decodeXZBlock decodes those about three times as fast as
		// xi2/xz, straight into the output. Blocks with BCJ filters (-Xbcj)
		// and anything unusual or damaged go to XZ Embedded's decoder
		// (xi2/xz: twice as fast as ulikunitz/xz, knows every filter).
		var lzmaPool, pool sync.Pool
		q.decode = func(src []byte, maxOut int) ([]byte, error) {
			d, _ := lzmaPool.Get().(*lzmaDecoder)
			if d == nil {
				d = new(lzmaDecoder)
			}
			dst := make([]byte, maxOut)
			n, fastErr := decodeXZBlock(dst, src, d)
			lzmaPool.Put(d)
			if fastErr == nil {
				return dst[:n], nil
			}
			q.xzFallbacks.Add(1)
			var zr *xi2.Reader
			var err error
			if v := pool.Get(); v != nil {
				zr = v.(*xi2.Reader)
				err = zr.Reset(bytes.NewReader(src))
			} else {
				zr, err = xi2.NewReader(bytes.NewReader(src), 1<<24)
			}
			if err != nil {
				return nil, fmt.Errorf("xz: %w", err)
			}
			zr.Multistream(false)
			out, err := readBlock(zr, maxOut)
			pool.Put(zr)
			return out, err
		}
	case 5:
		q.decode = func(src []byte, maxOut int) ([]byte, error) {
			dst := make([]byte, maxOut)
			n, err := lz4.UncompressBlock(src, dst)
			if err != nil {
				return nil, fmt.Errorf("lz4: %w", err)
			}
			return dst[:n], nil
		}
	case 6:
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(workers), zstd.WithDecoderMaxMemory(1<<21))
		if err != nil {
			return err
		}
		q.zstd = d
		q.decode = func(src []byte, maxOut int) ([]byte, error) {
			out, err := d.DecodeAll(src, make([]byte, 0, maxOut))
			if err != nil {
				return nil, fmt.Errorf("zstd: %w", err)
			}
			if len(out) > maxOut {
				return nil, fmt.Errorf("zstd block decompresses past %d bytes", maxOut)
			}
			return out, nil
		}
	}
	return nil
}

// readBlock reads a decompressed block of at most maxOut bytes.
func readBlock(r io.Reader, maxOut int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(maxOut)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxOut {
		return nil, fmt.Errorf("block decompresses past %d bytes", maxOut)
	}
	return out, nil
}

// decodeSquashLZMA decodes a SquashFS LZMA block: the lzma_alone header
// with its 8-byte size field, or the vendor form that drops it (TP-Link,
// Alpha Networks, Broadcom) and relies on the block size instead.
func decodeSquashLZMA(src []byte, maxOut int) ([]byte, error) {
	if len(src) < 5 {
		return nil, errors.New("lzma block too short")
	}
	if len(src) >= 13 {
		usize := binary.LittleEndian.Uint64(src[5:13])
		if usize == ^uint64(0) || usize <= uint64(maxOut) {
			if out, err := decodeLZMAAlone(src[0], binary.LittleEndian.Uint32(src[1:5]), usize, src[13:], maxOut); err == nil {
				return out, nil
			}
		}
	}
	out, err := decodeLZMAAlone(src[0], binary.LittleEndian.Uint32(src[1:5]), ^uint64(0), src[5:], maxOut)
	if err != nil && (len(out) == 0 || !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF)) {
		return nil, err
	}
	return out, nil
}

// decodeLZMAAlone decodes a raw LZMA stream given its properties byte,
// dictionary size and uncompressed size (^0: unknown, ended by a marker or
// the input), producing at most maxOut bytes. The dictionary is capped at
// the output size: a valid stream never looks further back than what it
// produced, and a hostile header must not make the decoder allocate 4 GiB.
func decodeLZMAAlone(props byte, dict uint32, size uint64, stream []byte, maxOut int) ([]byte, error) {
	if limit := max(uint32(maxOut), 1<<12); dict > limit {
		dict = limit
	}
	hdr := make([]byte, 13, 13+len(stream))
	hdr[0] = props
	binary.LittleEndian.PutUint32(hdr[1:], dict)
	binary.LittleEndian.PutUint64(hdr[5:], size)
	zr, err := lzma.NewReader(bytes.NewReader(append(hdr, stream...)))
	if err != nil {
		return nil, fmt.Errorf("lzma: %w", err)
	}
	lr := io.LimitReader(zr, int64(maxOut)+1)
	out, err := io.ReadAll(lr)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// A stream with neither size nor end marker just stops. The decoder
		// reports that before handing over what it decoded last; the next
		// reads return it.
		rest, _ := io.ReadAll(lr)
		out = append(out, rest...)
	}
	if len(out) > maxOut {
		return nil, fmt.Errorf("lzma block decompresses past %d bytes", maxOut)
	}
	if err != nil {
		return out, fmt.Errorf("lzma: %w", err)
	}
	return out, nil
}

// maxSquashErrors caps the per-file errors kept for one layer.
const maxSquashErrors = 20

// Unpack implements Unpacker.
func (u SquashFS) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < sqSuperblockSize {
		return 0, err
	}
	sb, bo, err := parseSuperblock(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	s.SetInfo("version", fmt.Sprintf("%d.%d", sb.major, sb.minor))
	if bo == binary.BigEndian {
		s.SetInfo("endian", "big")
	} else {
		s.SetInfo("endian", "little")
	}
	if sb.major < 2 {
		return 0, fmt.Errorf("SquashFS %d.%d is not supported (only 2.x, 3.x and 4.0)", sb.major, sb.minor)
	}
	if vendor := sqVendor(b); vendor != "" {
		s.SetInfo("magic", vendor)
	}
	if sb.major == 4 {
		s.SetInfo("compression", sqCompressors[sb.compression])
	}
	s.SetInfo("block_size", fmt.Sprint(sb.blockSize))
	if sb.bytesUsed > uint64(len(b)) {
		return int64(len(b)), fmt.Errorf("image truncated: superblock says %d bytes, %d present", sb.bytesUsed, len(b))
	}
	q := &squashReader{b: b, bo: bo, sb: sb, meta: map[uint64]metaBlock{}, fragData: map[uint64]*fragSlot{}}
	workers := max(u.Workers, 1)
	if sb.major < 4 {
		// 2.x and 3.x do not record the compressor: sniff each block.
		q.decode = decodeLegacySquash
		if c := q.legacyCompression(); c != "" {
			s.SetInfo("compression", c)
		}
	} else if err := q.newDecoder(workers); err != nil {
		return int64(sb.bytesUsed), err
	}
	if q.zstd != nil {
		defer q.zstd.Close()
	}
	used := int64(sb.bytesUsed)
	root, err := q.readInode(sb.rootInode, s.limit())
	if err != nil {
		return used, fmt.Errorf("root inode: %w", err)
	}
	if root.typ != 1 && root.typ != 8 {
		return used, fmt.Errorf("root inode is type %d, not a directory", root.typ)
	}
	var jobs []sqJob
	walkErr := q.walk(ctx, s, "/", root, 0, map[uint64]bool{sb.rootInode: true}, &jobs)
	if errors.Is(walkErr, ErrBudget) {
		return used, walkErr
	}
	// Files found before a directory error are still extracted.
	var mu sync.Mutex
	var fileErrs []error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	sem := make(chan struct{}, workers)
	for _, j := range jobs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if j.in.fileSize > uint64(s.limit()) {
				return fmt.Errorf("%s: %w", j.path, s.overBudget(j.path))
			}
			data, err := q.fileData(j.in, sem)
			if err != nil {
				mu.Lock()
				fileErrs = append(fileErrs, fmt.Errorf("%s: %w", j.path, err))
				mu.Unlock()
			}
			return s.fileBytes(j.path, fs.FileMode(j.in.mode&0o777), data, false)
		})
	}
	err = g.Wait()
	if n := q.xzFallbacks.Load(); n > 0 {
		// Blocks with BCJ filters, or damaged ones: worth knowing when an
		// image unpacks slowly.
		s.SetInfo("xz_blocks_general_decoder", fmt.Sprint(n))
	}
	if err != nil {
		return used, err
	}
	sort.Slice(fileErrs, func(i, j int) bool { return fileErrs[i].Error() < fileErrs[j].Error() })
	errs := []error{walkErr}
	if len(fileErrs) > maxSquashErrors {
		errs = append(errs, fmt.Errorf("%d files could not be read; first: %w", len(fileErrs), fileErrs[0]))
	} else {
		errs = append(errs, fileErrs...)
	}
	return used, errors.Join(errs...)
}
