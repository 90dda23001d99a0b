package tensor

// Safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the
// raw little-endian data, offsets relative to the end of the header. gotch has no reader, so tensors
// are read straight from the file into the memory of an empty libtorch tensor: one copy, no Go buffer
// the size of the file.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// maxHeaderBytes bounds the JSON header (real ones are well under a megabyte per thousand tensors).
const maxHeaderBytes = 100 << 20

type stEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// Safetensors is an open safetensors file with its validated header.
type Safetensors struct {
	path    string
	f       *os.File
	dataOff int64 // where the data region starts
	entries map[string]stEntry
}

var stDTypes = map[string]gotch.DType{
	"F32": gotch.Float, "BF16": gotch.BFloat16, "F16": gotch.Half, "F64": gotch.Double,
	"I64": gotch.Int64, "I32": gotch.Int, "U8": gotch.Uint8, "BOOL": gotch.Bool,
}

func stName(d gotch.DType) string {
	for name, dt := range stDTypes {
		if dt == d {
			return name
		}
	}
	return d.String()
}

// OpenSafetensors opens path and checks that every tensor's bytes lie inside the file and match
// its dtype and shape, so a truncated download is reported before anything is loaded.
func OpenSafetensors(path string) (*Safetensors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSafetensors, err)
	}
	st, err := readHeader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return st, nil
}

func readHeader(f *os.File, path string) (*Safetensors, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSafetensors, err)
	}
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("%w: %s: no header (file of %d bytes)", ErrSafetensors, path, info.Size())
	}
	if n > maxHeaderBytes || int64(n) > info.Size()-8 {
		return nil, fmt.Errorf("%w: %s: header length %d does not fit a file of %d bytes", ErrSafetensors, path, n, info.Size())
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, fmt.Errorf("%w: %s: header: %v", ErrSafetensors, path, err)
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("%w: %s: header is not JSON: %v", ErrSafetensors, path, err)
	}
	st := &Safetensors{path: path, f: f, dataOff: 8 + int64(n), entries: map[string]stEntry{}}
	dataLen := info.Size() - st.dataOff
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("%w: %s: tensor %s: %v", ErrSafetensors, path, name, err)
		}
		if err := e.check(dataLen); err != nil {
			return nil, fmt.Errorf("%w: %s: tensor %s: %v", ErrSafetensors, path, name, err)
		}
		st.entries[name] = e
	}
	return st, nil
}

func (e stEntry) check(dataLen int64) error {
	dt, ok := stDTypes[e.DType]
	if !ok {
		return fmt.Errorf("dtype %q is not supported", e.DType)
	}
	if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] {
		return fmt.Errorf("bad data_offsets %v", e.Offsets)
	}
	for _, d := range e.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", e.Shape)
		}
	}
	if want := Numel(e.Shape) * int64(dt.Size()); e.Offsets[1]-e.Offsets[0] != want {
		return fmt.Errorf("%d bytes for %s%v, want %d", e.Offsets[1]-e.Offsets[0], e.DType, e.Shape, want)
	}
	if e.Offsets[1] > dataLen {
		return fmt.Errorf("data ends at byte %d but the file has %d data bytes (truncated?)", e.Offsets[1], dataLen)
	}
	return nil
}

// Close closes the file.
func (st *Safetensors) Close() error { return st.f.Close() }

// Path is the file's path, for messages.
func (st *Safetensors) Path() string { return st.path }

// Names lists the file's tensors, sorted.
func (st *Safetensors) Names() []string {
	names := make([]string, 0, len(st.entries))
	for name := range st.entries {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Shape is the stored shape of tensor name; ok is false when the file has no such tensor.
func (st *Safetensors) Shape(name string) (shape []int64, ok bool) {
	e, ok := st.entries[name]
	return e.Shape, ok
}

// Load reads one tensor into a new CPU tensor of its stored dtype, owned by the caller.
func (st *Safetensors) Load(name string) (*ts.Tensor, error) {
	e, ok := st.entries[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s: no tensor %s", ErrSafetensors, st.path, name)
	}
	x, err := ts.Empty(e.Shape, stDTypes[e.DType], gotch.CPU)
	if err != nil {
		return nil, fmt.Errorf("%w: allocating %s%v: %v", ErrTorch, name, e.Shape, err)
	}
	n := e.Offsets[1] - e.Offsets[0]
	if n == 0 {
		return x, nil
	}
	ptr, err := x.DataPtr()
	if err != nil {
		x.MustDrop()
		return nil, fmt.Errorf("%w: %v", ErrTorch, err)
	}
	dst := unsafe.Slice((*byte)(ptr), n)
	if _, err := st.f.ReadAt(dst, st.dataOff+e.Offsets[0]); err != nil {
		x.MustDrop()
		return nil, fmt.Errorf("%w: %s: reading tensor %s: %v", ErrSafetensors, st.path, name, err)
	}
	return x, nil
}

// WriteSafetensors writes the named tensors (converted to dtype, except integer tensors) to path
// atomically. Names are sorted so the same weights give the same bytes.
func WriteSafetensors(path string, tensors map[string]*ts.Tensor, dtype gotch.DType, metadata map[string]string) (err error) {
	defer Catch(&err)
	var tp Scope
	defer tp.Free()
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	hdr := map[string]any{}
	if len(metadata) > 0 {
		hdr["__metadata__"] = metadata
	}
	cpu := make([]*ts.Tensor, len(names))
	var off int64
	for i, name := range names {
		x := tensors[name]
		if isFloat(x.DType()) && x.DType() != dtype {
			x = tp.T(x.Totype(dtype, false))
		}
		x = tp.T(tp.T(x.To(gotch.CPU, false)).Contiguous(false))
		cpu[i] = x
		shape, err := x.Size()
		Check(err)
		n := Numel(shape) * int64(x.DType().Size())
		hdr[name] = stEntry{DType: stName(x.DType()), Shape: shape, Offsets: []int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 { // the format pads the header with spaces to align the data
		hb = append(hb, ' ')
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(hb))); err != nil {
			return err
		}
		if _, err := w.Write(hb); err != nil {
			return err
		}
		for _, x := range cpu {
			if err := writeTensorBytes(w, x); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeTensorBytes(w io.Writer, x *ts.Tensor) error {
	n := int64(x.Numel()) * int64(x.DType().Size())
	if n == 0 {
		return nil
	}
	ptr, err := x.DataPtr()
	if err != nil {
		return err
	}
	_, err = w.Write(unsafe.Slice((*byte)(ptr), n))
	return err
}

// WriteFileAtomic streams fill's output to a temporary file beside path, syncs it, then renames it.
func WriteFileAtomic(path string, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := fill(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // CreateTemp makes 0600; checkpoints are shared
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func isFloat(d gotch.DType) bool {
	return d == gotch.Float || d == gotch.Double || d == gotch.Half || d == gotch.BFloat16
}
