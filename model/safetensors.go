package model

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// A hostTensor is a tensor read from or written to a safetensors file, converted to float32
// (weights) or int32 (token ids in reference files).
type hostTensor struct {
	Shape []int
	F32   []float32 // float dtypes (F32, BF16, F16) are converted to float32
	I32   []int32   // integer dtypes (I64, I32) are converted to int32
	DType string    // the file's dtype when read; when written, F32 (default), BF16 or F16
}

func (t hostTensor) size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

type stEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// readSafetensors reads every tensor of a .safetensors file.
func readSafetensors(path string) (map[string]hostTensor, error) {
	ts, _, err := readSafetensorsMeta(path)
	return ts, err
}

// readSafetensorsMeta reads every tensor of a .safetensors file and its __metadata__.
func readSafetensorsMeta(path string) (map[string]hostTensor, map[string]string, error) {
	f, err := openSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out := make(map[string]hostTensor, len(f.entries))
	for name, e := range f.entries {
		t := hostTensor{Shape: e.Shape, DType: e.DType}
		switch e.DType {
		case "F32", "BF16", "F16":
			t.F32 = make([]float32, t.size())
			err = f.readFloats(name, t.F32)
		default:
			t.I32 = make([]int32, t.size())
			err = f.readInts(name, t.I32)
		}
		if err != nil {
			return nil, nil, err
		}
		out[name] = t
	}
	return out, f.meta, nil
}

// stFile is an open .safetensors file whose header has been read and checked; tensors are read one
// at a time (streamed in chunks), so loading a checkpoint needs no second copy of it in memory.
type stFile struct {
	path    string
	f       *os.File
	body    int64 // offset of the data section
	entries map[string]stEntry
	meta    map[string]string
}

var dtypeWidth = map[string]int{"F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4}

func openSafetensors(path string) (*stFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := parseHeader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return st, nil
}

func parseHeader(path string, f *os.File) (*stFile, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := info.Size()
	var n8 [8]byte
	if size < 8 {
		return nil, fmt.Errorf("%s: not a safetensors file (too short)", path)
	}
	if _, err := f.ReadAt(n8[:], 0); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(n8[:])
	if n > uint64(size-8) {
		return nil, fmt.Errorf("%s: not a safetensors file (header length %d past end of file)", path, n)
	}
	hb := make([]byte, n)
	if _, err := f.ReadAt(hb, 8); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, fmt.Errorf("%s: malformed safetensors header: %v", path, err)
	}
	st := &stFile{path: path, f: f, body: 8 + int64(n), entries: make(map[string]stEntry, len(header))}
	bodyLen := size - st.body
	for name, raw := range header {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw, &st.meta); err != nil {
				return nil, fmt.Errorf("%s: malformed __metadata__: %v", path, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: malformed header entry: %v", path, name, err)
		}
		count := hostTensor{Shape: e.Shape}.size()
		if e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > bodyLen {
			return nil, fmt.Errorf("%s: tensor %q: data offsets %v outside the file", path, name, e.Offsets)
		}
		width := dtypeWidth[e.DType]
		if width == 0 {
			return nil, fmt.Errorf("%s: tensor %q has unsupported dtype %s (supported: F32, BF16, F16, I64, I32)", path, name, e.DType)
		}
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%s: tensor %q has a negative dimension in shape %v", path, name, e.Shape)
			}
		}
		if e.Offsets[1]-e.Offsets[0] != int64(count)*int64(width) {
			return nil, fmt.Errorf("%s: tensor %q: %d bytes for shape %v of %s", path, name, e.Offsets[1]-e.Offsets[0], e.Shape, e.DType)
		}
		st.entries[name] = e
	}
	return st, nil
}

func (st *stFile) Close() error { return st.f.Close() }

// chunkBytes bounds the read buffer of streamed loading.
const chunkBytes = 4 << 20

// each calls fn on consecutive chunks of a tensor's bytes, with the index of the chunk's first
// element; chunks hold whole elements.
func (st *stFile) each(name string, fn func(first int, b []byte) error) error {
	e := st.entries[name]
	width := int64(dtypeWidth[e.DType])
	buf := make([]byte, min(chunkBytes/width*width, e.Offsets[1]-e.Offsets[0]))
	for off := e.Offsets[0]; off < e.Offsets[1]; {
		b := buf[:min(int64(len(buf)), e.Offsets[1]-off)]
		if _, err := st.f.ReadAt(b, st.body+off); err != nil {
			return fmt.Errorf("%s: tensor %q: %w", st.path, name, err)
		}
		if err := fn(int((off-e.Offsets[0])/width), b); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

// readFloats converts a float tensor (F32, BF16, F16) into dst, which has its element count.
func (st *stFile) readFloats(name string, dst []float32) error {
	e := st.entries[name]
	switch e.DType {
	case "F32":
		return st.each(name, func(first int, b []byte) error {
			for i := 0; i < len(b)/4; i++ {
				dst[first+i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
			return nil
		})
	case "BF16":
		return st.each(name, func(first int, b []byte) error {
			for i := 0; i < len(b)/2; i++ {
				dst[first+i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
			}
			return nil
		})
	case "F16":
		return st.each(name, func(first int, b []byte) error {
			for i := 0; i < len(b)/2; i++ {
				dst[first+i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return nil
		})
	}
	return fmt.Errorf("%s: tensor %q is %s, not a float tensor", st.path, name, e.DType)
}

// readInts converts an integer tensor (I64, I32) into dst.
func (st *stFile) readInts(name string, dst []int32) error {
	e := st.entries[name]
	switch e.DType {
	case "I64":
		return st.each(name, func(first int, b []byte) error {
			for i := 0; i < len(b)/8; i++ {
				v := int64(binary.LittleEndian.Uint64(b[8*i:]))
				if v < math.MinInt32 || v > math.MaxInt32 {
					return fmt.Errorf("%s: tensor %q: value %d does not fit int32", st.path, name, v)
				}
				dst[first+i] = int32(v)
			}
			return nil
		})
	case "I32":
		return st.each(name, func(first int, b []byte) error {
			for i := 0; i < len(b)/4; i++ {
				dst[first+i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
			}
			return nil
		})
	}
	return fmt.Errorf("%s: tensor %q is %s, not an integer tensor", st.path, name, e.DType)
}

// halfToFloat converts an IEEE 754 binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		return float32(math.Copysign(float64(mant)*math.Pow(2, -24), float64(int32(sign)|1)))
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// writeSafetensors writes float tensors (sorted by name, 8-byte aligned header; each in its DType,
// float32 by default) to path atomically: a temporary file in the same folder renamed into place.
func writeSafetensors(path string, tensors map[string]hostTensor, metadata map[string]string) error {
	items := make([]stItem, 0, len(tensors))
	for n, t := range tensors {
		if t.F32 == nil || len(t.F32) != t.size() {
			return fmt.Errorf("write %s: tensor %q is not float32 of shape %v", path, n, t.Shape)
		}
		items = append(items, stItem{name: n, shape: t.Shape, dtype: t.DType, with: func(fn func([]float32) error) error { return fn(t.F32) }})
	}
	return writeSafetensorsItems(path, items, metadata)
}

// stItem is one tensor to write: with calls fn with the tensor's float32 values (letting the
// caller lend memory it already holds, such as a weight buffer, instead of copying it).
type stItem struct {
	name  string
	shape []int
	dtype string // F32 ("" too), BF16 or F16
	with  func(fn func([]float32) error) error
}

// writeSafetensorsItems streams tensors to path (sorted by name) through a small buffer, converting
// each to its dtype, and renames the finished file into place.
func writeSafetensorsItems(path string, items []stItem, metadata map[string]string) error {
	items = slices.Clone(items)
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	header := map[string]any{}
	if metadata != nil {
		header["__metadata__"] = metadata
	}
	var off int64
	for i, it := range items {
		if it.dtype == "" {
			items[i].dtype = "F32"
		}
		width := map[string]int64{"F32": 4, "BF16": 2, "F16": 2}[items[i].dtype]
		if width == 0 {
			return fmt.Errorf("write %s: tensor %q: cannot write dtype %s", path, it.name, it.dtype)
		}
		shape := it.shape
		if shape == nil {
			shape = []int{}
		}
		size := width * int64(prod(shape))
		header[it.name] = stEntry{DType: items[i].dtype, Shape: shape, Offsets: [2]int64{off, off + size}}
		off += size
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	return writeAtomic(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		var n8 [8]byte
		binary.LittleEndian.PutUint64(n8[:], uint64(len(hj)))
		bw.Write(n8[:])
		bw.Write(hj)
		var b4 [4]byte
		for _, it := range items {
			err := it.with(func(xs []float32) error {
				if len(xs) != prod(it.shape) {
					return fmt.Errorf("tensor %q has %d values for shape %v", it.name, len(xs), it.shape)
				}
				for _, v := range xs {
					switch it.dtype {
					case "F32":
						binary.LittleEndian.PutUint32(b4[:], math.Float32bits(v))
						bw.Write(b4[:4])
					case "BF16":
						binary.LittleEndian.PutUint16(b4[:], floatToBF16(v))
						bw.Write(b4[:2])
					case "F16":
						binary.LittleEndian.PutUint16(b4[:], floatToHalf(v))
						bw.Write(b4[:2])
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

// floatToBF16 rounds to the nearest bfloat16, ties to even (as torch's .to(torch.bfloat16)); NaN
// stays a (quiet) NaN.
func floatToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// floatToHalf rounds to the nearest IEEE binary16, ties to even; out of range becomes ±Inf.
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00
	case exp-127 >= -14: // normal
		e := uint32(exp - 127 + 15)
		v := e<<10 | mant>>13
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && v&1 == 1) {
			v++ // may carry into the exponent, up to Inf: correct
		}
		return sign | uint16(v)
	case exp-127 >= -25: // subnormal
		m := mant | 0x800000
		shift := uint32(-14-(exp-127)) + 13
		v := m >> shift
		rest := m & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rest > halfway || (rest == halfway && v&1 == 1) {
			v++
		}
		return sign | uint16(v)
	}
	return sign
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and renames it over path,
// so a crash leaves either the old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic is writeFileAtomic with the content written by fn.
func writeAtomic(path string, fn func(w io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Chmod(0o644) // CreateTemp makes 0600; model files are shared like any download
	werr := fn(f)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// checkpointFiles opens model.safetensors, or every shard listed in model.safetensors.index.json
// (headers only), and maps each tensor name to its file.
func checkpointFiles(dir string) (byName map[string]*stFile, closeAll func(), err error) {
	var files []*stFile
	closeAll = func() {
		for _, f := range files {
			f.Close()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	byName = map[string]*stFile{}
	add := func(path string) error {
		f, err := openSafetensors(path)
		if err != nil {
			return err
		}
		files = append(files, f)
		for n := range f.entries {
			byName[n] = f
		}
		return nil
	}
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return byName, closeAll, add(single)
	}
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, nil, fmt.Errorf("no model.safetensors or model.safetensors.index.json in %s", dir)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, nil, fmt.Errorf("%s: malformed index: %v", indexPath, err)
	}
	shards := map[string]bool{}
	for _, f := range index.WeightMap {
		shards[f] = true
	}
	names := make([]string, 0, len(shards))
	for f := range shards {
		if filepath.Base(f) != f {
			return nil, nil, fmt.Errorf("%s: shard name %q must be a plain file name", indexPath, f)
		}
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if err := add(filepath.Join(dir, f)); err != nil {
			return nil, nil, err
		}
	}
	return byName, closeAll, nil
}
