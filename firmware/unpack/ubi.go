package unpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"
)

// UBI unpacks a UBI image (raw NAND dump or ubinize output): it finds the
// physical erase blocks by their "UBI#" headers, maps logical erase
// blocks to volumes (newest copy by sequence number), reads volume names
// from the layout volume and writes each volume as a blob, in which the
// carver then finds UBIFS or SquashFS. Written from Linux's ubi-media.h.
type UBI struct{}

// Format implements Unpacker.
func (UBI) Format() string { return "ubi" }

// Magics implements Unpacker.
func (UBI) Magics() []Magic { return []Magic{{0, []byte("UBI#")}} }

const (
	ubiHeaderSize = 64
	ubiLayoutVol  = 0x7fffefff
	ubiVtblRecord = 172
	ubiMaxVolumes = 128
)

// ubiCRC is Linux's crc32 with the all-ones seed and no final inversion.
func ubiCRC(b []byte) uint32 { return ^crc32.ChecksumIEEE(b) }

type ubiEC struct {
	vidOff, dataOff uint32
}

func parseUBIEC(h []byte) (ubiEC, error) {
	if len(h) < ubiHeaderSize || string(h[:4]) != "UBI#" {
		return ubiEC{}, errors.New("no UBI erase counter header")
	}
	if ubiCRC(h[:60]) != binary.BigEndian.Uint32(h[60:]) {
		return ubiEC{}, errors.New("UBI erase counter header CRC mismatch")
	}
	ec := ubiEC{vidOff: binary.BigEndian.Uint32(h[16:]), dataOff: binary.BigEndian.Uint32(h[20:])}
	if ec.vidOff < ubiHeaderSize || ec.dataOff <= ec.vidOff || ec.dataOff > 1<<20 {
		return ec, fmt.Errorf("UBI header offsets %d/%d", ec.vidOff, ec.dataOff)
	}
	return ec, nil
}

// Identify implements Unpacker.
func (UBI) Identify(h []byte) bool {
	_, err := parseUBIEC(h)
	return err == nil
}

type ubiLEB struct {
	vol, lnum uint32
	sqnum     uint64
	dataSize  uint32
	static    bool
	data      []byte
}

// ubiPEBSize finds the erase block size: the distance to the next valid
// "UBI#" header at a power-of-two offset.
func ubiPEBSize(b []byte) int {
	for size := 16 << 10; size <= 4<<20; size <<= 1 {
		if size+ubiHeaderSize <= len(b) {
			if _, err := parseUBIEC(b[size:]); err == nil {
				return size
			}
		}
	}
	return 0
}

// Unpack implements Unpacker.
func (UBI) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < ubiHeaderSize {
		return 0, err
	}
	ec0, err := parseUBIEC(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	peb := ubiPEBSize(b)
	if peb == 0 {
		// A single erase block: its size is the rest of the data.
		peb = len(b)
	}
	if int(ec0.dataOff) >= peb {
		return 0, fmt.Errorf("%w: UBI data offset %d past the %d-byte erase block", ErrNotFormat, ec0.dataOff, peb)
	}
	s.SetInfo("peb_size", fmt.Sprint(peb))
	lebSize := peb - int(ec0.dataOff)
	latest := map[[2]uint32]ubiLEB{}
	used, bad := 0, 0
	for off := 0; off+peb <= len(b); off += peb {
		if err := ctx.Err(); err != nil {
			return int64(used), err
		}
		blk := b[off:min(len(b), off+peb)]
		ec, err := parseUBIEC(blk)
		if err != nil {
			if bytes.Count(blk[:ubiHeaderSize], []byte{0xff}) == ubiHeaderSize {
				used = off + len(blk) // erased block inside the image
				continue
			}
			break
		}
		used = off + len(blk)
		if int(ec.vidOff)+ubiHeaderSize > len(blk) || int(ec.dataOff) > len(blk) {
			bad++
			continue
		}
		v := blk[ec.vidOff : ec.vidOff+ubiHeaderSize]
		if string(v[:4]) != "UBI!" {
			continue // erased: no volume block
		}
		if ubiCRC(v[:60]) != binary.BigEndian.Uint32(v[60:]) {
			bad++
			continue
		}
		l := ubiLEB{vol: binary.BigEndian.Uint32(v[8:]), lnum: binary.BigEndian.Uint32(v[12:]),
			dataSize: binary.BigEndian.Uint32(v[20:]), static: v[5] == 2,
			sqnum: binary.BigEndian.Uint64(v[40:]), data: blk[ec.dataOff:]}
		key := [2]uint32{l.vol, l.lnum}
		if old, ok := latest[key]; !ok || l.sqnum > old.sqnum {
			latest[key] = l
		}
	}
	if bad > 0 {
		s.SetInfo("bad_headers", fmt.Sprint(bad))
	}
	names := ubiVolumeNames(latest)
	vols := map[uint32][]ubiLEB{}
	for k, l := range latest {
		if k[0] != ubiLayoutVol {
			vols[k[0]] = append(vols[k[0]], l)
		}
	}
	if len(vols) == 0 {
		return int64(used), errors.New("UBI image holds no volume data")
	}
	ids := make([]uint32, 0, len(vols))
	for id := range vols {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var vnames []string
	for _, id := range ids {
		lebs := vols[id]
		sort.Slice(lebs, func(i, j int) bool { return lebs[i].lnum < lebs[j].lnum })
		last := lebs[len(lebs)-1].lnum
		if int64(last+1)*int64(lebSize) > s.limit() {
			return int64(used), s.overBudget(fmt.Sprintf("volume %d", id))
		}
		img := bytes.Repeat([]byte{0xff}, int(last+1)*lebSize)
		end := 0
		for _, l := range lebs {
			d := l.data[:min(len(l.data), lebSize)]
			if l.static && int(l.dataSize) < len(d) {
				d = d[:l.dataSize]
			}
			copy(img[int(l.lnum)*lebSize:], d)
			end = int(l.lnum)*lebSize + len(d)
		}
		if lebs[0].static {
			img = img[:end]
		}
		name := names[id]
		if name == "" {
			name = fmt.Sprintf("volume%d", id)
		}
		vnames = append(vnames, name)
		if err := s.fileBytes(name, 0o644, img, true); err != nil {
			return int64(used), err
		}
	}
	s.SetInfo("volumes", strings.Join(vnames, ","))
	return int64(used), nil
}

// ubiVolumeNames reads the volume table from the layout volume.
func ubiVolumeNames(latest map[[2]uint32]ubiLEB) map[uint32]string {
	out := map[uint32]string{}
	l, ok := latest[[2]uint32{ubiLayoutVol, 0}]
	if !ok {
		return out
	}
	for i := 0; i < ubiMaxVolumes && (i+1)*ubiVtblRecord <= len(l.data); i++ {
		rec := l.data[i*ubiVtblRecord : (i+1)*ubiVtblRecord]
		if ubiCRC(rec[:168]) != binary.BigEndian.Uint32(rec[168:]) {
			continue
		}
		n := int(binary.BigEndian.Uint16(rec[14:]))
		if n == 0 || n > 127 {
			continue
		}
		out[uint32(i)] = safeBase(string(rec[16 : 16+n]))
	}
	return out
}
