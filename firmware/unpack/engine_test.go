package unpack

import (
	"archive/tar"
	"bytes"
	"fmt"
	"testing"

	"github.com/iotcop/iotcop/firmware/internal/imagetest"
)

// The carver searches magics a chunk at a time: formats far apart (more
// than a search chunk of padding between them) are all found, in order,
// and a magic inside an unpacked layer is not carved on its own.
func TestCarveAcrossChunks(t *testing.T) {
	t.Parallel()
	gz := imagetest.Compress(t, []byte("first file\n"), "gzip")
	xzd := imagetest.Compress(t, []byte("second file\n"), "xz", "--check=crc32")
	// A tar whose member is a bare gzip stream: the gzip magic inside the
	// tar must not become a layer of its own at top level.
	inner := imagetest.Compress(t, []byte("inner\n"), "gzip")
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "inner.gz", Mode: 0o644, Size: int64(len(inner)), Typeflag: tar.TypeReg})
	tw.Write(inner)
	tw.Close()
	tarball := tb.Bytes()
	pad := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
	var img []byte
	img = append(img, gz...)
	img = append(img, pad(2*carveChunk+12345)...)
	xzAt := len(img)
	img = append(img, xzd...)
	img = append(img, pad(carveChunk-3)...)
	tarAt := len(img)
	img = append(img, tarball...)
	img = append(img, pad(5000)...)
	tree := unpackBytes(t, img, Options{})
	var got []string
	for _, l := range tree.Layers() {
		if l.Parent == 0 && l.Format != "unknown" {
			got = append(got, fmt.Sprintf("%s@%d", l.Format, l.Offset))
		}
	}
	want := []string{"gzip@0", fmt.Sprintf("xz@%d", xzAt), fmt.Sprintf("tar@%d", tarAt)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("top-level layers %v, want %v\n%s", got, want, dumpLayers(tree))
	}
}
