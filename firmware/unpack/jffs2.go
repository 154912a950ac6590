package unpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"sort"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/zlib"
)

// JFFS2 unpacks JFFS2 images (little- or big-endian, as written by
// mkfs.jffs2 -l/-b) with zlib, rtime, lzo, no compression, or LZMA in
// either of the patched-kernel forms (ids 0x08 and 0x15).
// Written from the node layout in Linux's include/uapi/linux/jffs2.h: the
// newest version of each directory entry and each data range wins.
type JFFS2 struct{}

// Format implements Unpacker.
func (JFFS2) Format() string { return "jffs2" }

// Magics implements Unpacker.
func (JFFS2) Magics() []Magic { return []Magic{{0, []byte{0x85, 0x19}}, {0, []byte{0x19, 0x85}}} }

const (
	jffs2Magic        = 0x1985
	jffs2Dirent       = 0xe001
	jffs2Inode        = 0xe002
	jffs2Accurate     = 0x2000
	jffs2DirentSize   = 40
	jffs2InodeSize    = 68
	jffs2MaxNodeBytes = 1 << 20
)

// jffs2CRC is the raw CRC-32 Linux's JFFS2 uses (seed 0, no inversion).
func jffs2CRC(b []byte) uint32 { return ^crc32.Update(0xffffffff, crc32.IEEETable, b) }

// jffs2Order returns the byte order of a node header at the start of h
// whose header CRC is valid, or nil.
func jffs2Order(h []byte) binary.ByteOrder {
	if len(h) < 12 {
		return nil
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		if bo.Uint16(h) != jffs2Magic {
			continue
		}
		if jffs2CRC(h[:8]) != bo.Uint32(h[8:]) {
			return nil
		}
		if t := bo.Uint16(h[2:]); t&0xff00 == 0 || bo.Uint32(h[4:]) < 12 {
			return nil
		}
		return bo
	}
	return nil
}

// Identify implements Unpacker: a node header with a valid CRC.
func (JFFS2) Identify(h []byte) bool { return jffs2Order(h) != nil }

type jffs2Dir struct {
	pino, version, ino uint32
	typ                byte
	name               string
}

type jffs2Data struct {
	version, offset, dsize, isize, mode uint32
	compr                               byte
	payload                             []byte
}

// jffs2Scan walks the nodes of the image and returns dirents, data nodes
// per inode and the extent of the filesystem.
func jffs2Scan(b []byte, bo binary.ByteOrder) (map[string]jffs2Dir, map[uint32][]jffs2Data, int64, int) {
	dirents := map[string]jffs2Dir{}
	inodes := map[uint32][]jffs2Data{}
	pos, end, bad := 0, 0, 0
	for pos+12 <= len(b) {
		if bo.Uint16(b[pos:]) != jffs2Magic || jffs2CRC(b[pos:pos+8]) != bo.Uint32(b[pos+8:]) {
			if w := bo.Uint32(b[pos:]); w == 0xffffffff || w == 0 {
				pos += 4
				continue
			}
			// Dirty flash: look for the next aligned node within 64 KiB.
			var magic [2]byte
			bo.PutUint16(magic[:], jffs2Magic)
			lim := min(len(b), pos+64<<10)
			next := -1
			for k := pos + 1; k < lim; {
				j := bytes.Index(b[k:lim], magic[:])
				if j < 0 {
					break
				}
				if (k+j)%4 == 0 {
					next = k + j
					break
				}
				k += j + 1
			}
			if next < 0 {
				break
			}
			bad++
			pos = next
			continue
		}
		typ, totlen := bo.Uint16(b[pos+2:]), int(bo.Uint32(b[pos+4:]))
		if totlen < 12 || totlen > jffs2MaxNodeBytes || pos+totlen > len(b) {
			bad++
			pos += 4
			continue
		}
		node := b[pos : pos+totlen]
		switch typ {
		case jffs2Dirent:
			if totlen >= jffs2DirentSize && jffs2CRC(node[:32]) == bo.Uint32(node[32:]) {
				n := int(node[28])
				if jffs2DirentSize+n <= totlen {
					d := jffs2Dir{pino: bo.Uint32(node[12:]), version: bo.Uint32(node[16:]), ino: bo.Uint32(node[20:]),
						typ: node[29], name: string(node[jffs2DirentSize : jffs2DirentSize+n])}
					key := fmt.Sprintf("%d/%s", d.pino, d.name)
					if old, ok := dirents[key]; !ok || d.version > old.version {
						dirents[key] = d
					}
				}
			} else {
				bad++
			}
		case jffs2Inode:
			if totlen >= jffs2InodeSize && jffs2CRC(node[:60]) == bo.Uint32(node[64:]) {
				csize := int(bo.Uint32(node[48:]))
				if jffs2InodeSize+csize <= totlen {
					ino := bo.Uint32(node[12:])
					inodes[ino] = append(inodes[ino], jffs2Data{version: bo.Uint32(node[16:]), mode: bo.Uint32(node[20:]),
						isize: bo.Uint32(node[28:]), offset: bo.Uint32(node[44:]), dsize: bo.Uint32(node[52:]),
						compr: node[56], payload: node[jffs2InodeSize : jffs2InodeSize+csize]})
				}
			} else {
				bad++
			}
		}
		pos += (totlen + 3) &^ 3
		end = min(pos, len(b))
	}
	return dirents, inodes, int64(end), bad
}

// jffs2Rtime decodes the "rtime" run-length scheme.
func jffs2Rtime(src []byte, dlen int) ([]byte, error) {
	var positions [256]int
	dst := make([]byte, 0, dlen)
	for pos := 0; len(dst) < dlen; {
		if pos+2 > len(src) {
			return dst, errors.New("rtime data truncated")
		}
		v, rep := src[pos], int(src[pos+1])
		pos += 2
		dst = append(dst, v)
		back := positions[v]
		positions[v] = len(dst)
		for ; rep > 0 && len(dst) < dlen; rep-- {
			if back >= len(dst) {
				return dst, errors.New("rtime back-reference past the output")
			}
			dst = append(dst, dst[back])
			back++
		}
	}
	return dst, nil
}

// jffs2Decompress returns a data node's bytes.
func jffs2Decompress(d jffs2Data) ([]byte, error) {
	// A node holds at most one page (4 to 64 KiB): a larger claim is a bomb.
	if d.dsize > jffs2MaxNodeBytes {
		return nil, fmt.Errorf("data node claims %d bytes", d.dsize)
	}
	n := int(d.dsize)
	switch d.compr {
	case 0: // none
		return d.payload[:min(n, len(d.payload))], nil
	case 1: // zero
		return make([]byte, n), nil
	case 2:
		return jffs2Rtime(d.payload, n)
	case 6:
		zr, err := zlib.NewReader(bytes.NewReader(d.payload))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		return readBlock(zr, n)
	case 7:
		dst := make([]byte, n)
		m, err := lzo.Decompress(d.payload, dst)
		if err != nil {
			return nil, fmt.Errorf("lzo: %w", err)
		}
		return dst[:m], nil
	case jffs2LZMAOpenWrt:
		return jffs2LZMA(d.payload, n, false)
	case jffs2LZMAProps:
		return jffs2LZMA(d.payload, n, true)
	}
	return nil, fmt.Errorf("compression type %d not supported", d.compr)
}

// JFFS2 has no LZMA compressor upstream; patched kernels and tools added
// two incompatible ones.
const (
	// jffs2LZMAOpenWrt is JFFS2_COMPR_LZMA in OpenWrt's kernel patch and
	// U-Boot: a raw LZMA stream with fixed properties lc=0 lp=0 pb=0 and an
	// 8 KiB dictionary (LZMA_BEST_DICT(0x2000)), nothing stored.
	jffs2LZMAOpenWrt = 0x08
	// jffs2LZMAProps is JFFS2_COMPR_LZMA in mtd-utils' LZMA patch (and
	// jefferson's "LZMA_NO_SIZE"): the 5 properties bytes (typically lc=3
	// lp=0 pb=2, 8 KiB dictionary), then the stream, no size field.
	jffs2LZMAProps = 0x15
)

// jffs2LZMA decodes an LZMA data node of n bytes. Vendors did not keep the
// ids apart, so when the form the id stands for fails the other is tried.
func jffs2LZMA(payload []byte, n int, propsFirst bool) ([]byte, error) {
	fixed := func() ([]byte, error) { return decodeLZMAAlone(0, 0x2000, uint64(n), payload, n) }
	stored := func() ([]byte, error) {
		if len(payload) < 5 {
			return nil, errors.New("lzma data shorter than its properties")
		}
		return decodeLZMAAlone(payload[0], binary.LittleEndian.Uint32(payload[1:5]), uint64(n), payload[5:], n)
	}
	first, second := fixed, stored
	if propsFirst {
		first, second = stored, fixed
	}
	out, err := first()
	if err == nil && len(out) == n {
		return out, nil
	}
	if alt, aerr := second(); aerr == nil && len(alt) == n {
		return alt, nil
	}
	if err == nil {
		err = fmt.Errorf("lzma data gives %d bytes, want %d", len(out), n)
	}
	return nil, err
}

// jffs2File rebuilds one inode's content from its data nodes.
func jffs2File(nodes []jffs2Data, limit int64) ([]byte, uint32, error) {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].version < nodes[j].version })
	last := nodes[len(nodes)-1]
	if int64(last.isize) > limit {
		return nil, last.mode, fmt.Errorf("%w: file of %d bytes", ErrBudget, last.isize)
	}
	out := make([]byte, last.isize)
	var errs []error
	for _, d := range nodes {
		if d.dsize == 0 {
			continue
		}
		data, err := jffs2Decompress(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("data node v%d at offset %d: %w", d.version, d.offset, err))
			continue
		}
		if int64(d.offset) < int64(len(out)) {
			copy(out[d.offset:], data)
		}
	}
	return out, last.mode, errors.Join(errs...)
}

// Unpack implements Unpacker.
func (JFFS2) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 12 {
		return 0, err
	}
	bo := jffs2Order(b)
	if bo == nil {
		return 0, fmt.Errorf("%w: no JFFS2 node", ErrNotFormat)
	}
	dirents, inodes, used, bad := jffs2Scan(b, bo)
	if len(dirents) == 0 && len(inodes) == 0 {
		return 0, fmt.Errorf("%w: no JFFS2 directory entry or inode", ErrNotFormat)
	}
	if bo == binary.BigEndian {
		s.SetInfo("endian", "big")
	} else {
		s.SetInfo("endian", "little")
	}
	if bad > 0 {
		s.SetInfo("bad_nodes", fmt.Sprint(bad))
	}
	// Children of each directory inode, newest entries only, deletions
	// (ino 0) dropped.
	children := map[uint32][]jffs2Dir{}
	for _, d := range dirents {
		if d.ino != 0 {
			children[d.pino] = append(children[d.pino], d)
		}
	}
	for _, c := range children {
		sort.Slice(c, func(i, j int) bool { return c[i].name < c[j].name })
	}
	var errs []error
	seen := map[uint32]bool{1: true}
	var walk func(ino uint32, dir string, depth int) error
	walk = func(ino uint32, dir string, depth int) error {
		if depth > 256 {
			return fmt.Errorf("directories nested deeper than 256 at %s", dir)
		}
		for _, d := range children[ino] {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := path.Join(dir, d.name)
			nodes := inodes[d.ino]
			var mode, newest uint32
			for _, n := range nodes {
				if n.version >= newest {
					mode, newest = n.mode, n.version
				}
			}
			switch {
			case d.typ == 4 || mode&0o170000 == 0o040000: // directory
				if seen[d.ino] {
					errs = append(errs, fmt.Errorf("directory cycle at %s", p))
					continue
				}
				seen[d.ino] = true
				if err := s.Dir(p, fs.FileMode(mode&0o777)); err != nil {
					return err
				}
				if err := walk(d.ino, p, depth+1); err != nil {
					return err
				}
			case len(nodes) == 0:
				errs = append(errs, fmt.Errorf("%s: no inode node for ino %d", p, d.ino))
			case d.typ == 10 || mode&0o170000 == 0o120000: // symlink
				data, _, err := jffs2File(nodes, 4096)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p, err))
					continue
				}
				if err := s.Symlink(p, string(data)); err != nil {
					return err
				}
			case d.typ == 8 || mode&0o170000 == 0o100000: // regular
				data, m, err := jffs2File(nodes, s.limit())
				if errors.Is(err, ErrBudget) {
					return fmt.Errorf("%s: %w", p, err)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p, err))
				}
				if err := s.fileBytes(p, fs.FileMode(m&0o777), data, false); err != nil {
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
	if err := walk(1, "/", 0); err != nil {
		return used, err
	}
	if len(errs) > maxSquashErrors {
		errs = append(errs[:maxSquashErrors], fmt.Errorf("and %d more errors", len(errs)-maxSquashErrors))
	}
	return used, errors.Join(errs...)
}
