// Package vector implements reasoning vectors (task arithmetic, Zbeeb et al. 2025): the weight
// difference between an RL-tuned checkpoint and the SFT checkpoint it started from,
// v = θ_RL − θ_SFT, added with a scale to another model of the same architecture,
// θ_new = θ_target + s·v. Subtracting (s < 0) is how the paper shows the vector carries the skill.
//
// Arithmetic is done per element in float64 and rounded to float32 once, so the result is exactly
// the correctly rounded value of the formula (tests compare bit patterns).
package vector

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/polo-rl/polo/model"
)

// Arch is what two checkpoints must share for their weights to be added: everything that fixes a
// tensor's meaning and shape, except the vocabulary size (rows beyond the common vocabulary are
// left alone, as the spec says).
type Arch struct {
	ModelType        string `json:"model_type"`
	HiddenSize       int    `json:"hidden_size"`
	NumLayers        int    `json:"num_hidden_layers"`
	NumHeads         int    `json:"num_attention_heads"`
	NumKVHeads       int    `json:"num_key_value_heads"`
	HeadDim          int    `json:"head_dim"`
	IntermediateSize int    `json:"intermediate_size"`
	VocabSize        int    `json:"vocab_size"`
}

func archOf(c model.Config) Arch {
	return Arch{c.ModelType, c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize, c.VocabSize}
}

// diff names the first field (other than the vocabulary) in which a and b differ, "" if none.
func (a Arch) diff(b Arch) string {
	type f struct {
		name string
		x, y any
	}
	for _, d := range []f{
		{"model_type", a.ModelType, b.ModelType}, {"hidden_size", a.HiddenSize, b.HiddenSize},
		{"num_hidden_layers", a.NumLayers, b.NumLayers}, {"num_attention_heads", a.NumHeads, b.NumHeads},
		{"num_key_value_heads", a.NumKVHeads, b.NumKVHeads}, {"head_dim", a.HeadDim, b.HeadDim},
		{"intermediate_size", a.IntermediateSize, b.IntermediateSize},
	} {
		if d.x != d.y {
			return fmt.Sprintf("%s %v vs %v", d.name, d.x, d.y)
		}
	}
	return ""
}

// A Vector is a named set of weight differences plus the architecture they came from.
type Vector struct {
	Arch    Arch
	Tensors map[string]model.HostTensor
}

// Options relax the strict checks.
type Options struct {
	// Lenient skips tensors present in only one checkpoint (with a warning) instead of failing.
	Lenient bool
	// Warn receives one line per skipped tensor or partially applied vocabulary matrix (may be nil).
	Warn io.Writer
}

func (o Options) warnf(format string, a ...any) {
	if o.Warn != nil {
		fmt.Fprintf(o.Warn, format+"\n", a...)
	}
}

// load reads a checkpoint's config and weights.
func load(dir string) (model.Config, map[string]model.HostTensor, error) {
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return cfg, nil, err
	}
	ts, err := model.ReadCheckpointTensors(dir)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, ts, nil
}

// Extract computes v = tuned − base from two checkpoint folders. They must have the same
// architecture, vocabulary and tensor shapes: a vector between unrelated models means nothing.
func Extract(baseDir, tunedDir string, opts Options) (*Vector, error) {
	bc, base, err := load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	tc, tuned, err := load(tunedDir)
	if err != nil {
		return nil, fmt.Errorf("tuned: %w", err)
	}
	if d := archOf(bc).diff(archOf(tc)); d != "" {
		return nil, fmt.Errorf("base %s and tuned %s have different architectures (%s)", baseDir, tunedDir, d)
	}
	if bc.VocabSize != tc.VocabSize {
		return nil, fmt.Errorf("base %s and tuned %s have different vocab_size (%d vs %d); a vector needs two checkpoints of one model", baseDir, tunedDir, bc.VocabSize, tc.VocabSize)
	}
	v := &Vector{Arch: archOf(bc), Tensors: map[string]model.HostTensor{}}
	for _, name := range unionNames(base, tuned) {
		b, okB := base[name]
		t, okT := tuned[name]
		if !okB || !okT {
			where := "base " + baseDir
			if okB {
				where = "tuned " + tunedDir
			}
			if !opts.Lenient {
				return nil, fmt.Errorf("tensor %q is missing from %s (use --lenient to skip it)", name, where)
			}
			opts.warnf("skipping tensor %q: missing from %s", name, where)
			continue
		}
		if !slices.Equal(b.Shape, t.Shape) {
			return nil, fmt.Errorf("tensor %q has shape %v in base but %v in tuned", name, b.Shape, t.Shape)
		}
		d := make([]float32, len(b.Data))
		for i := range d {
			d[i] = float32(float64(t.Data[i]) - float64(b.Data[i]))
		}
		if err := finite(name, d); err != nil {
			return nil, err
		}
		v.Tensors[name] = model.HostTensor{Shape: append([]int(nil), b.Shape...), Data: d}
	}
	if len(v.Tensors) == 0 {
		return nil, fmt.Errorf("base %s and tuned %s share no tensor", baseDir, tunedDir)
	}
	return v, nil
}

// Norm returns the L2 norm of the whole vector (float64), for reports.
func (v *Vector) Norm() float64 {
	var s float64
	for _, t := range v.Tensors {
		for _, x := range t.Data {
			s += float64(x) * float64(x)
		}
	}
	return math.Sqrt(s)
}

const metaKey = "polo_reasoning_vector"

// Save writes the vector as a safetensors file whose metadata records the architecture, so that
// Apply can refuse an incompatible model before touching any weight.
func (v *Vector) Save(path string, provenance map[string]string) error {
	arch, err := json.Marshal(v.Arch)
	if err != nil {
		return err
	}
	meta := map[string]string{metaKey: "1", "arch": string(arch), "format": "pt"}
	for k, x := range provenance {
		meta[k] = x
	}
	return model.WriteTensorFile(path, v.Tensors, meta)
}

// Load reads a vector written by Save.
func Load(path string) (*Vector, error) {
	ts, meta, err := model.ReadTensorFile(path)
	if err != nil {
		return nil, err
	}
	if meta[metaKey] != "1" {
		return nil, fmt.Errorf("%s is not a reasoning vector (no %s metadata; make one with polo vector extract)", path, metaKey)
	}
	v := &Vector{Tensors: ts}
	if err := json.Unmarshal([]byte(meta["arch"]), &v.Arch); err != nil {
		return nil, fmt.Errorf("%s: malformed arch metadata: %v", path, err)
	}
	return v, nil
}

// Report says what Apply changed.
type Report struct {
	Tensors      int // tensors updated
	Elements     int // weights updated
	PartialVocab int // embedding/LM-head matrices whose rows beyond the common vocabulary were left alone
	Skipped      int // tensors skipped under Options.Lenient
}

// ApplyTensors returns θ + scale·v for every tensor of v, leaving other tensors of θ as they are
// (shared slices are not modified: updated tensors are fresh copies). Only a vocabulary matrix
// (first dimension = vocab_size of both sides) may differ in its first dimension; the common rows
// are updated.
func ApplyTensors(theta map[string]model.HostTensor, v *Vector, scale float64, opts Options) (map[string]model.HostTensor, Report, error) {
	var rep Report
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, rep, fmt.Errorf("scale %v is not a finite number", scale)
	}
	out := make(map[string]model.HostTensor, len(theta))
	for n, t := range theta {
		out[n] = t
	}
	for _, name := range sortedNames(v.Tensors) {
		d := v.Tensors[name]
		t, ok := theta[name]
		if !ok {
			if !opts.Lenient {
				return nil, rep, fmt.Errorf("the model has no tensor %q that the vector changes (use --lenient to skip it)", name)
			}
			opts.warnf("skipping tensor %q: not in the model", name)
			rep.Skipped++
			continue
		}
		if len(d.Data) != prod(d.Shape) || len(t.Data) != prod(t.Shape) {
			return nil, rep, fmt.Errorf("tensor %q: data length does not match its shape", name)
		}
		rows := 0 // leading rows to update when only the vocabulary differs
		switch {
		case slices.Equal(t.Shape, d.Shape):
			rows = -1
		case len(t.Shape) == 2 && len(d.Shape) == 2 && t.Shape[1] == d.Shape[1] && isVocabMatrix(name):
			rows = min(t.Shape[0], d.Shape[0])
			rep.PartialVocab++
			opts.warnf("tensor %q: vocabulary %d vs %d rows; updating the first %d, leaving the rest", name, t.Shape[0], d.Shape[0], rows)
		default:
			return nil, rep, fmt.Errorf("tensor %q has shape %v in the model but %v in the vector", name, t.Shape, d.Shape)
		}
		w := append([]float32(nil), t.Data...)
		n := len(w)
		if rows >= 0 {
			n = rows * t.Shape[1]
		}
		for i := range n {
			w[i] = float32(float64(w[i]) + scale*float64(d.Data[i]))
		}
		if err := finite(name, w[:n]); err != nil {
			return nil, rep, err
		}
		out[name] = model.HostTensor{Shape: t.Shape, Data: w}
		rep.Tensors++
		rep.Elements += n
	}
	return out, rep, nil
}

// isVocabMatrix reports whether a tensor is indexed by token id in its first dimension.
func isVocabMatrix(name string) bool {
	return strings.HasSuffix(name, "embed_tokens.weight") || name == "lm_head.weight"
}

// Apply adds scale·v to the checkpoint in modelDir and writes the result to outDir: the model's
// config.json, generation config and tokenizer files copied as they are, and model.safetensors
// (float32). The architecture recorded in the vector must match the model's.
func Apply(modelDir string, v *Vector, scale float64, outDir string, opts Options) (Report, error) {
	mc, theta, err := load(modelDir)
	if err != nil {
		return Report{}, err
	}
	if d := v.Arch.diff(archOf(mc)); d != "" {
		return Report{}, fmt.Errorf("the vector was extracted from a different architecture than %s (%s)", modelDir, d)
	}
	if abs, _ := filepath.Abs(modelDir); abs != "" {
		if o, _ := filepath.Abs(outDir); o == abs {
			return Report{}, fmt.Errorf("output folder %s is the model folder; write to a new folder", outDir)
		}
	}
	out, rep, err := ApplyTensors(theta, v, scale, opts)
	if err != nil {
		return rep, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return rep, err
	}
	if err := copySideFiles(modelDir, outDir); err != nil {
		return rep, err
	}
	return rep, model.WriteTensorFile(filepath.Join(outDir, "model.safetensors"), out, map[string]string{"format": "pt"})
}

// copySideFiles copies every regular file of src except the weights (config, tokenizer, chat
// template), so that the output folder is a complete checkpoint.
func copySideFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(name, ".safetensors") || name == "model.safetensors.index.json" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func finite(name string, xs []float32) error {
	for i, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("tensor %q: element %d is %v after the arithmetic (overflow or a non-finite weight)", name, i, x)
		}
	}
	return nil
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func sortedNames(m map[string]model.HostTensor) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func unionNames(a, b map[string]model.HostTensor) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]model.HostTensor{a, b} {
		for n := range m {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}
