package unpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
	xi2 "github.com/xi2/xz"
)

// xzSamples returns contents that exercise literals, long and repeated
// matches, incompressible stretches and the empty case.
func xzSamples(t testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70000)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	var text bytes.Buffer
	for i := range 4000 {
		text.WriteString("line ")
		text.WriteString(string(rune('a' + i%26)))
		text.WriteString(" of the sample text, with repeats\n")
	}
	bin, err := os.ReadFile("/bin/sh")
	if err != nil || len(bin) < 1000 {
		t.Fatalf("reading /bin/sh: %v", err)
	}
	return map[string][]byte{
		"empty": {}, "byte": {42}, "zeros": make([]byte, 128<<10), "random": random,
		"text": text.Bytes()[:128<<10], "binary": bin[:min(len(bin), 128<<10)],
		"mixed": append(append(append([]byte{}, random[:3000]...), text.Bytes()[:5000]...), random[:3000]...),
	}
}

// TestDecodeXZBlock decodes streams the real xz tool writes the way
// mksquashfs does (one block, LZMA2) with every check type, and streams
// ulikunitz/xz writes, and compares with the input.
func TestDecodeXZBlock(t *testing.T) {
	t.Parallel()
	var d lzmaDecoder
	for name, want := range xzSamples(t) {
		streams := map[string][]byte{}
		for _, check := range []string{"none", "crc32", "crc64", "sha256"} {
			streams["xz --check="+check] = imagetest.Compress(t, want, "xz", "--check="+check, "--lzma2=dict=128KiB")
		}
		streams["xz -0 --lzma2=lc=0,lp=2,pb=0"] = imagetest.Compress(t, want, "xz", "--check=crc32", "--lzma2=preset=0,lc=0,lp=2,pb=0")
		streams["xz -9e --lzma2=lc=4"] = imagetest.Compress(t, want, "xz", "-9e", "--lzma2=lc=4,lp=0")
		var b bytes.Buffer
		w, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(want)
		w.Close()
		streams["ulikunitz"] = b.Bytes()
		for how, src := range streams {
			dst := make([]byte, len(want)+10)
			n, err := decodeXZBlock(dst, src, &d)
			if len(want) == 0 && errors.Is(err, errXZFallback) {
				continue // xz writes no block at all for nothing
			}
			if err != nil || !bytes.Equal(dst[:n], want) {
				t.Errorf("%s, %s: %d bytes, %v; want %d bytes", name, how, n, err, len(want))
			}
			// An output buffer one byte short is refused, not overrun.
			if len(want) > 0 {
				if _, err := decodeXZBlock(make([]byte, len(want)-1), src, &d); !errors.Is(err, errXZFallback) {
					t.Errorf("%s, %s: short buffer gave %v", name, how, err)
				}
			}
		}
	}
}

// Streams with a BCJ filter, two blocks or damage go to the general
// decoder; a damaged stream never yields wrong data.
func TestDecodeXZBlockFallback(t *testing.T) {
	t.Parallel()
	var d lzmaDecoder
	samples := xzSamples(t)
	want := samples["binary"]
	for _, args := range [][]string{{"--x86", "--lzma2"}, {"--delta=dist=4", "--lzma2"}, {"--block-size=4096"}} {
		src := imagetest.Compress(t, want, "xz", args...)
		if _, err := decodeXZBlock(make([]byte, len(want)), src, &d); !errors.Is(err, errXZFallback) {
			t.Errorf("xz %v: %v, want the general decoder", args, err)
		}
	}
	src := imagetest.Compress(t, samples["mixed"], "xz", "--check=crc32")
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		bad := bytes.Clone(src)
		for range 1 + rng.IntN(3) {
			bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
		}
		dst := make([]byte, len(samples["mixed"]))
		n, err := decodeXZBlock(dst, bad, &d)
		if err == nil && !bytes.Equal(dst[:n], samples["mixed"]) {
			t.Fatalf("damaged stream decoded to wrong data without an error")
		}
	}
}

// FuzzDecodeXZBlock: any input decodes without panic, and whatever the
// fast path accepts, XZ Embedded's decoder decodes to the same bytes.
func FuzzDecodeXZBlock(f *testing.F) {
	for _, s := range xzSamples(f) {
		var b bytes.Buffer
		w, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&b)
		if err != nil {
			f.Fatal(err)
		}
		w.Write(s[:min(len(s), 2000)])
		w.Close()
		f.Add(b.Bytes())
	}
	var d lzmaDecoder
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := make([]byte, 4096)
		n, err := decodeXZBlock(dst, src, &d)
		if err != nil {
			if !errors.Is(err, errXZFallback) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		zr, err := xi2.NewReader(bytes.NewReader(src), 1<<24)
		if err != nil {
			t.Fatalf("fast path accepted what xi2 refuses: %v", err)
		}
		zr.Multistream(false)
		want, err := readBlock(zr, 4096)
		if err != nil || !bytes.Equal(want, dst[:n]) {
			t.Fatalf("fast path gave %d bytes, xi2 %d bytes, %v", n, len(want), err)
		}
	})
}

// BenchmarkDecodeXZBlock decodes 128 KiB blocks of a real binary as
// mksquashfs compresses them, with the fast path and with xi2/xz.
func BenchmarkDecodeXZBlock(b *testing.B) {
	bin, err := os.ReadFile("/usr/bin/perl")
	if err != nil {
		b.Skip(err)
	}
	bin = bin[:min(len(bin), 2<<20)]
	var blocks [][]byte
	for off := 0; off+128<<10 <= len(bin); off += 128 << 10 {
		blocks = append(blocks, imagetest.Compress(b, bin[off:off+128<<10], "xz", "--check=crc32", "--lzma2=dict=128KiB"))
	}
	dst := make([]byte, 128<<10)
	b.Run("fast", func(b *testing.B) {
		var d lzmaDecoder
		b.SetBytes(int64(len(blocks)) << 17)
		for b.Loop() {
			for _, src := range blocks {
				if _, err := decodeXZBlock(dst, src, &d); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("xi2", func(b *testing.B) {
		b.SetBytes(int64(len(blocks)) << 17)
		for b.Loop() {
			for _, src := range blocks {
				zr, err := xi2.NewReader(bytes.NewReader(src), 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := readBlock(zr, 128<<10); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// xzWrap puts raw LZMA2 data (decoding to usize bytes) into a
// single-block xz stream without a check, which decodeXZBlock and xi2/xz
// both read.
func xzWrap(lzma2 []byte, usize int) []byte {
	varint := func(b []byte, v uint64) []byte {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		return append(b, byte(v))
	}
	withCRC := func(out, b []byte) []byte {
		return binary.LittleEndian.AppendUint32(append(out, b...), crc32.ChecksumIEEE(b))
	}
	out := withCRC(append([]byte{}, xzMagic...), []byte{0, 0})
	bh := []byte{0, 0, 0x21, 1, 16} // one filter: LZMA2, 128 KiB dictionary
	for (len(bh)+4)%4 != 0 {
		bh = append(bh, 0)
	}
	bh[0] = byte((len(bh)+4)/4 - 1)
	out = withCRC(out, bh)
	out = append(out, lzma2...)
	for (len(out)-12)%4 != 0 {
		out = append(out, 0)
	}
	index := varint(varint([]byte{0, 1}, uint64(len(bh)+4+len(lzma2))), uint64(usize))
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	out = withCRC(out, index)
	footer := binary.LittleEndian.AppendUint32(nil, uint32((len(index)+4)/4-1))
	footer = append(footer, 0, 0)
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(footer))
	return append(append(out, footer...), 'Y', 'Z')
}

// FuzzLZMA2 feeds raw LZMA2 chunks to the decoder (past the container's
// checksums, which stop most mutations in FuzzDecodeXZBlock): no panic,
// and what decodes cleanly decodes the same in xi2/xz.
func FuzzLZMA2(f *testing.F) {
	for _, s := range xzSamples(f) {
		var b bytes.Buffer
		w, err := lzma.NewWriter2(&b)
		if err != nil {
			f.Fatal(err)
		}
		w.Write(s[:min(len(s), 3000)])
		w.Close()
		f.Add(b.Bytes())
	}
	var d lzmaDecoder
	f.Fuzz(func(t *testing.T, raw []byte) {
		dst := make([]byte, 8192)
		n, used, err := d.decodeLZMA2(dst, raw)
		if err != nil || used != len(raw) {
			return
		}
		zr, err := xi2.NewReader(bytes.NewReader(xzWrap(raw, n)), 1<<24)
		if err != nil {
			t.Fatalf("xi2 refuses the container: %v", err)
		}
		want, err := readBlock(zr, 8192)
		if err != nil || !bytes.Equal(want, dst[:n]) {
			t.Fatalf("fast path gave %d bytes, xi2 %d bytes, %v", n, len(want), err)
		}
		if m, err := decodeXZBlock(make([]byte, n), xzWrap(raw, n), &d); err != nil || m != n {
			t.Fatalf("decodeXZBlock on the wrapped stream: %d, %v", m, err)
		}
	})
}
