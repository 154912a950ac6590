package analyze

import (
	"io/fs"
	"path"
	"time"

	"github.com/iotcop/iotcop/firmware/unpack"
)

// fileInfo presents an unpacked file as an fs.FileInfo for Required.
type fileInfo struct{ f *unpack.File }

func (i fileInfo) Name() string       { return path.Base(i.f.Name) }
func (i fileInfo) Size() int64        { return i.f.Size }
func (i fileInfo) Mode() fs.FileMode  { return i.f.Mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.f.Mode.IsDir() }
func (i fileInfo) Sys() any           { return i.f }
