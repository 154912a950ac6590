// Package unpack turns a firmware image into an in-memory file tree: it finds
// known formats by magic at any offset (carving), unpacks them recursively
// through a Sink that refuses path escapes and enforces budgets, and reports
// every region it could not open with its offset, size and entropy.
package unpack

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strings"
	"sync"
)

// Status says what became of a layer.
type Status string

// Layer statuses.
const (
	// StatusUnpacked: the layer was opened and its contents are in the tree.
	StatusUnpacked Status = "unpacked"
	// StatusFailed: the format was recognised but opening it failed (corrupt,
	// truncated, over budget); Error says why and partial contents are kept.
	StatusFailed Status = "failed"
	// StatusOpaque: a region no known format matched (unknown, encrypted,
	// obfuscated or plain code/data); Entropy hints which.
	StatusOpaque Status = "opaque"
)

// Layer is one region of the image (or of something unpacked from it) and
// what became of it.
type Layer struct {
	ID int
	// Parent is the ID of the layer the region was found in; -1 for the image.
	Parent int
	// Source is the display path of the file the region was found in; ""
	// means the image itself (or a stream decompressed from it).
	Source string
	// Offset and Size locate the region inside Source.
	Offset, Size int64
	Format       string
	// Entropy is the Shannon entropy of the region in bits per byte (0..8).
	Entropy float64
	Status  Status
	// Error explains a failed layer.
	Error string
	// Depth is the nesting level (the image is 0).
	Depth int
	// Files and Bytes count what the layer produced.
	Files int
	Bytes int64
	// Refused lists entries the sink would not create (path traversal,
	// device nodes, links out of the tree), at most a few dozen.
	Refused []string
	// Info holds format details (image name, compression, version ...).
	Info map[string]string

	fs *FS
}

// FS returns the files the layer produced, or nil for opaque layers.
func (l *Layer) FS() *FS { return l.fs }

// Tree is everything unpacked from one image.
type Tree struct {
	mu     sync.Mutex
	layers []*Layer
	budget *budget
	opts   Options
}

// Layers returns the layers in the order they were found.
func (t *Tree) Layers() []*Layer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Layer(nil), t.layers...)
}

// Filesystems returns the file trees of all layers that produced files.
func (t *Tree) Filesystems() []*FS {
	var out []*FS
	for _, l := range t.Layers() {
		if l.fs != nil && l.fs.Len() > 0 {
			out = append(out, l.fs)
		}
	}
	return out
}

// Files returns every file of every layer, layer by layer, sorted by path.
func (t *Tree) Files() []*File {
	var out []*File
	for _, s := range t.Filesystems() {
		out = append(out, s.Files()...)
	}
	return out
}

// FS is the file tree one layer produced. Paths are absolute and
// slash-separated ("/etc/shadow"); symlinks resolve inside this root.
type FS struct {
	layer *Layer
	// prefix is prepended to paths for display ("" or "/path/of/file.tar!").
	prefix string
	mu     sync.Mutex
	nodes  map[string]*File
}

func newFS(l *Layer, prefix string) *FS {
	return &FS{layer: l, prefix: prefix, nodes: map[string]*File{}}
}

// Layer returns the layer the tree came from.
func (s *FS) Layer() *Layer { return s.layer }

// Len returns the number of entries.
func (s *FS) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nodes)
}

// DisplayPath returns how a path of this tree is shown in findings.
func (s *FS) DisplayPath(p string) string { return s.prefix + p }

// Files returns all entries sorted by path.
func (s *FS) Files() []*File {
	s.mu.Lock()
	out := make([]*File, 0, len(s.nodes))
	for _, f := range s.nodes {
		out = append(out, f)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lstat returns the entry at p without following a final symlink
// (intermediate symlinks are followed inside the root).
func (s *FS) Lstat(p string) (*File, error) {
	dir, base := path.Split(cleanAbs(p))
	if base == "" {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	d, err := s.resolve(dir, 0)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	f := s.nodes[path.Join(d, base)]
	s.mu.Unlock()
	if f == nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	return f, nil
}

// Resolve follows symlinks (absolute ones too) inside the root and returns
// the entry p finally names. ".." never climbs above the root, so a link
// such as "x -> ../../etc/shadow" names this tree's /etc/shadow, never the
// host's.
func (s *FS) Resolve(p string) (*File, error) {
	r, err := s.resolve(p, 0)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	f := s.nodes[r]
	s.mu.Unlock()
	if f == nil {
		return nil, &fs.PathError{Op: "resolve", Path: p, Err: fs.ErrNotExist}
	}
	return f, nil
}

// ReadFile returns the content of the regular file p names after
// following symlinks.
func (s *FS) ReadFile(p string) ([]byte, error) {
	f, err := s.Resolve(p)
	if err != nil {
		return nil, err
	}
	if !f.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	if f.dropped {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("content released after analysis (over the retain size)")}
	}
	return f.data, nil
}

// errLinkLoop is returned when resolution follows too many links.
var errLinkLoop = errors.New("too many levels of symbolic links")

const maxLinkHops = 40

// resolve returns the clean absolute path p names once every symlink in it
// is followed, clamped to the root.
func (s *FS) resolve(p string, hops int) (string, error) {
	parts := strings.Split(cleanAbs(p), "/")
	cur := "/"
	for i := 0; i < len(parts); i++ {
		c := parts[i]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		s.mu.Lock()
		f := s.nodes[next]
		s.mu.Unlock()
		if f == nil || f.Mode&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		hops++
		if hops > maxLinkHops {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: errLinkLoop}
		}
		rest := strings.Join(parts[i+1:], "/")
		var target string
		if strings.HasPrefix(f.Link, "/") {
			target = f.Link
		} else {
			target = cur + "/" + f.Link
		}
		return s.resolve(target+"/"+rest, hops)
	}
	return cur, nil
}

func cleanAbs(p string) string { return path.Clean("/" + p) }

// File is one entry of an FS.
type File struct {
	// Name is the absolute path inside its FS ("/etc/shadow").
	Name string
	// Mode holds the type bits (dir, symlink) and permissions.
	Mode fs.FileMode
	// Link is a symlink's target as stored.
	Link string
	// Size is the content length of a regular file.
	Size int64
	// Blob marks a stream (decompressed payload, kernel, partition) that is
	// carved for formats at any offset rather than identified at its start.
	Blob bool
	// Unpacked is set when the file's content was itself unpacked into a
	// layer; analyses look at that layer instead of the raw bytes.
	Unpacked bool

	data []byte
	fs   *FS
	// visited: handed to Options.Visit; dropped: content released after.
	visited, dropped bool
}

// Data returns a regular file's content (nil for other entries, and for
// files whose content was released after Options.Visit saw them).
func (f *File) Data() []byte { return f.data }

// Released reports whether the content was released after Options.Visit
// saw it (Options.Retain said no).
func (f *File) Released() bool { return f.dropped }

// FS returns the tree the file belongs to.
func (f *File) FS() *FS { return f.fs }

// Path returns the display path ("/etc/shadow" or "/a/b.tar!/etc/shadow").
func (f *File) Path() string { return f.fs.DisplayPath(f.Name) }

// Entropy returns the Shannon entropy of b in bits per byte.
func Entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	var h float64
	for _, c := range counts {
		if c == 0 {
			continue
		}
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h
}

// String describes a layer in one line.
func (l *Layer) String() string {
	s := fmt.Sprintf("%s@0x%x size %d", l.Format, l.Offset, l.Size)
	if l.Source != "" {
		s += " in " + l.Source
	}
	s += " " + string(l.Status)
	if l.Error != "" {
		s += ": " + l.Error
	}
	return s
}
