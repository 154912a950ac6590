package unpack

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// ErrBudget is wrapped by every error that stops a layer because a budget
// (total bytes, file count, depth, compression ratio) ran out.
var ErrBudget = errors.New("budget exceeded")

// ErrNotFormat is returned (wrapped) by an Unpacker that finds, past the
// magic, that the bytes are not its format after all. The engine then
// treats the candidate as a false match and reports nothing for it.
var ErrNotFormat = errors.New("not this format")

// budget is shared by every layer of a tree.
type budget struct {
	mu       sync.Mutex
	maxBytes int64
	maxFiles int64
	bytes    int64
	files    int64
}

func (b *budget) take(files, bytes int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.files+files > b.maxFiles {
		return fmt.Errorf("%w: more than %d files", ErrBudget, b.maxFiles)
	}
	if b.bytes+bytes > b.maxBytes {
		return fmt.Errorf("%w: more than %d bytes unpacked in total", ErrBudget, b.maxBytes)
	}
	b.files += files
	b.bytes += bytes
	return nil
}

func (b *budget) remaining() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxBytes - b.bytes
}

// maxRefusedListed caps Layer.Refused.
const maxRefusedListed = 50

// ratioFloor is the output size below which the compression-ratio budget
// is not applied (small, highly compressible files are normal).
const ratioFloor = 32 << 20

// Sink receives what an Unpacker extracts into one layer. It refuses (and
// records) entries whose names climb out of the root, device nodes and
// hard links to nothing; it returns an error wrapping ErrBudget when a
// budget runs out, which should end the layer. Safe for concurrent use.
type Sink struct {
	tree   *Tree
	layer  *Layer
	fs     *FS
	inSize int64
	// diskRoot is the layer's folder under Options.ExtractDir, or "".
	diskRoot string

	// onFile is called for every complete regular file.
	onFile func(*File)

	mu       sync.Mutex
	outBytes int64
	links    []diskLink
	diskErr  error
}

type diskLink struct{ name, target string }

func newSink(t *Tree, l *Layer, prefix string, inSize int64) *Sink {
	l.fs = newFS(l, prefix)
	s := &Sink{tree: t, layer: l, fs: l.fs, inSize: inSize}
	if t.opts.ExtractDir != "" {
		s.diskRoot = filepath.Join(t.opts.ExtractDir, fmt.Sprintf("%03d-%s-0x%x", l.ID, l.Format, l.Offset))
	}
	return s
}

// cleanName validates an archive member name and returns its clean
// absolute form. Leading slashes are allowed (tar strips them too); any
// ".." component is refused rather than silently clamped.
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", errors.New("empty or NUL in name")
	}
	name = strings.ReplaceAll(name, "\\", "/")
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", errors.New("path traversal")
		}
	}
	p := cleanAbs(name)
	if p == "/" {
		return "", errors.New("names the root")
	}
	return p, nil
}

func (s *Sink) refuse(name, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.layer.Refused) < maxRefusedListed {
		s.layer.Refused = append(s.layer.Refused, fmt.Sprintf("%q: %s", name, why))
	}
}

// done hands a complete regular file to the engine (visit and release).
func (s *Sink) done(f *File) {
	if s.onFile != nil {
		s.onFile(f)
	}
}

func (s *Sink) put(f *File) {
	f.fs = s.fs
	s.fs.mu.Lock()
	s.fs.nodes[f.Name] = f
	s.fs.mu.Unlock()
	s.mu.Lock()
	s.layer.Files++
	s.layer.Bytes += f.Size
	s.mu.Unlock()
}

// Dir records a directory.
func (s *Sink) Dir(name string, mode fs.FileMode) error {
	p, err := cleanName(name)
	if err != nil {
		if name == "/" || name == "." || name == "./" {
			return nil
		}
		s.refuse(name, err.Error())
		return nil
	}
	if err := s.tree.budget.take(1, 0); err != nil {
		return err
	}
	s.put(&File{Name: p, Mode: fs.ModeDir | mode.Perm()})
	if s.diskRoot != "" {
		s.diskDir(p)
	}
	return nil
}

// File records a regular file whose content is read from r, within the
// byte budget.
func (s *Sink) File(name string, mode fs.FileMode, r io.Reader) error {
	return s.file(name, mode, r, false)
}

// Blob records a stream (a decompressed payload, a kernel, a partition)
// that the engine carves for further formats at any offset.
func (s *Sink) Blob(name string, r io.Reader) error {
	return s.file(name, 0o644, r, true)
}

// fileBytes records a regular file (or blob) whose content the caller
// already holds; the sink keeps data without copying it.
func (s *Sink) fileBytes(name string, mode fs.FileMode, data []byte, blob bool) error {
	p, err := cleanName(name)
	if err != nil {
		s.refuse(name, err.Error())
		return nil
	}
	if int64(len(data)) > s.limit() {
		return s.overBudget(name)
	}
	if err := s.tree.budget.take(1, int64(len(data))); err != nil {
		return err
	}
	s.mu.Lock()
	s.outBytes += int64(len(data))
	s.mu.Unlock()
	f := &File{Name: p, Mode: mode.Perm(), Size: int64(len(data)), data: data, Blob: blob}
	s.put(f)
	if s.diskRoot != "" {
		s.diskFile(p, mode, data)
	}
	s.done(f)
	return nil
}

func (s *Sink) file(name string, mode fs.FileMode, r io.Reader, blob bool) error {
	p, err := cleanName(name)
	if err != nil {
		s.refuse(name, err.Error())
		return nil
	}
	if err := s.tree.budget.take(1, 0); err != nil {
		return err
	}
	limit := s.tree.budget.remaining()
	if rl := s.ratioLimit(); rl < limit {
		limit = rl
	}
	if limit < 0 {
		limit = 0
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(data)) > limit {
		return s.overBudget(name)
	}
	if terr := s.tree.budget.take(0, int64(len(data))); terr != nil {
		return terr
	}
	s.mu.Lock()
	s.outBytes += int64(len(data))
	s.mu.Unlock()
	f := &File{Name: p, Mode: mode.Perm(), Size: int64(len(data)), data: data, Blob: blob}
	s.put(f)
	if s.diskRoot != "" {
		s.diskFile(p, mode, data)
	}
	s.done(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	return nil
}

// ratioLimit returns how many more bytes this layer may produce before its
// output/input ratio passes Options.MaxRatio.
func (s *Sink) ratioLimit() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	max := int64(s.tree.opts.MaxRatio * float64(s.inSize))
	if max < ratioFloor {
		max = ratioFloor
	}
	return max - s.outBytes
}

func (s *Sink) overBudget(name string) error {
	if s.tree.budget.remaining() <= s.ratioLimit() {
		return fmt.Errorf("%w: %s: more than %d bytes unpacked in total", ErrBudget, name, s.tree.budget.maxBytes)
	}
	return fmt.Errorf("%w: %s: compression ratio over %.0f:1 (decompression bomb?)", ErrBudget, name, s.tree.opts.MaxRatio)
}

// Symlink records a symbolic link. Targets are kept as stored and always
// resolved inside the image root; on disk they are rewritten to stay
// inside the extraction folder.
func (s *Sink) Symlink(name, target string) error {
	p, err := cleanName(name)
	if err != nil {
		s.refuse(name, err.Error())
		return nil
	}
	if target == "" || strings.ContainsRune(target, 0) {
		s.refuse(name, "empty symlink target")
		return nil
	}
	if err := s.tree.budget.take(1, 0); err != nil {
		return err
	}
	s.put(&File{Name: p, Mode: fs.ModeSymlink | 0o777, Link: target})
	if s.diskRoot != "" {
		s.mu.Lock()
		s.links = append(s.links, diskLink{p, target})
		s.mu.Unlock()
	}
	return nil
}

// Hardlink records name as a copy of the already extracted regular file
// target (a path inside the same layer).
func (s *Sink) Hardlink(name, target string) error {
	p, err := cleanName(name)
	if err != nil {
		s.refuse(name, err.Error())
		return nil
	}
	t, err := cleanName(target)
	if err != nil {
		s.refuse(name, "hard link target: "+err.Error())
		return nil
	}
	s.fs.mu.Lock()
	src := s.fs.nodes[t]
	s.fs.mu.Unlock()
	if src == nil || !src.Mode.IsRegular() {
		s.refuse(name, "hard link to a missing or non-regular file")
		return nil
	}
	if err := s.tree.budget.take(1, 0); err != nil {
		return err
	}
	f := &File{Name: p, Mode: src.Mode, Size: src.Size, data: src.data, dropped: src.dropped, visited: src.dropped}
	s.put(f)
	if s.diskRoot != "" && !src.dropped {
		s.diskFile(p, src.Mode, src.data)
	}
	s.done(f)
	return nil
}

// Special records that a device node, FIFO or socket was refused.
func (s *Sink) Special(name string, mode fs.FileMode) error {
	s.refuse(name, "special file ("+mode.Type().String()+") not created")
	return nil
}

// SetInfo records a format detail on the layer.
func (s *Sink) SetInfo(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.layer.Info == nil {
		s.layer.Info = map[string]string{}
	}
	s.layer.Info[key] = value
}

// diskPath maps a clean absolute member path to the extraction folder.
func (s *Sink) diskPath(p string) string {
	return filepath.Join(s.diskRoot, filepath.FromSlash(strings.TrimPrefix(p, "/")))
}

func (s *Sink) noteDiskErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.diskErr == nil {
		s.diskErr = err
	}
}

// diskDir creates a folder. No symlink exists in the layer folder before
// finish(), so MkdirAll cannot be led outside it.
func (s *Sink) diskDir(p string) {
	if err := os.MkdirAll(s.diskPath(p), 0o755); err != nil {
		s.noteDiskErr(err)
	}
}

func (s *Sink) diskFile(p string, mode fs.FileMode, data []byte) {
	dst := s.diskPath(p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		s.noteDiskErr(err)
		return
	}
	_ = os.Remove(dst)
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode.Perm()&0o755|0o600)
	if err != nil {
		s.noteDiskErr(err)
		return
	}
	if _, err := f.Write(data); err != nil {
		s.noteDiskErr(err)
	}
	if err := f.Close(); err != nil {
		s.noteDiskErr(err)
	}
}

// finish creates the layer's symlinks on disk, each rewritten to a
// relative target that stays inside the layer folder, and returns the
// first disk error.
func (s *Sink) finish() error {
	if s.diskRoot == "" {
		return nil
	}
	if err := os.MkdirAll(s.diskRoot, 0o755); err != nil {
		return fmt.Errorf("writing to %s: %w", s.diskRoot, err)
	}
	rootReal, err := filepath.EvalSymlinks(s.diskRoot)
	if err != nil {
		return fmt.Errorf("writing to %s: %w", s.diskRoot, err)
	}
	for _, l := range s.links {
		var abs string
		if strings.HasPrefix(l.target, "/") {
			abs = cleanAbs(l.target)
		} else {
			abs = cleanAbs(path.Dir(l.name) + "/" + l.target)
		}
		rel, err := filepath.Rel(filepath.Dir(s.diskPath(l.name)), s.diskPath(abs))
		if err != nil {
			continue
		}
		dst := s.diskPath(l.name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			s.noteDiskErr(err)
			continue
		}
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		// A link whose folder is reached through another link could climb
		// out with a relative target computed for the lexical folder.
		realDir, err := filepath.EvalSymlinks(filepath.Dir(dst))
		if err != nil || realDir != filepath.Join(rootReal, filepath.FromSlash(strings.TrimPrefix(path.Dir(l.name), "/"))) {
			s.refuse(l.name, "symlink inside a linked folder not written to disk")
			continue
		}
		if err := os.Symlink(rel, dst); err != nil {
			s.noteDiskErr(err)
		}
	}
	if s.diskErr != nil {
		return fmt.Errorf("writing to %s: %w", s.diskRoot, s.diskErr)
	}
	return nil
}
