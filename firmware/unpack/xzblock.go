package unpack

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"hash/crc64"
)

// This file decodes the xz streams mksquashfs writes for each block: one
// xz block holding LZMA2 data and nothing else. It exists for speed: the
// pure-Go xz readers (xi2/xz, ulikunitz/xz) spend most of a firmware
// analysis in function calls per range-coder bit, and a SquashFS block
// can be decoded straight into its output buffer, which doubles as the
// LZMA dictionary. Anything else — BCJ or delta filters, several blocks,
// a check that does not match, any malformed byte — makes decodeXZBlock
// report errXZFallback, and the caller hands the stream to xi2/xz, which
// knows every feature and gives the precise error. Written from the .xz
// file format specification (tukaani.org, version 1.1.0) and the LZMA
// specification in the LZMA SDK (lzma-specification.txt).

// errXZFallback says the stream is not one this decoder handles (or is
// damaged); the general decoder must take it.
var errXZFallback = errors.New("xz stream needs the general decoder")

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

var crc64Table = crc64.MakeTable(crc64.ECMA)

// xzCheckSizes maps a check type to the size of its field.
var xzCheckSizes = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}

// xzVarint reads a multibyte integer (7 bits a byte, at most 9 bytes).
func xzVarint(b []byte) (uint64, int, bool) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0, false // not the shortest form
			}
			return v, i + 1, true
		}
	}
	return 0, 0, false
}

// decodeXZBlock decodes src, a whole single-block xz stream whose only
// filter is LZMA2, into dst (whose length bounds the output) and returns
// the bytes produced. It never reads or writes outside src and dst.
func decodeXZBlock(dst, src []byte, d *lzmaDecoder) (int, error) {
	// Stream header: magic, flags (0, check type), CRC32 of the flags.
	if len(src) < 12+12 || !bytes.Equal(src[:6], xzMagic) || src[6] != 0 || src[7] > 0x0f ||
		crc32.ChecksumIEEE(src[6:8]) != binary.LittleEndian.Uint32(src[8:12]) {
		return 0, errXZFallback
	}
	checkType := src[7]
	checkSize := xzCheckSizes[checkType]
	// Block header: size, flags, optional sizes, one filter (LZMA2, one
	// property byte), zero padding, CRC32.
	p := 12
	hsize := (int(src[p]) + 1) * 4
	if src[p] == 0 || p+hsize > len(src) {
		return 0, errXZFallback
	}
	h := src[p : p+hsize]
	if crc32.ChecksumIEEE(h[:hsize-4]) != binary.LittleEndian.Uint32(h[hsize-4:]) {
		return 0, errXZFallback
	}
	flags := h[1]
	if flags&0x3f != 0 { // more than one filter, or reserved bits
		return 0, errXZFallback
	}
	q := 2
	compSize, uncompSize := int64(-1), int64(-1)
	if flags&0x40 != 0 {
		v, n, ok := xzVarint(h[q : hsize-4])
		if !ok || v == 0 || v > uint64(len(src)) {
			return 0, errXZFallback
		}
		compSize, q = int64(v), q+n
	}
	if flags&0x80 != 0 {
		v, n, ok := xzVarint(h[q : hsize-4])
		if !ok || v > uint64(len(dst)) {
			return 0, errXZFallback
		}
		uncompSize, q = int64(v), q+n
	}
	if q+3 > hsize-4 || h[q] != 0x21 || h[q+1] != 1 || h[q+2] > 40 {
		return 0, errXZFallback
	}
	for _, b := range h[q+3 : hsize-4] {
		if b != 0 {
			return 0, errXZFallback
		}
	}
	p += hsize
	n, used, err := d.decodeLZMA2(dst, src[p:])
	if err != nil {
		return 0, errXZFallback
	}
	if compSize >= 0 && int64(used) != compSize || uncompSize >= 0 && int64(n) != uncompSize {
		return 0, errXZFallback
	}
	unpadded := hsize + used + checkSize
	p += used
	for ; (p-12)%4 != 0; p++ { // block padding
		if p >= len(src) || src[p] != 0 {
			return 0, errXZFallback
		}
	}
	if p+checkSize > len(src) || !xzCheckMatches(checkType, dst[:n], src[p:p+checkSize]) {
		return 0, errXZFallback
	}
	p += checkSize
	// Index: one record (unpadded size, uncompressed size), padding, CRC32.
	idx := p
	if p >= len(src) || src[p] != 0 {
		return 0, errXZFallback
	}
	p++
	for _, want := range []uint64{1, uint64(unpadded), uint64(n)} {
		v, k, ok := xzVarint(src[p:])
		if !ok || v != want {
			return 0, errXZFallback
		}
		p += k
	}
	for ; (p-idx)%4 != 0; p++ {
		if p >= len(src) || src[p] != 0 {
			return 0, errXZFallback
		}
	}
	if p+4+12 > len(src) || crc32.ChecksumIEEE(src[idx:p]) != binary.LittleEndian.Uint32(src[p:]) {
		return 0, errXZFallback
	}
	p += 4
	// Stream footer: CRC32, backward size, flags as in the header, "YZ".
	f := src[p : p+12]
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f) ||
		int(binary.LittleEndian.Uint32(f[4:])+1)*4 != p-idx || f[8] != 0 || f[9] != checkType || f[10] != 'Y' || f[11] != 'Z' {
		return 0, errXZFallback
	}
	// Stream padding (multiples of four zero bytes) may follow; anything
	// else (a second stream) goes to the general decoder.
	for _, b := range src[p+12:] {
		if b != 0 {
			return 0, errXZFallback
		}
	}
	return n, nil
}

// xzCheckMatches verifies the integrity check of the uncompressed data.
func xzCheckMatches(typ byte, data, check []byte) bool {
	switch typ {
	case 0:
		return true
	case 1:
		return crc32.ChecksumIEEE(data) == binary.LittleEndian.Uint32(check)
	case 4:
		return crc64.Checksum(data, crc64Table) == binary.LittleEndian.Uint64(check)
	case 10:
		sum := sha256.Sum256(data)
		return bytes.Equal(sum[:], check)
	}
	return false // reserved check types: let the general decoder say so
}

// LZMA model sizes (LZMA specification).
const (
	lzmaStates         = 12
	lzmaPosStatesMax   = 1 << 4
	lzmaLenToPosStates = 4
	lzmaAlignBits      = 4
	lzmaEndPosModel    = 14
	lzmaFullDistances  = 1 << (lzmaEndPosModel >> 1)
	lzmaMatchMinLen    = 2
	lzmaProbInit       = 1 << 10
	lzmaProbBits       = 11
	lzmaMoveBits       = 5
	lzmaTopValue       = 1 << 24
)

// lzmaLenCoder holds the probabilities of match lengths.
type lzmaLenCoder struct {
	choice, choice2 uint16
	low, mid        [lzmaPosStatesMax][1 << 3]uint16
	high            [1 << 8]uint16
}

// lzmaDecoder holds the LZMA2 decoding state between chunks; reuse one
// per goroutine to avoid allocating its 14 KiB of probabilities.
type lzmaDecoder struct {
	lc, lp, pb   uint32
	state        uint32
	rep          [4]uint32
	isMatch      [lzmaStates * lzmaPosStatesMax]uint16
	isRep        [lzmaStates]uint16
	isRepG0      [lzmaStates]uint16
	isRepG1      [lzmaStates]uint16
	isRepG2      [lzmaStates]uint16
	isRep0Long   [lzmaStates * lzmaPosStatesMax]uint16
	posSlot      [lzmaLenToPosStates][1 << 6]uint16
	posSpecial   [1 + lzmaFullDistances - lzmaEndPosModel]uint16
	align        [1 << lzmaAlignBits]uint16
	lenCoder     lzmaLenCoder
	repLenCoder  lzmaLenCoder
	literal      [0x300 << 4]uint16 // lc+lp <= 4 in LZMA2
	rangeDecoder rangeDecoder
}

func (d *lzmaDecoder) resetState() {
	d.state = 0
	d.rep = [4]uint32{}
	for _, s := range [][]uint16{d.isMatch[:], d.isRep[:], d.isRepG0[:], d.isRepG1[:], d.isRepG2[:], d.isRep0Long[:],
		d.posSpecial[:], d.align[:], d.literal[:0x300<<(d.lc+d.lp)]} {
		for i := range s {
			s[i] = lzmaProbInit
		}
	}
	for i := range d.posSlot {
		for j := range d.posSlot[i] {
			d.posSlot[i][j] = lzmaProbInit
		}
	}
	for _, l := range []*lzmaLenCoder{&d.lenCoder, &d.repLenCoder} {
		l.choice, l.choice2 = lzmaProbInit, lzmaProbInit
		for i := range l.low {
			for j := range l.low[i] {
				l.low[i][j], l.mid[i][j] = lzmaProbInit, lzmaProbInit
			}
		}
		for i := range l.high {
			l.high[i] = lzmaProbInit
		}
	}
}

// decodeLZMA2 decodes LZMA2 chunks from src into dst until the end
// marker and returns the bytes produced and consumed.
func (d *lzmaDecoder) decodeLZMA2(dst, src []byte) (produced, consumed int, err error) {
	errCorrupt := errors.New("lzma2: corrupt data")
	p, out := 0, 0
	dictStart := 0 // where the current dictionary begins in dst
	needDictReset, needProps := true, true
	for {
		if p >= len(src) {
			return 0, 0, errCorrupt
		}
		c := src[p]
		p++
		if c == 0 {
			return out, p, nil
		}
		if c < 0x80 {
			// Uncompressed chunk: 1 resets the dictionary, 2 does not.
			if c > 2 || p+2 > len(src) || needDictReset && c != 1 {
				return 0, 0, errCorrupt
			}
			size := int(binary.BigEndian.Uint16(src[p:])) + 1
			p += 2
			if p+size > len(src) || out+size > len(dst) {
				return 0, 0, errCorrupt
			}
			if c == 1 {
				// After a dictionary reset the next LZMA chunk must bring
				// properties (and so reset the state).
				dictStart, needDictReset, needProps = out, false, true
			}
			copy(dst[out:], src[p:p+size])
			p, out = p+size, out+size
			continue
		}
		if p+4 > len(src) {
			return 0, 0, errCorrupt
		}
		usize := int(c&0x1f)<<16 + int(binary.BigEndian.Uint16(src[p:])) + 1
		csize := int(binary.BigEndian.Uint16(src[p+2:])) + 1
		p += 4
		reset := (c >> 5) & 3
		if needDictReset && reset != 3 {
			return 0, 0, errCorrupt
		}
		if reset == 3 {
			dictStart, needDictReset = out, false
		}
		if reset >= 2 {
			if p >= len(src) {
				return 0, 0, errCorrupt
			}
			props := uint32(src[p])
			p++
			if props >= 9*5*5 {
				return 0, 0, errCorrupt
			}
			d.lc, props = props%9, props/9
			d.lp, d.pb = props%5, props/5
			if d.lc+d.lp > 4 {
				return 0, 0, errCorrupt
			}
			needProps = false
		} else if needProps {
			return 0, 0, errCorrupt
		}
		if reset >= 1 {
			d.resetState()
		}
		if p+csize > len(src) || out+usize > len(dst) {
			return 0, 0, errCorrupt
		}
		if !d.decodeChunk(dst[:out+usize], out, dictStart, src[p:p+csize]) {
			return 0, 0, errCorrupt
		}
		p, out = p+csize, out+usize
	}
}

// rangeDecoder is the LZMA range decoder over one chunk's bytes, copied
// into buf: indexing it with a mask needs no bounds check, and a damaged
// chunk that reads past its end reads zeros (or wraps), which the caller
// notices from pos once per symbol.
type rangeDecoder struct {
	rng, code uint32
	pos       uint32
	buf       [rangeBufSize]byte
}

// rangeBufSize holds the largest LZMA2 chunk (64 KiB) and the most any
// one symbol can read past it.
const rangeBufSize = 1 << 17

// rcBit decodes one bit with probability *p from a normalised coder
// state and returns the new state and the bit. Branch-free: the bit is as
// good as random, and a mispredicted branch costs more than arithmetic.
func rcBit(rng, code uint32, p *uint16) (uint32, uint32, uint32) {
	prob := uint32(*p)
	bound := (rng >> lzmaProbBits) * prob
	m := uint32((int64(code) - int64(bound)) >> 63) // all ones for bit 0
	// bit 0: p += (2048-p)>>5; bit 1: p -= p>>5.
	*p = uint16(int32(prob) - (int32(prob)-int32(2017&m))>>lzmaMoveBits)
	return bound&m | (rng-bound)&^m, code - bound&^m, ^m & 1
}

// bit decodes one bit with probability *p (normalising first, as XZ
// Embedded does; decodeChunk normalises once more at the end).
func (r *rangeDecoder) bit(p *uint16) uint32 {
	r.normalize()
	var b uint32
	r.rng, r.code, b = rcBit(r.rng, r.code, p)
	return b
}

func (r *rangeDecoder) normalize() {
	if r.rng < lzmaTopValue {
		r.rng <<= 8
		r.code = r.code<<8 | uint32(r.buf[r.pos&(rangeBufSize-1)])
		r.pos++
	}
}

// tree decodes an n-bit symbol, most significant bit first, from probs
// (indexed from 1).
func (r *rangeDecoder) tree(probs []uint16, n uint) uint32 {
	rng, code, pos := r.rng, r.code, r.pos
	m := uint32(1)
	for range n {
		if rng < lzmaTopValue {
			rng <<= 8
			code = code<<8 | uint32(r.buf[pos&(rangeBufSize-1)])
			pos++
		}
		var b uint32
		rng, code, b = rcBit(rng, code, &probs[m])
		m = m<<1 | b
	}
	r.rng, r.code, r.pos = rng, code, pos
	return m - 1<<n
}

// reverseTree decodes an n-bit symbol, least significant bit first.
func (r *rangeDecoder) reverseTree(probs []uint16, n uint) uint32 {
	rng, code, pos := r.rng, r.code, r.pos
	m, sym := uint32(1), uint32(0)
	for i := range n {
		if rng < lzmaTopValue {
			rng <<= 8
			code = code<<8 | uint32(r.buf[pos&(rangeBufSize-1)])
			pos++
		}
		var b uint32
		rng, code, b = rcBit(rng, code, &probs[m])
		m = m<<1 | b
		sym |= b << i
	}
	r.rng, r.code, r.pos = rng, code, pos
	return sym
}

// direct decodes n bits of equal probability.
func (r *rangeDecoder) direct(n uint32) uint32 {
	var v uint32
	for range n {
		r.normalize()
		r.rng >>= 1
		r.code -= r.rng
		t := 0 - (r.code >> 31) // all ones when code went negative: bit 0
		r.code += r.rng & t
		v = v<<1 + t + 1
	}
	return v
}

// length decodes a match length (minus the minimum of 2).
func (r *rangeDecoder) length(l *lzmaLenCoder, posState uint32) uint32 {
	if r.bit(&l.choice) == 0 {
		return r.tree(l.low[posState][:], 3)
	}
	if r.bit(&l.choice2) == 0 {
		return 8 + r.tree(l.mid[posState][:], 3)
	}
	return 16 + r.tree(l.high[:], 8)
}

// decodeChunk decodes one LZMA chunk from in, filling out[pos:] to its
// end; out[dictStart:pos] is the dictionary. It reports whether the chunk
// decoded cleanly: every byte of in consumed and the range coder flushed.
func (d *lzmaDecoder) decodeChunk(out []byte, pos, dictStart int, in []byte) bool {
	if len(in) < 5 || in[0] != 0 {
		return false
	}
	if len(in) > 1<<16 {
		return false
	}
	r := &d.rangeDecoder
	r.rng, r.code, r.pos = 0xffffffff, binary.BigEndian.Uint32(in[1:5]), 5
	copy(r.buf[:], in)
	clear(r.buf[len(in) : len(in)+64])
	inLen := uint32(len(in))
	pbMask, lpMask, lc := uint32(1)<<d.pb-1, uint32(1)<<d.lp-1, d.lc
	state := d.state
	rep0, rep1, rep2, rep3 := d.rep[0], d.rep[1], d.rep[2], d.rep[3]
	end := len(out)
	for pos < end {
		if r.pos > inLen {
			return false
		}
		// Positions count from the last dictionary reset (as in XZ
		// Embedded, which decodes into the output buffer the same way).
		rel := uint32(pos - dictStart)
		posState := rel & pbMask
		if r.bit(&d.isMatch[state<<4|posState]) == 0 {
			// Literal: 8 bits coded with the previous byte's context; after
			// a match, also with the byte at rep0 until they differ.
			var prev uint32
			if pos > dictStart {
				prev = uint32(out[pos-1])
			}
			base := 0x300 * ((rel&lpMask)<<lc + prev>>(8-lc))
			probs := (*[0x300]uint16)(d.literal[base : base+0x300])
			sym := uint32(1)
			// Literal bits are most of the work: the coder stays in locals.
			rng, code, rpos := r.rng, r.code, r.pos
			if state >= 7 {
				if int(rep0) >= pos-dictStart {
					return false
				}
				match := uint32(out[pos-int(rep0)-1])
				for sym < 0x100 {
					mbit := (match >> 7) & 1
					match <<= 1
					if rng < lzmaTopValue {
						rng <<= 8
						code = code<<8 | uint32(r.buf[rpos&(rangeBufSize-1)])
						rpos++
					}
					var b uint32
					rng, code, b = rcBit(rng, code, &probs[(1+mbit)<<8+sym])
					sym = sym<<1 | b
					if b != mbit {
						break
					}
				}
			}
			for sym < 0x100 {
				if rng < lzmaTopValue {
					rng <<= 8
					code = code<<8 | uint32(r.buf[rpos&(rangeBufSize-1)])
					rpos++
				}
				var b uint32
				rng, code, b = rcBit(rng, code, &probs[sym])
				sym = sym<<1 | b
			}
			r.rng, r.code, r.pos = rng, code, rpos
			out[pos] = byte(sym)
			pos++
			switch {
			case state < 4:
				state = 0
			case state < 10:
				state -= 3
			default:
				state -= 6
			}
			continue
		}
		var length uint32
		if r.bit(&d.isRep[state]) == 0 {
			// A new match: length, then distance.
			length = r.length(&d.lenCoder, posState)
			if state < 7 {
				state = 7
			} else {
				state = 10
			}
			lenState := min(length, lzmaLenToPosStates-1)
			slot := r.tree(d.posSlot[lenState][:], 6)
			dist := slot
			if slot >= 4 {
				n := slot>>1 - 1
				dist = (2 | slot&1) << n
				if slot < lzmaEndPosModel {
					dist += r.reverseTree(d.posSpecial[dist-slot:], uint(n))
				} else {
					dist += r.direct(n-lzmaAlignBits) << lzmaAlignBits
					dist += r.reverseTree(d.align[:], lzmaAlignBits)
				}
			}
			rep3, rep2, rep1, rep0 = rep2, rep1, rep0, dist
			// An end marker (dist 0xffffffff) is not allowed in LZMA2 and
			// fails the distance check below like any bad distance.
		} else {
			if r.bit(&d.isRepG0[state]) == 0 {
				if r.bit(&d.isRep0Long[state<<4|posState]) == 0 {
					// Short rep: one byte from rep0.
					if state < 7 {
						state = 9
					} else {
						state = 11
					}
					if int(rep0) >= pos-dictStart {
						return false
					}
					out[pos] = out[pos-int(rep0)-1]
					pos++
					continue
				}
			} else {
				var dist uint32
				if r.bit(&d.isRepG1[state]) == 0 {
					dist = rep1
				} else {
					if r.bit(&d.isRepG2[state]) == 0 {
						dist = rep2
					} else {
						dist = rep3
						rep3 = rep2
					}
					rep2 = rep1
				}
				rep1, rep0 = rep0, dist
			}
			length = r.length(&d.repLenCoder, posState)
			if state < 7 {
				state = 8
			} else {
				state = 11
			}
		}
		n := int(length) + lzmaMatchMinLen
		if int64(rep0) >= int64(pos-dictStart) || n > end-pos {
			return false
		}
		from := pos - int(rep0) - 1
		if n <= int(rep0)+1 {
			copy(out[pos:pos+n], out[from:from+n])
		} else {
			for i := range n { // overlapping: the copy repeats itself
				out[pos+i] = out[from+i]
			}
		}
		pos += n
	}
	d.state = state
	d.rep = [4]uint32{rep0, rep1, rep2, rep3}
	r.normalize()
	return r.pos == inLen && r.code == 0
}
