package rollout_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
)

const fixtureDir = "../testdata/models/llama"

// fullDecoder is a Decoder without a KV cache: every call runs the whole sequences through
// model.Logits. It is the independent reference the KV-cache decoder is compared with.
type fullDecoder struct {
	m    *model.Model
	seqs [][]int32
}

func (d *fullDecoder) Prefill(prompts [][]int32) ([][]float32, error) {
	d.seqs = make([][]int32, len(prompts))
	for i, p := range prompts {
		d.seqs[i] = slices.Clone(p)
	}
	return d.last()
}

func (d *fullDecoder) Step(tokens []int32) ([][]float32, error) {
	for i, t := range tokens {
		d.seqs[i] = append(d.seqs[i], t)
	}
	return d.last()
}

func (d *fullDecoder) last() ([][]float32, error) {
	ids, mask := rightPad(d.seqs)
	logits, err := d.m.Logits(ids, mask)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(d.seqs))
	for i, s := range d.seqs {
		out[i] = logits[i][len(s)-1]
	}
	return out, nil
}

func rightPad(seqs [][]int32) (ids, mask [][]int32) {
	T := 0
	for _, s := range seqs {
		T = max(T, len(s))
	}
	for _, s := range seqs {
		row, mk := make([]int32, T), make([]int32, T)
		copy(row, s)
		for j := range s {
			mk[j] = 1
		}
		ids, mask = append(ids, row), append(mask, mk)
	}
	return ids, mask
}

// readI64 reads one int64 tensor from a safetensors file (the HF reference of the fixture).
func readI64(t *testing.T, path, name string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var header map[string]struct {
		Dtype   string `json:"dtype"`
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	h, ok := header[name]
	if !ok || h.Dtype != "I64" {
		t.Fatalf("%s: no I64 tensor %q", path, name)
	}
	data := b[8+n:][h.Offsets[0]:h.Offsets[1]]
	out := make([]int64, len(data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
	}
	return out
}

func loadFixture(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// decoders returns the decoders under test for batch size b: the cache-less reference, and the
// model's KV-cache decoder when it exists (see kvDecoder).
func decoders(t *testing.T, m *model.Model, b, maxLen int) map[string]rollout.Decoder {
	out := map[string]rollout.Decoder{"full-forward": &fullDecoder{m: m}}
	if d := kvDecoder(t, m, b, maxLen); d != nil {
		out["kv-cache"] = d
	}
	return out
}

// TestGreedyMatchesHF: temperature 0 reproduces transformers' greedy decoding of the fixture.
func TestGreedyMatchesHF(t *testing.T) {
	m := loadFixture(t)
	ref := filepath.Join(fixtureDir, "reference.safetensors")
	prompt64, full64 := readI64(t, ref, "greedy_prompt"), readI64(t, ref, "greedy_output")
	prompt := make([]int32, len(prompt64))
	for i, x := range prompt64 {
		prompt[i] = int32(x)
	}
	var want []int32
	for _, x := range full64[len(prompt64):] {
		want = append(want, int32(x))
	}
	for name, dec := range decoders(t, m, 1, 32) {
		out, err := rollout.Sample(dec, [][]int32{prompt}, rollout.Config{Temperature: 0, MaxNewTokens: len(want)}, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(out[0].Tokens, want) {
			t.Errorf("%s: greedy tokens %v, transformers %v", name, out[0].Tokens, want)
		}
		t.Logf("%s: greedy %v (%s)", name, out[0].Tokens, out[0].Finish)
	}
}

// TestBehaviourLogProbsMatchForward: with plain temperature-1 sampling the behaviour log-probs
// (and entropies) equal a separate model.LogProbs pass over the sampled sequences within 1e-5,
// and the per-token self-certainty equals spec C1's formula applied to the model's full logits.
func TestBehaviourLogProbsMatchForward(t *testing.T) {
	m := loadFixture(t)
	prompts := [][]int32{{1, 73, 5, 38}, {1, 247}, {1, 102, 264, 280, 54, 61, 53}, {1, 9}}
	const newTokens = 12
	cfg := rollout.Config{Temperature: 1, MaxNewTokens: newTokens, StopTokens: []int32{2}}
	for name, dec := range decoders(t, m, len(prompts), 32) {
		t.Run(name, func(t *testing.T) {
			out, err := rollout.Sample(dec, prompts, cfg, 11)
			if err != nil {
				t.Fatal(err)
			}
			seqs := make([][]int32, len(prompts))
			for i := range prompts {
				seqs[i] = append(slices.Clone(prompts[i]), out[i].Tokens...)
			}
			ids, mask := rightPad(seqs)
			logp, ent, err := m.LogProbs(ids, mask)
			if err != nil {
				t.Fatal(err)
			}
			logits, err := m.Logits(ids, mask)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, c := range out {
				P := len(prompts[i])
				for j := range c.Tokens {
					pos := P - 1 + j // logp[pos] is log p(seq[pos+1] | seq[..pos])
					checks := []struct {
						what      string
						got, want float64
						tol       float64
					}{
						{"LogProbs", float64(c.LogProbs[j]), float64(logp[i][pos]), 1e-5},
						{"ModelLogProbs", float64(c.ModelLogProbs[j]), float64(logp[i][pos]), 1e-5},
						{"Entropy", float64(c.Entropy[j]), float64(ent[i][pos]), 1e-5},
						{"SelfCertainty", float64(c.SelfCertainty[j]), specSelfCertainty(logits[i][pos]), 1e-6},
					}
					for _, ch := range checks {
						d := math.Abs(ch.got - ch.want)
						worst = max(worst, d)
						if d > ch.tol {
							t.Fatalf("row %d token %d: %s = %.7f, forward pass %.7f", i, j, ch.what, ch.got, ch.want)
						}
					}
				}
			}
			t.Logf("tokens %v...; largest difference %.2g", out[0].Tokens, worst)
		})
	}
}

// specSelfCertainty is spec C1 written out: -log V - (1/V) Σ_j max(log p_j, -1e4) with
// log p = log_softmax(z) in float64.
func specSelfCertainty(z []float32) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	var sum float64
	for _, v := range z {
		sum += max(float64(v)-lse, -1e4)
	}
	V := float64(len(z))
	return -math.Log(V) - sum/V
}

// TestTransformedLogProbsOnModel: with temperature and truncation, the behaviour log-probs are
// those of the transformed distribution of the model's full-forward logits, RawLogProbs are
// log_softmax(z/T), and every sampled token lies in the filtered support.
func TestTransformedLogProbsOnModel(t *testing.T) {
	m := loadFixture(t)
	prompts := [][]int32{{1, 73, 5, 38}, {1, 247}, {1, 102, 264, 280, 54, 61, 53}}
	cfg := rollout.Config{Temperature: 0.7, TopK: 40, TopP: 0.9, MinP: 0.02, MaxNewTokens: 10}
	out, err := rollout.Sample(kvDecoder(t, m, len(prompts), 32), prompts, cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([][]int32, len(prompts))
	for i := range prompts {
		seqs[i] = append(slices.Clone(prompts[i]), out[i].Tokens...)
	}
	ids, mask := rightPad(seqs)
	logits, err := m.Logits(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range out {
		for j, tok := range c.Tokens {
			z := logits[i][len(prompts[i])-1+j]
			q, err := rollout.Transform(z, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tempered := make([]float32, len(z))
			for k := range z {
				tempered[k] = z[k] / float32(cfg.Temperature)
			}
			raw, _ := rollout.Transform(tempered, rollout.Config{Temperature: 1, MaxNewTokens: 1})
			if math.IsInf(q[tok], -1) {
				t.Fatalf("row %d token %d: sampled %d, which the filters remove", i, j, tok)
			}
			if d := math.Abs(float64(c.LogProbs[j]) - q[tok]); d > 1e-5 {
				t.Fatalf("row %d token %d: LogProbs %.6f, transformed distribution %.6f", i, j, c.LogProbs[j], q[tok])
			}
			if d := math.Abs(float64(c.RawLogProbs[j]) - raw[tok]); d > 1e-5 {
				t.Fatalf("row %d token %d: RawLogProbs %.6f, log_softmax(z/T) %.6f", i, j, c.RawLogProbs[j], raw[tok])
			}
		}
	}
}

// BenchmarkSampleBench decodes 64 new tokens for 16 prompts with the engine notes' reference
// shape ("bench" preset: 4 layers, d=256, vocab 256), KV cache, plain sampling; it reports
// generated tokens per second including the host-side sampling.
func BenchmarkSampleBench(b *testing.B) {
	cfg, err := model.Preset("bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	const batch, promptLen, newTokens = 16, 64, 64
	prompts := make([][]int32, batch)
	for i := range prompts {
		prompts[i] = make([]int32, promptLen)
		for j := range prompts[i] {
			prompts[i][j] = int32((i*31 + j*7) % cfg.VocabSize)
		}
	}
	dec, err := m.NewDecoder(batch, promptLen+newTokens)
	if err != nil {
		b.Fatal(err)
	}
	sc := rollout.Config{Temperature: 1, MaxNewTokens: newTokens}
	if _, err := rollout.Sample(dec, prompts, sc, 0); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := rollout.Sample(dec, prompts, sc, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*newTokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
