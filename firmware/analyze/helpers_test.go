package analyze

import (
	"archive/tar"
	"bytes"
	"sort"
	"testing"
)

// tarOf builds a tar archive holding files (name -> content).
func tarOf(t testing.TB, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return b.Bytes()
}
