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
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// UBIFS unpacks a UBIFS volume (as found inside a UBI volume or made by
// mkfs.ubifs) by scanning every node of every logical erase block, like
// a recovery tool: the newest inode, directory entry and data node (by
// sequence number) win. Data may be uncompressed, LZO, deflate or zstd.
// Written from Linux's ubifs-media.h.
type UBIFS struct{}

// Format implements Unpacker.
func (UBIFS) Format() string { return "ubifs" }

// Magics implements Unpacker.
func (UBIFS) Magics() []Magic { return []Magic{{0, []byte{0x31, 0x18, 0x10, 0x06}}} }

const (
	ubifsMagic    = 0x06101831
	ubifsHdrSize  = 24
	ubifsInoNode  = 0
	ubifsDataNode = 1
	ubifsDentNode = 2
	ubifsPadNode  = 5
	ubifsSBNode   = 6
	ubifsBlock    = 4096
	ubifsRootIno  = 1
)

func ubifsNodeOK(b []byte) (int, bool) {
	if len(b) < ubifsHdrSize || binary.LittleEndian.Uint32(b) != ubifsMagic {
		return 0, false
	}
	n := int(binary.LittleEndian.Uint32(b[16:]))
	if n < ubifsHdrSize || n > len(b) || n > 1<<20 {
		return 0, false
	}
	return n, ^crc32.ChecksumIEEE(b[8:n]) == binary.LittleEndian.Uint32(b[4:])
}

// Identify implements Unpacker: a superblock node with a valid CRC.
func (UBIFS) Identify(h []byte) bool {
	n, ok := ubifsNodeOK(h)
	return ok && n >= 88 && h[20] == ubifsSBNode
}

type ubifsIno struct {
	sqnum       uint64
	size        uint64
	nlink, mode uint32
	data        []byte
}

type ubifsData struct {
	sqnum uint64
	size  uint32
	compr uint16
	data  []byte
}

type ubifsDent struct {
	sqnum uint64
	inum  uint64
	name  string
}

type ubifsState struct {
	inos  map[uint32]ubifsIno
	data  map[[2]uint32]ubifsData
	dents map[uint32]map[string]ubifsDent
	nodes int
}

// scanLEB records every valid node of one logical erase block.
func (st *ubifsState) scanLEB(leb []byte) {
	le := binary.LittleEndian
	for pos := 0; pos+ubifsHdrSize <= len(leb); {
		n, ok := ubifsNodeOK(leb[pos:])
		if !ok {
			if le.Uint32(leb[pos:]) == 0xffffffff {
				return // the rest of the LEB is empty
			}
			pos += 8
			continue
		}
		node := leb[pos : pos+n]
		sq := le.Uint64(node[8:])
		st.nodes++
		switch node[20] {
		case ubifsInoNode:
			if n >= 160 {
				ino := le.Uint32(node[24:])
				dl := int(le.Uint32(node[112:]))
				in := ubifsIno{sqnum: sq, size: le.Uint64(node[48:]), nlink: le.Uint32(node[92:]), mode: le.Uint32(node[104:])}
				if 160+dl <= n {
					in.data = node[160 : 160+dl]
				}
				if old, ok := st.inos[ino]; !ok || sq > old.sqnum {
					st.inos[ino] = in
				}
			}
		case ubifsDataNode:
			if n >= 48 {
				key := [2]uint32{le.Uint32(node[24:]), le.Uint32(node[28:]) & 0x1fffffff}
				d := ubifsData{sqnum: sq, size: le.Uint32(node[40:]), compr: le.Uint16(node[44:]), data: node[48:]}
				if old, ok := st.data[key]; !ok || sq > old.sqnum {
					st.data[key] = d
				}
			}
		case ubifsDentNode:
			if n >= 56 {
				parent := le.Uint32(node[24:])
				nl := int(le.Uint16(node[50:]))
				if 56+nl <= n {
					d := ubifsDent{sqnum: sq, inum: le.Uint64(node[40:]), name: string(node[56 : 56+nl])}
					if st.dents[parent] == nil {
						st.dents[parent] = map[string]ubifsDent{}
					}
					if old, ok := st.dents[parent][d.name]; !ok || sq > old.sqnum {
						st.dents[parent][d.name] = d
					}
				}
			}
		}
		pos += (n + 7) &^ 7
	}
}

// ubifsDecompress returns one data node's block.
func ubifsDecompress(d ubifsData, zd *zstd.Decoder) ([]byte, error) {
	n := int(d.size)
	if n > ubifsBlock {
		return nil, fmt.Errorf("data node of %d bytes", n)
	}
	switch d.compr {
	case 0:
		return d.data[:min(n, len(d.data))], nil
	case 1:
		dst := make([]byte, n)
		m, err := lzo.Decompress(d.data, dst)
		if err != nil {
			return nil, fmt.Errorf("lzo: %w", err)
		}
		return dst[:m], nil
	case 2:
		return readBlock(flate.NewReader(bytes.NewReader(d.data)), n)
	case 3:
		out, err := zd.DecodeAll(d.data, make([]byte, 0, n))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) > n {
			return nil, errors.New("zstd block too long")
		}
		return out, nil
	}
	return nil, fmt.Errorf("compression type %d not supported", d.compr)
}

// Unpack implements Unpacker.
func (UBIFS) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 88 {
		return 0, err
	}
	n, ok := ubifsNodeOK(b)
	if !ok || n < 88 || b[20] != ubifsSBNode {
		return 0, fmt.Errorf("%w: no UBIFS superblock node", ErrNotFormat)
	}
	le := binary.LittleEndian
	lebSize := int(le.Uint32(b[36:]))
	lebCnt := int(le.Uint32(b[40:]))
	if lebSize < 4096 || lebSize > 4<<20 || lebCnt <= 0 {
		return 0, fmt.Errorf("UBIFS geometry: LEB size %d, count %d", lebSize, lebCnt)
	}
	used := min(int64(lebSize)*int64(lebCnt), int64(len(b)))
	st := &ubifsState{inos: map[uint32]ubifsIno{}, data: map[[2]uint32]ubifsData{}, dents: map[uint32]map[string]ubifsDent{}}
	for off := 0; int64(off) < used; off += lebSize {
		if err := ctx.Err(); err != nil {
			return used, err
		}
		st.scanLEB(b[off:min(int64(off+lebSize), used)])
	}
	s.SetInfo("nodes", fmt.Sprint(st.nodes))
	zd, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<22))
	if err != nil {
		return used, err
	}
	defer zd.Close()

	content := func(ino uint32, in ubifsIno, limit int64) ([]byte, error) {
		if int64(in.size) > limit {
			return nil, fmt.Errorf("%w: file of %d bytes", ErrBudget, in.size)
		}
		out := make([]byte, in.size)
		var errs []error
		for blk := uint32(0); uint64(blk)*ubifsBlock < in.size; blk++ {
			d, ok := st.data[[2]uint32{ino, blk}]
			if !ok {
				continue // hole
			}
			page, err := ubifsDecompress(d, zd)
			if err != nil {
				errs = append(errs, fmt.Errorf("block %d: %w", blk, err))
				continue
			}
			copy(out[uint64(blk)*ubifsBlock:], page)
		}
		return out, errors.Join(errs...)
	}
	var errs []error
	seen := map[uint32]bool{ubifsRootIno: true}
	var walk func(dir uint32, p string, depth int) error
	walk = func(dir uint32, p string, depth int) error {
		if depth > 256 {
			return fmt.Errorf("directories nested deeper than 256 at %s", p)
		}
		names := make([]string, 0, len(st.dents[dir]))
		for name, d := range st.dents[dir] {
			if d.inum != 0 {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := st.dents[dir][name]
			child := path.Join(p, name)
			ino := uint32(d.inum)
			in, ok := st.inos[ino]
			if !ok || in.nlink == 0 {
				errs = append(errs, fmt.Errorf("%s: inode %d missing or deleted", child, ino))
				continue
			}
			perm := fs.FileMode(in.mode & 0o777)
			switch in.mode & 0o170000 {
			case 0o040000:
				if seen[ino] {
					errs = append(errs, fmt.Errorf("directory cycle at %s", child))
					continue
				}
				seen[ino] = true
				if err := s.Dir(child, perm); err != nil {
					return err
				}
				if err := walk(ino, child, depth+1); err != nil {
					return err
				}
			case 0o100000:
				data, err := content(ino, in, s.limit())
				if errors.Is(err, ErrBudget) {
					return fmt.Errorf("%s: %w", child, err)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", child, err))
				}
				if err := s.fileBytes(child, perm, data, false); err != nil {
					return err
				}
			case 0o120000:
				if err := s.Symlink(child, string(in.data)); err != nil {
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
	if err := walk(ubifsRootIno, "/", 0); err != nil {
		if errors.Is(err, ErrBudget) || ctx.Err() != nil {
			return used, err
		}
		errs = append(errs, err)
	}
	if len(errs) > maxSquashErrors {
		errs = append(errs[:maxSquashErrors], fmt.Errorf("and %d more errors", len(errs)-maxSquashErrors))
	}
	return used, errors.Join(errs...)
}
