package unpack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// TPLink unpacks the 512-byte TP-Link firmware header (version 1, as
// written by OpenWrt's mktplinkfw): vendor, firmware version, hardware id,
// then the kernel and root filesystem as blobs at the offsets it gives.
type TPLink struct{}

// Format implements Unpacker.
func (TPLink) Format() string { return "tplink" }

// Magics implements Unpacker.
func (TPLink) Magics() []Magic {
	return []Magic{{0, []byte("\x00\x00\x00\x01TP-LINK Technologies")}, {0, []byte("\x00\x00\x00\x01OpenWrt")}}
}

const tplinkHeader = 512

type tplinkHdr struct {
	vendor, version      string
	hwID, hwRev          uint32
	fwLen                uint32
	kernelOff, kernelLen uint32
	rootfsOff, rootfsLen uint32
}

func parseTPLink(h []byte) (tplinkHdr, error) {
	var t tplinkHdr
	if len(h) < tplinkHeader || binary.BigEndian.Uint32(h) != 1 {
		return t, errors.New("no TP-Link v1 header")
	}
	be := binary.BigEndian
	t.vendor = strings.TrimRight(string(h[4:28]), "\x00")
	t.version = strings.TrimRight(string(h[28:64]), "\x00")
	t.hwID, t.hwRev = be.Uint32(h[64:]), be.Uint32(h[68:])
	t.fwLen = be.Uint32(h[0x7c:])
	t.kernelOff, t.kernelLen = be.Uint32(h[0x80:]), be.Uint32(h[0x84:])
	t.rootfsOff, t.rootfsLen = be.Uint32(h[0x88:]), be.Uint32(h[0x8c:])
	if bytes.IndexByte([]byte(t.vendor), 0) >= 0 || t.vendor == "" {
		return t, errors.New("TP-Link header vendor field is not text")
	}
	if t.kernelOff < tplinkHeader && t.kernelLen > 0 || t.fwLen < tplinkHeader {
		return t, fmt.Errorf("TP-Link header offsets: kernel 0x%x, length 0x%x", t.kernelOff, t.fwLen)
	}
	return t, nil
}

// Identify implements Unpacker.
func (TPLink) Identify(h []byte) bool {
	_, err := parseTPLink(h)
	return err == nil
}

// Unpack implements Unpacker.
func (TPLink) Unpack(ctx context.Context, r io.ReaderAt, size int64, s *Sink) (int64, error) {
	b, err := readAtMost(r, size, size)
	if err != nil && len(b) < tplinkHeader {
		return 0, err
	}
	t, err := parseTPLink(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotFormat, err)
	}
	s.SetInfo("vendor", t.vendor)
	s.SetInfo("firmware_version", t.version)
	s.SetInfo("hardware_id", fmt.Sprintf("0x%08x rev %d", t.hwID, t.hwRev))
	used := int64(t.fwLen)
	var errs []error
	if used > int64(len(b)) {
		errs = append(errs, fmt.Errorf("image truncated: header says %d bytes, %d present", t.fwLen, len(b)))
		used = int64(len(b))
	}
	for _, part := range []struct {
		name     string
		off, len uint32
	}{{"kernel", t.kernelOff, t.kernelLen}, {"rootfs", t.rootfsOff, t.rootfsLen}} {
		if part.len == 0 {
			continue
		}
		end := int64(part.off) + int64(part.len)
		if end > used {
			if int64(part.off) >= used {
				errs = append(errs, fmt.Errorf("%s at 0x%x outside the image", part.name, part.off))
				continue
			}
			errs = append(errs, fmt.Errorf("%s truncated", part.name))
			end = used
		}
		if err := s.fileBytes(part.name, 0o644, b[part.off:end], true); err != nil {
			return used, err
		}
	}
	return used, errors.Join(errs...)
}
