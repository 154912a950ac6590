package unpack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
)

// Magic is a byte string that marks a format at Offset bytes from the
// format's start.
type Magic struct {
	Offset int
	Bytes  []byte
}

// Unpacker handles one format.
type Unpacker interface {
	// Format names the format ("squashfs", "gzip", ...).
	Format() string
	// Magics lists the byte strings the carver searches for.
	Magics() []Magic
	// Identify cheaply checks a candidate start (up to HeaderSize bytes,
	// fewer at the end of the data).
	Identify(header []byte) bool
	// Unpack extracts the format found at the start of r into sink and
	// returns how many bytes of r it spans. A wrapped ErrNotFormat says
	// the candidate was a false match.
	Unpack(ctx context.Context, r io.ReaderAt, size int64, sink *Sink) (used int64, err error)
}

// HeaderSize is how many bytes Identify is given.
const HeaderSize = 4096

// Options bound and configure unpacking. Zero fields take the defaults.
type Options struct {
	// ExtractDir, when set, also writes every layer under this folder
	// (one sub-folder per layer); by default nothing touches the disk.
	ExtractDir string
	// MaxDepth limits nesting (default 8).
	MaxDepth int
	// MaxTotalBytes limits the bytes unpacked from one image (default 1 GiB).
	MaxTotalBytes int64
	// MaxFiles limits the entries unpacked from one image (default 200000).
	MaxFiles int64
	// MaxRatio limits a layer's output/input size ratio once its output
	// passes 32 MiB (default 200).
	MaxRatio float64
	// Workers bounds parallel block decompression (default: the CPUs).
	Workers int
	// Unpackers replaces the default format list.
	Unpackers []Unpacker
	// Visit, when set, is called once for every regular file that is not
	// unpacked further, while its content is in memory, possibly from
	// several goroutines at once. Afterwards the content is released
	// unless Retain keeps it, which bounds memory on large images.
	Visit func(ctx context.Context, f *File)
	// Retain decides which visited files keep their content (default:
	// files up to 1 MiB). Only used with Visit.
	Retain func(f *File) bool
}

func (o Options) withDefaults() Options {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 8
	}
	if o.MaxTotalBytes <= 0 {
		o.MaxTotalBytes = 1 << 30
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 200000
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = 200
	}
	if o.Workers <= 0 {
		o.Workers = max(runtime.NumCPU(), 2)
	}
	if o.Unpackers == nil {
		o.Unpackers = Default(o.Workers)
	}
	if o.Retain == nil {
		o.Retain = func(f *File) bool { return f.Size <= 1<<20 }
	}
	return o
}

// Default returns the built-in unpackers, most specific first: when two
// formats match at one offset the earlier one wins.
func Default(workers int) []Unpacker {
	return []Unpacker{
		UImage{}, FIT{}, TRX{}, TPLink{}, UBI{}, UBIFS{}, SquashFS{Workers: workers},
		Ext{}, CramFS{}, JFFS2{}, CPIO{}, Tar{}, Zip{}, Ar{},
		Gzip{}, XZ{}, Bzip2{}, Zstd{}, LZ4{}, LZ4Legacy{}, LZOP{}, LZMA{},
	}
}

// maxFalseMatches is how many candidates of one format may turn out not
// to be that format, in one carved blob, before the format is skipped.
const maxFalseMatches = 1000

// minOpaque is the smallest unknown region reported as an opaque layer.
const minOpaque = 64

// Image unpacks the image at imagePath.
func Image(ctx context.Context, imagePath string, opts Options) (*Tree, error) {
	fi, err := os.Stat(imagePath)
	if err != nil {
		return nil, fmt.Errorf("opening image: %w", err)
	}
	o := opts.withDefaults()
	if fi.Size() > o.MaxTotalBytes {
		return nil, fmt.Errorf("image %s is %d bytes, over the %d byte budget", imagePath, fi.Size(), o.MaxTotalBytes)
	}
	data, err := os.ReadFile(imagePath)
	if err != nil {
		return nil, fmt.Errorf("reading image: %w", err)
	}
	return Data(ctx, data, opts)
}

// Data unpacks an image held in memory.
func Data(ctx context.Context, data []byte, opts Options) (*Tree, error) {
	o := opts.withDefaults()
	if o.ExtractDir != "" {
		if err := os.MkdirAll(o.ExtractDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating extract folder: %w", err)
		}
	}
	t := &Tree{opts: o, budget: &budget{maxBytes: o.MaxTotalBytes, maxFiles: o.MaxFiles}}
	root := t.addLayer(&Layer{Parent: -1, Size: int64(len(data)), Format: "image", Status: StatusUnpacked})
	// The whole image's entropy is computed while carving starts.
	entropy := make(chan float64, 1)
	go func() { entropy <- Entropy(data) }()
	e := &engine{t: t, o: o, ctx: ctx}
	e.carve(ctx, data, root, "", "", 1)
	root.Entropy = <-entropy
	return t, ctx.Err()
}

func (t *Tree) addLayer(l *Layer) *Layer {
	t.mu.Lock()
	defer t.mu.Unlock()
	l.ID = len(t.layers)
	t.layers = append(t.layers, l)
	return l
}

type engine struct {
	t   *Tree
	o   Options
	ctx context.Context
}

// recursable reports whether a file will be looked into by recurse.
func (e *engine) recursable(f *File) bool {
	if f.Blob {
		return true
	}
	hdr := f.data[:min(len(f.data), HeaderSize)]
	for _, u := range e.o.Unpackers {
		if startsWithMagic(hdr, u.Magics()) && u.Identify(hdr) {
			return true
		}
	}
	return false
}

// onFile visits a finished file right away unless recurse will look
// into it first.
func (e *engine) onFile(f *File) {
	if e.o.Visit == nil || f.visited || len(f.data) > 0 && e.recursable(f) {
		return
	}
	e.visit(f)
}

// visit hands f to Options.Visit once and releases its content unless
// Retain keeps it.
func (e *engine) visit(f *File) {
	if e.o.Visit == nil || f.visited {
		return
	}
	f.visited = true
	e.o.Visit(e.ctx, f)
	if !e.o.Retain(f) {
		f.data = nil
		f.dropped = true
	}
}

// magicCursor walks the occurrences of one magic through a blob, a
// chunk at a time, so the inside of a layer that gets unpacked is not
// searched for magics at all.
type magicCursor struct {
	u   Unpacker
	pri int
	m   Magic
	// next is the start of the next candidate, or -1 when none starts
	// before scanned (math.MaxInt64: none at all).
	next, scanned int64
}

// carveChunk is how far one search step looks ahead.
const carveChunk = 1 << 20

// seek looks for the first candidate starting at or after from, up to
// carveChunk bytes on.
func (c *magicCursor) seek(data []byte, from int64) {
	c.next, c.scanned = -1, math.MaxInt64
	start := from + int64(c.m.Offset)
	if start >= int64(len(data)) {
		return
	}
	end := min(int64(len(data)), start+carveChunk+int64(len(c.m.Bytes))-1)
	if j := bytes.Index(data[start:end], c.m.Bytes); j >= 0 {
		c.next = from + int64(j)
	} else if end < int64(len(data)) {
		c.scanned = from + carveChunk
	}
}

// before orders cursors: by the offset of their candidate (or how far they
// have searched), unsearched ground first, then by unpacker priority.
func (c *magicCursor) before(o *magicCursor) bool {
	ck, ok := c.next, o.next
	if ck < 0 {
		ck = c.scanned
	}
	if ok < 0 {
		ok = o.scanned
	}
	if ck != ok {
		return ck < ok
	}
	if (c.next < 0) != (o.next < 0) {
		return c.next < 0
	}
	return c.pri < o.pri
}

// nextCandidate returns the cursor holding the next candidate in order of
// offset then priority, or nil when there are no more.
func nextCandidate(data []byte, cursors []*magicCursor) *magicCursor {
	for {
		var c *magicCursor
		for _, k := range cursors {
			if (k.next >= 0 || k.scanned < math.MaxInt64) && (c == nil || k.before(c)) {
				c = k
			}
		}
		if c == nil || c.next >= 0 {
			return c
		}
		c.seek(data, c.scanned)
	}
}

// carve finds every known format at any offset of data (a blob of layer
// parent found at source) and unpacks it; the rest becomes opaque layers.
func (e *engine) carve(ctx context.Context, data []byte, parent *Layer, source, prefix string, depth int) {
	var cursors []*magicCursor
	for pri, u := range e.o.Unpackers {
		for _, m := range u.Magics() {
			c := &magicCursor{u: u, pri: pri, m: m}
			c.seek(data, 0)
			cursors = append(cursors, c)
		}
	}
	var pos int64
	size := int64(len(data))
	falseMatches := map[string]int{}
	for {
		if ctx.Err() != nil {
			return
		}
		c := nextCandidate(data, cursors)
		if c == nil {
			break
		}
		off := c.next
		c.seek(data, off+1)
		if off < pos || falseMatches[c.u.Format()] >= maxFalseMatches {
			continue
		}
		hdr := data[off:min(size, off+HeaderSize)]
		if !c.u.Identify(hdr) {
			continue
		}
		l, used := e.unpack(ctx, data[off:], c.u, parent, source, prefix, off, depth)
		if l == nil {
			// A hostile image can hold millions of plausible headers; stop
			// trying a format after too many false matches in one blob.
			if falseMatches[c.u.Format()]++; falseMatches[c.u.Format()] == maxFalseMatches {
				if parent.Info == nil {
					parent.Info = map[string]string{}
				}
				parent.Info["carving_stopped_"+c.u.Format()] = fmt.Sprintf("%d false matches", maxFalseMatches)
			}
			continue
		}
		if off > pos {
			e.opaque(data[pos:off], parent, source, pos, depth)
		}
		if used <= 0 {
			used = 1
		}
		pos = off + used
		for _, k := range cursors {
			if k.next >= 0 && k.next < pos || k.next < 0 && k.scanned < pos {
				k.seek(data, pos)
			}
		}
	}
	if pos < size {
		e.opaque(data[pos:], parent, source, pos, depth)
	}
}

// unpack runs one unpacker on data (which starts at the format) and
// recurses into what it produced. It returns nil for a false match.
func (e *engine) unpack(ctx context.Context, data []byte, u Unpacker, parent *Layer, source, prefix string, off int64, depth int) (*Layer, int64) {
	l := &Layer{Parent: parent.ID, Source: source, Offset: off, Format: u.Format(), Depth: depth}
	if depth > e.o.MaxDepth {
		l.Size = int64(len(data))
		l.Status = StatusFailed
		l.Error = fmt.Sprintf("%v: nesting deeper than %d layers", ErrBudget, e.o.MaxDepth)
		e.t.addLayer(l)
		return l, 0
	}
	// The layer gets its ID only once it is known not to be a false match,
	// so the sink's extract folder is named after a provisional ID.
	e.t.mu.Lock()
	l.ID = len(e.t.layers)
	e.t.mu.Unlock()
	sink := newSink(e.t, l, prefix, int64(len(data)))
	sink.onFile = e.onFile
	used, err := u.Unpack(ctx, sliceReader(data), int64(len(data)), sink)
	if errors.Is(err, ErrNotFormat) && l.Files == 0 {
		return nil, 0
	}
	if used <= 0 || used > int64(len(data)) {
		used = int64(len(data))
	}
	l.Size = used
	l.Entropy = Entropy(data[:used])
	l.Status = StatusUnpacked
	if err != nil {
		l.Status = StatusFailed
		l.Error = fmt.Sprintf("%s at offset 0x%x: %v", u.Format(), off, err)
	}
	if derr := sink.finish(); derr != nil {
		if l.Info == nil {
			l.Info = map[string]string{}
		}
		l.Info["extract_error"] = derr.Error()
	}
	e.t.mu.Lock()
	l.ID = len(e.t.layers)
	e.t.layers = append(e.t.layers, l)
	e.t.mu.Unlock()
	e.recurse(ctx, l, depth)
	return l, used
}

// recurse looks into what layer l produced: blobs are carved, other
// regular files are identified at their start only.
func (e *engine) recurse(ctx context.Context, l *Layer, depth int) {
	for _, f := range l.fs.Files() {
		if ctx.Err() != nil {
			return
		}
		if !f.Mode.IsRegular() || f.visited {
			continue
		}
		if len(f.data) == 0 {
			e.visit(f)
			continue
		}
		if f.Blob {
			// A stream keeps its parent's display prefix: the files of a
			// gzip-compressed cpio are shown as "/etc/...", not "/data!/etc/...".
			before := len(e.t.Layers())
			e.carve(ctx, f.data, l, f.Path(), l.fs.prefix, depth+1)
			f.Unpacked = e.producedFiles(before)
			if !f.Unpacked {
				e.visit(f)
			}
			continue
		}
		hdr := f.data[:min(len(f.data), HeaderSize)]
		for _, u := range e.o.Unpackers {
			if !startsWithMagic(hdr, u.Magics()) || !u.Identify(hdr) {
				continue
			}
			child, _ := e.unpack(ctx, f.data, u, l, f.Path(), f.Path()+"!", 0, depth+1)
			if child != nil {
				f.Unpacked = child.Status == StatusUnpacked
				break
			}
		}
		if !f.Unpacked {
			e.visit(f)
		}
	}
}

// producedFiles reports whether any layer added since index before holds files.
func (e *engine) producedFiles(before int) bool {
	ls := e.t.Layers()
	for _, l := range ls[before:] {
		if l.Status == StatusUnpacked && l.Files > 0 {
			return true
		}
	}
	return false
}

func startsWithMagic(hdr []byte, ms []Magic) bool {
	for _, m := range ms {
		if len(hdr) >= m.Offset+len(m.Bytes) && bytes.Equal(hdr[m.Offset:m.Offset+len(m.Bytes)], m.Bytes) {
			return true
		}
	}
	return false
}

// opaque reports a region no format matched, unless it is only padding.
func (e *engine) opaque(data []byte, parent *Layer, source string, off int64, depth int) {
	// Padding around a region is not part of it.
	for len(data) > 0 && (data[0] == 0 || data[0] == 0xff) {
		data = data[1:]
		off++
	}
	for len(data) > 0 && (data[len(data)-1] == 0 || data[len(data)-1] == 0xff) {
		data = data[:len(data)-1]
	}
	if len(data) < minOpaque {
		return
	}
	l := &Layer{Parent: parent.ID, Source: source, Offset: off, Size: int64(len(data)), Format: "unknown",
		Entropy: Entropy(data), Status: StatusOpaque, Depth: depth}
	switch {
	case l.Entropy > 7.9:
		l.Info = map[string]string{"hint": "high entropy: encrypted or compressed with an unknown method"}
	case l.Entropy < 1:
		l.Info = map[string]string{"hint": "low entropy: mostly padding or sparse data"}
	}
	e.t.addLayer(l)
}
