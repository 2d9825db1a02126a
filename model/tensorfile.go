package model

import "fmt"

// HostTensor is one float tensor of a checkpoint as a plain Go slice (row-major), for tools that
// work on weights as arrays without building a model: task arithmetic, merges, inspection.
type HostTensor struct {
	Shape []int
	Data  []float32
}

// ReadTensorFile reads every tensor of a .safetensors file (F32, BF16 and F16 become float32) and
// its __metadata__. Integer tensors are refused: weight tools have no use for them.
func ReadTensorFile(path string) (map[string]HostTensor, map[string]string, error) {
	ts, meta, err := readSafetensorsMeta(path)
	if err != nil {
		return nil, nil, err
	}
	out, err := toHost(path, ts)
	return out, meta, err
}

// ReadCheckpointTensors reads the weights of a Hugging Face folder: model.safetensors or the
// shards listed in model.safetensors.index.json.
func ReadCheckpointTensors(dir string) (map[string]HostTensor, error) {
	files, closeAll, err := checkpointFiles(dir)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	out := make(map[string]HostTensor, len(files))
	for name, f := range files {
		e := f.entries[name]
		t := hostTensor{Shape: e.Shape}
		t.F32 = make([]float32, t.size())
		if err := f.readFloats(name, t.F32); err != nil {
			return nil, err
		}
		out[name] = HostTensor{Shape: e.Shape, Data: t.F32}
	}
	return out, nil
}

// WriteTensorFile writes float32 tensors and metadata to path atomically (sorted names, the same
// layout Save uses for model.safetensors).
func WriteTensorFile(path string, ts map[string]HostTensor, meta map[string]string) error {
	hts := make(map[string]hostTensor, len(ts))
	for n, t := range ts {
		hts[n] = hostTensor{Shape: t.Shape, F32: t.Data}
	}
	return writeSafetensors(path, hts, meta)
}

func toHost(where string, ts map[string]hostTensor) (map[string]HostTensor, error) {
	out := make(map[string]HostTensor, len(ts))
	for n, t := range ts {
		if t.F32 == nil {
			return nil, fmt.Errorf("%s: tensor %q is an integer tensor, not weights", where, n)
		}
		out[n] = HostTensor{Shape: t.Shape, Data: t.F32}
	}
	return out, nil
}
