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
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// decompressPayload writes payload, decompressed with the named method
// ("none", "gzip", "bzip2", "lzma", "xz", "lz4", "zstd"), as a blob.
// Unknown methods keep the raw payload so the carver can still look at it.
func decompressPayload(ctx context.Context, s *Sink, method, name string, payload []byte) error {
	var dec io.Reader
	var err error
	br := bytes.NewReader(payload)
	switch method {
	case "none", "":
		return s.Blob(name, br)
	case "gzip":
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(br); err == nil {
			dec = zr
		}
	case "bzip2":
		dec = &bzip2Single{r: bzip2.NewReader(br)}
	case "lzma":
		var zr *lzma.Reader
		if zr, err = lzma.NewReader(br); err == nil {
			dec = zr
		}
	case "xz":
		var zr *xz.Reader
		if zr, err = xz.NewReader(br); err == nil {
			dec = zr
		}
	case "lz4":
		dec = lz4.NewReader(br)
	case "lzo": // U-Boot's lzo payloads are lzop files
		_, err := LZOP{}.Unpack(ctx, sliceReader(payload), int64(len(payload)), s)
		if err != nil {
			return fmt.Errorf("lzo payload: %w", err)
		}
		return nil
	case "zstd":
		var zr *zstd.Decoder
		if zr, err = zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(s.limit(), 1)))); err == nil {
			defer zr.Close()
			dec = zr
		}
	default:
		s.SetInfo("note", "payload compression "+method+" not supported; raw payload carved")
		return s.Blob(name, br)
	}
	if err != nil {
		return fmt.Errorf("%s payload header: %w", method, err)
	}
	out, err := readAllBounded(s, &ctxReader{ctx, dec}, name)
	if berr := s.fileBytes(name, 0o644, out, true); berr != nil && err == nil {
		err = berr
	}
	if err != nil {
		return fmt.Errorf("decompressing %s payload (%d bytes out before the error): %w", method, len(out), err)
	}
	return nil
}

// UImage unpacks a legacy U-Boot image (mkimage -A ... -T ...): a 64-byte
// big-endian header with a CRC, then the payload, possibly compressed, or
// a list of sub-images for multi-file images.
type UImage struct{}

// Format implements Unpacker.
func (UImage) Format() string { return "uimage" }

// Magics implements Unpacker.
func (UImage) Magics() []Magic { return []Magic{{0, []byte{0x27, 0x05, 0x19, 0x56}}} }

// Identify implements Unpacker: the header CRC matches.
func (UImage) Identify(h []byte) bool {
	if len(h) < 64 {
		return false
	}
	var hdr [64]byte
	copy(hdr[:], h)
	want := binary.BigEndian.Uint32(hdr[4:])
	clear(hdr[4:8])
	return crc32.ChecksumIEEE(hdr[:]) == want
}

var (
	uimageComp = []string{"none", "gzip", "bzip2", "lzma", "lzo", "lz4", "zstd"}
	uimageType = map[byte]string{1: "standalone", 2: "kernel", 3: "ramdisk", 4: "multi", 5: "firmware",
		6: "script", 7: "filesystem", 8: "flat_dt", 14: "kernel_noload"}
	uimageOS = map[byte]string{5: "linux", 17: "u-boot", 22: "openrtos", 1: "openbsd", 2: "netbsd", 3: "freebsd", 6: "vxworks"}
)

// uimageHeader is the parsed legacy header.
type uimageHeader struct {
	size         uint32
	dcrc         uint32
	os, typ, cmp byte
	name         string
}

func parseUImageHeader(h []byte) (uimageHeader, error) {
	if len(h) < 64 || binary.BigEndian.Uint32(h) != 0x27051956 {
		return uimageHeader{}, errors.New("not a uImage header")
	}
	return uimageHeader{
		size: binary.BigEndian.Uint32(h[12:]), dcrc: binary.BigEndian.Uint32(h[24:]),
		os: h[28], typ: h[30], cmp: h[31],
		name: strings.TrimRight(string(h[32:64]), "\x00"),
	}, nil
}

// Unpack implements Unpacker.
func (UImage) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 64 {
		return 0, err
	}
	h, err := parseUImageHeader(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	s.SetInfo("name", h.name)
	s.SetInfo("type", uimageType[h.typ])
	s.SetInfo("os", uimageOS[h.os])
	comp := "unknown"
	if int(h.cmp) < len(uimageComp) {
		comp = uimageComp[h.cmp]
	}
	s.SetInfo("compression", comp)
	end := 64 + int64(h.size)
	var truncErr error
	if end > int64(len(b)) {
		truncErr = fmt.Errorf("payload truncated: header says %d bytes, %d present", h.size, len(b)-64)
		end = int64(len(b))
	}
	payload := b[64:end]
	if truncErr == nil {
		if crc32.ChecksumIEEE(payload) == h.dcrc {
			s.SetInfo("data_crc", "ok")
		} else {
			s.SetInfo("data_crc", "mismatch")
		}
	}
	name := safeBase(h.name)
	if name == "" {
		name = "payload"
	}
	if h.typ == 4 { // multi-file: u32 sizes ending with 0, then the images
		err = uimageMulti(ctx, s, comp, name, payload)
	} else {
		err = decompressPayload(ctx, s, comp, name, payload)
	}
	return end, errors.Join(truncErr, err)
}

func uimageMulti(ctx context.Context, s *Sink, comp, name string, p []byte) error {
	var sizes []uint32
	off := 0
	for {
		if off+4 > len(p) {
			return errors.New("multi-file size list runs past the payload")
		}
		n := binary.BigEndian.Uint32(p[off:])
		off += 4
		if n == 0 {
			break
		}
		sizes = append(sizes, n)
		if len(sizes) > 64 {
			return errors.New("multi-file image lists more than 64 images")
		}
	}
	var errs []error
	for i, n := range sizes {
		if off+int(n) > len(p) || int(n) < 0 {
			errs = append(errs, fmt.Errorf("multi-file image %d: %d bytes run past the payload", i, n))
			break
		}
		if err := decompressPayload(ctx, s, comp, fmt.Sprintf("%s.%d", name, i), p[off:off+int(n)]); err != nil {
			if errors.Is(err, ErrBudget) {
				return err
			}
			errs = append(errs, fmt.Errorf("multi-file image %d: %w", i, err))
		}
		off += int(alignUp(int64(n), 4))
	}
	return errors.Join(errs...)
}

// TRX unpacks a Broadcom TRX container (v1 or v2): up to four partitions
// (loader, kernel, root filesystem, ...) at offsets from the header.
type TRX struct{}

// Format implements Unpacker.
func (TRX) Format() string { return "trx" }

// Magics implements Unpacker.
func (TRX) Magics() []Magic { return []Magic{{0, []byte("HDR0")}} }

// Identify implements Unpacker.
func (TRX) Identify(h []byte) bool {
	_, err := parseTRXHeader(h)
	return err == nil
}

type trxHeader struct {
	length  uint32
	crc     uint32
	version uint16
	offsets []uint32
}

func parseTRXHeader(h []byte) (trxHeader, error) {
	if len(h) < 28 || string(h[:4]) != "HDR0" {
		return trxHeader{}, errors.New("not a TRX header")
	}
	t := trxHeader{length: binary.LittleEndian.Uint32(h[4:]), crc: binary.LittleEndian.Uint32(h[8:]),
		version: uint16(binary.LittleEndian.Uint32(h[12:]) >> 16)}
	n := 3
	if t.version == 2 {
		n = 4
	} else if t.version != 1 {
		return t, fmt.Errorf("TRX version %d", t.version)
	}
	hdrLen := 16 + 4*n
	if len(h) < hdrLen || t.length < uint32(hdrLen) {
		return t, errors.New("TRX header truncated or length too small")
	}
	for i := range n {
		o := binary.LittleEndian.Uint32(h[16+4*i:])
		if o == 0 {
			continue
		}
		if o < uint32(hdrLen) || o >= t.length {
			return t, fmt.Errorf("TRX partition offset 0x%x outside 0x%x..0x%x", o, hdrLen, t.length)
		}
		if len(t.offsets) > 0 && o <= t.offsets[len(t.offsets)-1] {
			return t, errors.New("TRX partition offsets not increasing")
		}
		t.offsets = append(t.offsets, o)
	}
	if len(t.offsets) == 0 {
		return t, errors.New("TRX header lists no partition")
	}
	return t, nil
}

// Unpack implements Unpacker.
func (TRX) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < 28 {
		return 0, err
	}
	t, err := parseTRXHeader(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	s.SetInfo("version", fmt.Sprint(t.version))
	end := int64(t.length)
	var truncErr error
	if end > int64(len(b)) {
		truncErr = fmt.Errorf("TRX truncated: header says %d bytes, %d present", t.length, len(b))
		end = int64(len(b))
	} else if ^crc32.ChecksumIEEE(b[12:end]) == t.crc {
		s.SetInfo("crc", "ok")
	} else {
		s.SetInfo("crc", "mismatch")
	}
	for i, o := range t.offsets {
		stop := end
		if i+1 < len(t.offsets) {
			stop = min(int64(t.offsets[i+1]), end)
		}
		if int64(o) >= stop {
			continue
		}
		if err := s.Blob(fmt.Sprintf("partition%d", i), bytes.NewReader(b[o:stop])); err != nil {
			return end, err
		}
	}
	return end, truncErr
}
