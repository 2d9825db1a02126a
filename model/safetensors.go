package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// A hostTensor is a tensor read from or written to a safetensors file, converted to float32
// (weights) or int32 (token ids in reference files).
type hostTensor struct {
	Shape []int
	F32   []float32 // float dtypes (F32, BF16, F16) are converted to float32
	I32   []int32   // integer dtypes (I64, I32) are converted to int32
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
	ts, meta, err := parseSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	return ts, meta, nil
}

func parseSafetensors(path string) (out map[string]hostTensor, meta map[string]string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("%s: not a safetensors file (too short)", path)
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("%s: not a safetensors file (header length %d past end of file)", path, n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		return nil, nil, fmt.Errorf("%s: malformed safetensors header: %v", path, err)
	}
	body := data[8+n:]
	out = make(map[string]hostTensor, len(header))
	for name, raw := range header {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("%s: malformed __metadata__: %v", path, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: malformed header entry: %v", path, name, err)
		}
		t := hostTensor{Shape: e.Shape}
		count := t.size()
		if e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > int64(len(body)) {
			return nil, nil, fmt.Errorf("%s: tensor %q: data offsets %v outside the file", path, name, e.Offsets)
		}
		b := body[e.Offsets[0]:e.Offsets[1]]
		width := map[string]int{"F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4}[e.DType]
		if width == 0 {
			return nil, nil, fmt.Errorf("%s: tensor %q has unsupported dtype %s (supported: F32, BF16, F16, I64, I32)", path, name, e.DType)
		}
		if len(b) != count*width {
			return nil, nil, fmt.Errorf("%s: tensor %q: %d bytes for shape %v of %s", path, name, len(b), e.Shape, e.DType)
		}
		switch e.DType {
		case "F32":
			t.F32 = make([]float32, count)
			for i := range t.F32 {
				t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		case "BF16":
			t.F32 = make([]float32, count)
			for i := range t.F32 {
				t.F32[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
			}
		case "F16":
			t.F32 = make([]float32, count)
			for i := range t.F32 {
				t.F32[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
			}
		case "I64":
			t.I32 = make([]int32, count)
			for i := range t.I32 {
				v := int64(binary.LittleEndian.Uint64(b[8*i:]))
				if v < math.MinInt32 || v > math.MaxInt32 {
					return nil, nil, fmt.Errorf("%s: tensor %q: value %d does not fit int32", path, name, v)
				}
				t.I32[i] = int32(v)
			}
		case "I32":
			t.I32 = make([]int32, count)
			for i := range t.I32 {
				t.I32[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
		out[name] = t
	}
	return out, meta, nil
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

// writeSafetensors writes float32 tensors (sorted by name, 8-byte aligned header) to path
// atomically: a temporary file in the same folder renamed into place.
func writeSafetensors(path string, tensors map[string]hostTensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	if metadata != nil {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, n := range names {
		t := tensors[n]
		if t.F32 == nil || len(t.F32) != t.size() {
			return fmt.Errorf("write %s: tensor %q is not float32 of shape %v", path, n, t.Shape)
		}
		size := int64(4 * len(t.F32))
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[n] = stEntry{DType: "F32", Shape: shape, Offsets: [2]int64{off, off + size}}
		off += size
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	var buf bytes.Buffer
	buf.Grow(8 + len(hj) + int(off))
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(len(hj)))
	buf.Write(n8[:])
	buf.Write(hj)
	var b4 [4]byte
	for _, n := range names {
		for _, v := range tensors[n].F32 {
			binary.LittleEndian.PutUint32(b4[:], math.Float32bits(v))
			buf.Write(b4[:])
		}
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and renames it over path,
// so a crash leaves either the old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Chmod(0o644) // CreateTemp makes 0600; model files are shared like any download
	_, werr := io.Copy(f, bytes.NewReader(data))
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

// readCheckpointTensors reads model.safetensors, or every shard listed in
// model.safetensors.index.json.
func readCheckpointTensors(dir string) (map[string]hostTensor, error) {
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return readSafetensors(single)
	}
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("no model.safetensors or model.safetensors.index.json in %s", dir)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("%s: malformed index: %v", indexPath, err)
	}
	files := map[string]bool{}
	for _, f := range index.WeightMap {
		files[f] = true
	}
	all := map[string]hostTensor{}
	for f := range files {
		if filepath.Base(f) != f {
			return nil, fmt.Errorf("%s: shard name %q must be a plain file name", indexPath, f)
		}
		ts, err := readSafetensors(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		for n, t := range ts {
			all[n] = t
		}
	}
	return all, nil
}
