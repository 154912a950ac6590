package unpack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
)

func evilTar(t *testing.T) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "../../../../tmp/iotcop-escape", Typeflag: tar.TypeReg}, "owned")
	add(&tar.Header{Name: "etc/../../escape2", Typeflag: tar.TypeReg}, "owned")
	add(&tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg}, "root::0:0::/:/bin/sh\n")
	add(&tar.Header{Name: "shadowlink", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}, "")
	add(&tar.Header{Name: "climb", Typeflag: tar.TypeSymlink, Linkname: "../../../../../etc/hostname"}, "")
	add(&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}, "")
	add(&tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "/etc/hostname"}, "")
	add(&tar.Header{Name: "d", Typeflag: tar.TypeSymlink, Linkname: "/"}, "")
	add(&tar.Header{Name: "d/through-link", Typeflag: tar.TypeReg}, "x")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHostileTarNeverEscapes(t *testing.T) {
	t.Parallel()
	extract := filepath.Join(t.TempDir(), "out")
	tree := unpackBytes(t, evilTar(t), Options{ExtractDir: extract})
	l := findLayer(tree, "tar")
	if l == nil {
		t.Fatalf("no tar layer:\n%s", dumpLayers(tree))
	}
	refused := strings.Join(l.Refused, "\n")
	for _, want := range []string{"iotcop-escape", "escape2", "dev/sda", "hard"} {
		if !strings.Contains(refused, want) {
			t.Errorf("%s not refused; refused:\n%s", want, refused)
		}
	}
	s := l.FS()
	// Symlinks resolve inside the image: the host's files are never read.
	for _, p := range []string{"/shadowlink", "/climb"} {
		if _, err := s.ReadFile(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s) err = %v, want not-exist inside the image", p, err)
		}
	}
	if b, err := s.ReadFile("/d/etc/passwd"); err != nil || !strings.HasPrefix(string(b), "root::") {
		t.Errorf("link to / resolves to the image root: %q %v", b, err)
	}
	// Nothing was written outside the extract folder.
	for _, p := range []string{"/tmp/iotcop-escape", filepath.Join(filepath.Dir(extract), "escape2")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written outside the extract folder", p)
		}
	}
	// On disk every symlink points inside the layer folder.
	err := filepath.WalkDir(extract, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // dangling inside the folder is fine
		}
		if !strings.HasPrefix(real, extract) {
			t.Errorf("symlink %s leads to %s, outside %s", p, real, extract)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(extract, "001-tar-0x0", "etc", "passwd")); err != nil || !strings.HasPrefix(string(b), "root::") {
		t.Errorf("extracted /etc/passwd: %q %v", b, err)
	}
}

func TestHostileZip(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, name := range []string{"../evil", "ok/file", `..\win-evil`} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("data"))
	}
	h := &zip.FileHeader{Name: "link"}
	h.SetMode(fs.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte("../../../etc/shadow"))
	zw.Close()
	tree := unpackBytes(t, b.Bytes(), Options{})
	l := findLayer(tree, "zip")
	if l == nil || l.Files != 2 || len(l.Refused) != 2 {
		t.Fatalf("zip layer %+v:\n%s", l, dumpLayers(tree))
	}
	if _, err := l.FS().ReadFile("/link"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("zip symlink escaped: %v", err)
	}
}

func gzipOf(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func TestBombsHitBudgets(t *testing.T) {
	t.Parallel()
	zeros := make([]byte, 64<<20)
	bomb := gzipOf(t, zeros)
	t.Run("ratio", func(t *testing.T) {
		tree := unpackBytes(t, bomb, Options{})
		l := findLayer(tree, "gzip")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "compression ratio") {
			t.Fatalf("gzip bomb not stopped by the ratio budget:\n%s", dumpLayers(tree))
		}
	})
	t.Run("total bytes", func(t *testing.T) {
		tree := unpackBytes(t, bomb, Options{MaxTotalBytes: 1 << 20})
		l := findLayer(tree, "gzip")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "budget exceeded") {
			t.Fatalf("gzip bomb not stopped by the byte budget:\n%s", dumpLayers(tree))
		}
	})
	t.Run("depth", func(t *testing.T) {
		nested := []byte("core")
		for range 12 {
			nested = gzipOf(t, nested)
		}
		tree := unpackBytes(t, nested, Options{MaxDepth: 5})
		var deep *Layer
		for _, l := range tree.Layers() {
			if strings.Contains(l.Error, "nesting deeper") {
				deep = l
			}
		}
		if deep == nil {
			t.Fatalf("nesting not limited:\n%s", dumpLayers(tree))
		}
	})
	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		for i := range 50 {
			os.WriteFile(filepath.Join(dir, strings.Repeat("f", 1)+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o644)
		}
		tree := unpackBytes(t, imagetest.Tar(t, dir), Options{MaxFiles: 10})
		l := findLayer(tree, "tar")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "more than 10 files") {
			t.Fatalf("file budget:\n%s", dumpLayers(tree))
		}
	})
	t.Run("squashfs sparse file", func(t *testing.T) {
		dir := t.TempDir()
		f, _ := os.Create(filepath.Join(dir, "sparse"))
		f.Truncate(400 << 20)
		f.Close()
		os.WriteFile(filepath.Join(dir, "small"), []byte("kept"), 0o644)
		img := imagetest.Squashfs(t, dir, "gzip")
		tree := unpackBytes(t, img, Options{MaxTotalBytes: 64 << 20})
		l := findLayer(tree, "squashfs")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "budget exceeded") {
			t.Fatalf("400 MiB sparse file not refused:\n%s", dumpLayers(tree))
		}
	})
}

func TestCorruptSquashFS(t *testing.T) {
	t.Parallel()
	root := sampleRoot(t)
	img := imagetest.Squashfs(t, root, "gzip", "-noI", "-noD")
	t.Run("truncated", func(t *testing.T) {
		tree := unpackBytes(t, img[:len(img)/2], Options{})
		l := findLayer(tree, "squashfs")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "truncated") {
			t.Fatalf("truncated squashfs:\n%s", dumpLayers(tree))
		}
	})
	t.Run("corrupt data block", func(t *testing.T) {
		bad := imagetest.Squashfs(t, root, "gzip", "-noI")
		// The first data block (bin/busybox) follows the superblock.
		for i := 96 + 8; i < 96+40; i++ {
			bad[i] ^= 0x5a
		}
		tree := unpackBytes(t, bad, Options{})
		l := findLayer(tree, "squashfs")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "/bin/busybox") {
			t.Fatalf("corrupt block not reported against its file:\n%s", dumpLayers(tree))
		}
		if b, err := l.FS().ReadFile("/etc/passwd"); err != nil || len(b) == 0 {
			t.Errorf("the rest of the image was not kept: %v", err)
		}
	})
	t.Run("directory cycle", func(t *testing.T) {
		bad := bytes.Clone(img)
		sb, bo, err := parseSuperblock(bad)
		if err != nil {
			t.Fatal(err)
		}
		// Point the "usr" entry at the root directory's inode.
		dirTable := bad[sb.dirTable:]
		i := bytes.Index(dirTable, []byte("usr"))
		if i < 8 || sb.rootInode>>16 != 0 {
			t.Skip("unexpected layout")
		}
		bo.PutUint16(dirTable[i-8:], uint16(sb.rootInode))
		tree := unpackBytes(t, bad, Options{})
		l := findLayer(tree, "squashfs")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "cycle") {
			t.Fatalf("cycle not reported:\n%s", dumpLayers(tree))
		}
	})
	t.Run("unsupported version", func(t *testing.T) {
		bad := bytes.Clone(img)
		binary.LittleEndian.PutUint16(bad[28:], 1)
		tree := unpackBytes(t, bad, Options{})
		l := findLayer(tree, "squashfs")
		if l == nil || l.Status != StatusFailed || !strings.Contains(l.Error, "1.0 is not supported") {
			t.Fatalf("squashfs 1 not reported:\n%s", dumpLayers(tree))
		}
	})
}

func TestOpaqueRegionsReported(t *testing.T) {
	t.Parallel()
	noise := make([]byte, 64<<10)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		noise[i] = byte(x)
	}
	sq := imagetest.Squashfs(t, sampleRoot(t), "gzip")
	img := imagetest.Concat(4096, noise, sq)
	tree := unpackBytes(t, img, Options{})
	var op *Layer
	for _, l := range tree.Layers() {
		if l.Status == StatusOpaque {
			op = l
		}
	}
	if op == nil || op.Offset != 0 || op.Size != int64(len(noise)) || op.Entropy < 7.9 || !strings.Contains(op.Info["hint"], "encrypted") {
		t.Fatalf("encrypted-looking region not reported:\n%s", dumpLayers(tree))
	}
	checkSample(t, tree)
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Data(ctx, gzipOf(t, []byte("x")), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// Millions of plausible headers must not make carving take forever.
func TestManyFalseCandidates(t *testing.T) {
	t.Parallel()
	hdr := []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff} // gzip header, broken deflate
	lz := []byte{0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	img := append(bytes.Repeat(hdr, 100000), bytes.Repeat(lz, 50000)...)
	img = append(img, imagetest.Squashfs(t, sampleRoot(t), "gzip")...)
	tree := unpackBytes(t, img, Options{})
	root := tree.Layers()[0]
	if root.Info["carving_stopped_gzip"] == "" {
		t.Errorf("gzip false matches not capped: %v", root.Info)
	}
	checkSample(t, tree)
}

// Vendor SquashFS LZMA blocks drop the 8-byte size field of lzma_alone.
func TestSquashLZMAWithoutSizeField(t *testing.T) {
	t.Parallel()
	block := bytes.Repeat([]byte("root:x:0:0:root:/root:/bin/sh\n"), 4000)[:65536]
	std := imagetest.Compress(t, block, "lzma")
	vendor := append(append([]byte(nil), std[:5]...), std[13:]...)
	for name, src := range map[string][]byte{"standard": std, "vendor": vendor} {
		got, err := decodeSquashLZMA(src, 65536)
		if err != nil || !bytes.Equal(got, block) {
			t.Errorf("%s: %d bytes, err %v", name, len(got), err)
		}
	}
}
