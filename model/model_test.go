package model

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLlama3InvFreq checks the llama3 rope scaling against values computed by hand from
// transformers' _compute_llama3_parameters (wavelength λ = 2π/f; λ < orig/high: unchanged;
// λ > orig/low: f/factor; otherwise s = (orig/λ − low)/(high − low), (1−s)·f/factor + s·f).
func TestLlama3InvFreq(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want map[int]float64
	}{
		{"fixture-like head_dim 16, orig 64", Config{HeadDim: 16, RopeTheta: 500000,
			RopeScaling: &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 64}},
			map[int]float64{0: 1, 1: 0.0794030091792082 /* s = 0.325094 */, 2: 0.004700753866357992, 7: 1.2891731721515574e-06}},
		{"Llama 3.1 head_dim 128, orig 8192", Config{HeadDim: 128, RopeTheta: 500000,
			RopeScaling: &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}},
			map[int]float64{0: 1, 20: 0.016560440080994446, 28: 0.003211445994752591, 30: 0.0013718935677611381 /* s = 0.592849 */, 35: 9.556212353964683e-05, 63: 3.068925988914511e-07}},
		{"no scaling", Config{HeadDim: 16, RopeTheta: 10000}, map[int]float64{0: 1, 1: 0.31622776601683794, 7: 0.00031622776601683794 /* 10^-3.5 */}},
	}
	for _, c := range cases {
		got := c.cfg.InvFreq()
		if len(got) != c.cfg.HeadDim/2 {
			t.Fatalf("%s: %d frequencies, want %d", c.name, len(got), c.cfg.HeadDim/2)
		}
		for i, w := range c.want {
			if math.Abs(got[i]-w) > 1e-12*math.Max(1, w) && math.Abs(got[i]-w)/w > 1e-12 {
				t.Errorf("%s: inv_freq[%d] = %.17g, want %.17g", c.name, i, got[i], w)
			}
		}
	}
}

func TestParseConfigRope(t *testing.T) {
	v4 := `{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,
	"intermediate_size":16,"rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
	"high_freq_factor":4.0,"original_max_position_embeddings":8192},"eos_token_id":[7,8]}`
	v5 := `{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,
	"intermediate_size":16,"rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
	"high_freq_factor":4.0,"original_max_position_embeddings":8192},"eos_token_id":[7,8]}`
	for _, src := range []string{v4, v5} {
		c, err := ParseConfig([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		want := RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
		if c.RopeScaling == nil || *c.RopeScaling != want || c.RopeTheta != 500000 || c.NumKVHeads != 2 || c.HeadDim != 4 {
			t.Errorf("parsed %+v (rope %+v)", c, c.RopeScaling)
		}
		if len(c.EOS) != 2 || c.EOS[1] != 8 || c.BOS != -1 {
			t.Errorf("token ids: BOS %d EOS %v", c.BOS, c.EOS)
		}
	}
}

// TestConfigErrors: bad configs fail with one line naming the problem.
func TestConfigErrors(t *testing.T) {
	base := `"vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16`
	cases := []struct{ src, want string }{
		{`{"model_type":"gpt2",` + base + `}`, `unsupported model_type "gpt2"`},
		{`{` + base + `}`, `no "model_type"`},
		{`{"model_type":"llama",` + base, `malformed config.json`},
		{`{"model_type":"llama","vocab_size":10}`, `hidden_size must be positive`},
		{`{"model_type":"llama",` + base + `,"num_key_value_heads":3}`, `multiple of num_key_value_heads`},
		{`{"model_type":"llama",` + base + `,"rope_scaling":{"rope_type":"yarn","factor":2}}`, `unsupported rope scaling type "yarn"`},
		{`{"model_type":"llama",` + base + `,"hidden_act":"gelu"}`, `unsupported hidden_act "gelu"`},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("config %s: error %v, want one line containing %q", c.src, err, c.want)
		}
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestLoadErrors: a checkpoint lacking a tensor names it; an unknown model_type names it.
func TestLoadErrors(t *testing.T) {
	dir := copyDir(t, fixtureDir("llama"))
	ts, err := readSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	delete(ts, "model.layers.1.self_attn.v_proj.weight")
	if err := writeSafetensors(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), `missing tensor "model.layers.1.self_attn.v_proj.weight"`) {
		t.Errorf("missing tensor: got %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	os.WriteFile(filepath.Join(dir, "config.json"), bytes.Replace(cfg, []byte(`"model_type": "llama"`), []byte(`"model_type": "mamba"`), 1), 0o644)
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), `unsupported model_type "mamba"`) {
		t.Errorf("unknown model_type: got %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty folder: got %v", err)
	}
}

// TestSaveLoadRoundTrip: load → save → load gives bit-identical weights and the same config, for
// a bf16 checkpoint (saved as float32), a tied model and a from-scratch model.
func TestSaveLoadRoundTrip(t *testing.T) {
	scratch := tinyModel(t, 5)
	for _, name := range []string{"llama-bf16", "qwen3", "scratch"} {
		var m *Model
		if name == "scratch" {
			m = scratch
		} else {
			var err error
			if m, err = Load(fixtureDir(name)); err != nil {
				t.Fatal(err)
			}
		}
		dir := filepath.Join(t.TempDir(), "out")
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		m2, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m2.Config().ModelType != m.Config().ModelType || m2.NumParams() != m.NumParams() {
			t.Fatalf("%s: config changed: %+v vs %+v", name, m2.Config(), m.Config())
		}
		a, _ := m.hostParams()
		b, _ := m2.hostParams()
		for i := range a {
			for j := range a[i] {
				if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
					t.Fatalf("%s: %s[%d] changed: %v → %v", name, m.lay.names[i], j, a[i][j], b[i][j])
				}
			}
		}
		// Saving again gives the same bytes.
		dir2 := filepath.Join(t.TempDir(), "again")
		if err := m2.Save(dir2); err != nil {
			t.Fatal(err)
		}
		f1, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
		f2, _ := os.ReadFile(filepath.Join(dir2, "model.safetensors"))
		if !bytes.Equal(f1, f2) {
			t.Errorf("%s: second save differs from first", name)
		}
		if m.Config().TieWordEmbeddings {
			if ts, _ := readSafetensors(filepath.Join(dir, "model.safetensors")); ts["lm_head.weight"].F32 != nil {
				t.Errorf("%s: tied model saved an lm_head.weight", name)
			}
		}
	}
}

// TestShardedLoad splits a checkpoint into two shards with an index and loads the same logits.
func TestShardedLoad(t *testing.T) {
	dir := copyDir(t, fixtureDir("qwen2"))
	ts, _ := readSafetensors(filepath.Join(dir, "model.safetensors"))
	os.Remove(filepath.Join(dir, "model.safetensors"))
	shards := []map[string]hostTensor{{}, {}}
	index := `{"metadata":{},"weight_map":{`
	i := 0
	for name, x := range ts {
		k := i % 2
		shards[k][name] = x
		if i > 0 {
			index += ","
		}
		index += `"` + name + `":"model-0000` + string(rune('1'+k)) + `-of-00002.safetensors"`
		i++
	}
	index += "}}"
	for k, s := range shards {
		if err := writeSafetensors(filepath.Join(dir, "model-0000"+string(rune('1'+k))+"-of-00002.safetensors"), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(index), 0o644)
	sharded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := Load(fixtureDir("qwen2"))
	ids, mask := [][]int32{{4, 5, 6, 7}}, [][]int32{{1, 1, 1, 1}}
	a, _, err := sharded.LogProbs(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := whole.LogProbs(ids, mask)
	for j := range a[0] {
		if a[0][j] != b[0][j] {
			t.Fatalf("sharded logp %v, single-file %v", a[0], b[0])
		}
	}
}

// TestPaddingInvariance: the same sequences left-padded, right-padded and alone give the same
// logprobs and entropies (positions come from the mask).
func TestPaddingInvariance(t *testing.T) {
	m, err := Load(fixtureDir("llama"))
	if err != nil {
		t.Fatal(err)
	}
	seq := []int32{12, 40, 7, 99, 250, 3, 18}
	const pad = 5
	left := append(make([]int32, pad), seq...)
	right := append(append([]int32(nil), seq...), make([]int32, pad)...)
	lmask := append(make([]int32, pad), ones(len(seq))...)
	rmask := append(ones(len(seq)), make([]int32, pad)...)
	for i := 0; i < pad; i++ {
		left[i], right[len(seq)+i] = 77, 77 // pad id must not matter
	}
	lp, ent, err := m.LogProbs([][]int32{left, right, seq[:4]}, [][]int32{lmask, rmask, {1, 1, 1, 1}})
	if err == nil {
		t.Fatal("rows of different lengths must be rejected")
	}
	lp, ent, err = m.LogProbs([][]int32{left, right}, [][]int32{lmask, rmask})
	if err != nil {
		t.Fatal(err)
	}
	alone, aloneEnt, err := m.LogProbs([][]int32{seq}, [][]int32{ones(len(seq))})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for j := 0; j < len(seq)-1; j++ {
		for _, d := range []float32{lp[0][pad+j] - alone[0][j], lp[1][j] - alone[0][j], ent[0][pad+j] - aloneEnt[0][j], ent[1][j] - aloneEnt[0][j]} {
			worst = math.Max(worst, math.Abs(float64(d)))
		}
	}
	t.Logf("max |padded - alone| = %.3g", worst)
	if worst > 1e-5 {
		t.Errorf("padding changes logprobs/entropies by %.3g", worst)
	}
	for j := 0; j < pad; j++ {
		if lp[0][j] != 0 || lp[1][len(seq)-1+j] != 0 {
			t.Errorf("padded entries must be 0: left %v right %v", lp[0], lp[1])
		}
	}
}

// TestCloneIsIndependent: training the original leaves the clone's logprobs unchanged.
func TestCloneIsIndependent(t *testing.T) {
	m := tinyModel(t, 6)
	ref, err := m.Clone()
	if err != nil {
		t.Fatal(err)
	}
	ids, mask := [][]int32{{1, 2, 3, 4, 5}}, [][]int32{{1, 1, 1, 1, 1}}
	before, _, _ := ref.LogProbs(ids, mask)
	tr, _ := NewTrainer(m, OptimConfig{LR: 0.05, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if _, _, err := tr.Accumulate(ids, mask, [][]float32{{-1, -1, -1, -1}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(0.05); err != nil {
		t.Fatal(err)
	}
	trained, _, _ := m.LogProbs(ids, mask)
	after, _, _ := ref.LogProbs(ids, mask)
	for j := range before[0] {
		if before[0][j] != after[0][j] {
			t.Fatalf("clone changed: %v → %v", before[0], after[0])
		}
	}
	// One step of SFT at lr 0.05 must raise the logprob of the trained tokens.
	sumB, sumT := 0.0, 0.0
	for j := range before[0] {
		sumB += float64(before[0][j])
		sumT += float64(trained[0][j])
	}
	if !(sumT > sumB+0.1) {
		t.Errorf("SFT step did not raise log-likelihood: %.4f → %.4f", sumB, sumT)
	}
}

// TestNewIsSeeded: the same seed gives the same weights, another seed different ones.
func TestNewIsSeeded(t *testing.T) {
	a, _, _ := tinyModel(t, 7).Weights("model.layers.0.mlp.up_proj.weight")
	b, _, _ := tinyModel(t, 7).Weights("model.layers.0.mlp.up_proj.weight")
	c, _, _ := tinyModel(t, 8).Weights("model.layers.0.mlp.up_proj.weight")
	same, diff := true, false
	std := 0.0
	for i := range a {
		same = same && a[i] == b[i]
		diff = diff || a[i] != c[i]
		std += float64(a[i]) * float64(a[i])
	}
	std = math.Sqrt(std / float64(len(a)))
	if !same || !diff || math.Abs(std-0.02) > 0.002 {
		t.Errorf("seeded init: same=%v differs=%v std=%.4f (want 0.02)", same, diff, std)
	}
}

func TestPresets(t *testing.T) {
	for _, c := range []struct {
		name   string
		params int
	}{{"tiny", 2*(64+3*64*192+64*64*2+2*64*32+64) + 64 + 40*64}, {"bench", 0}} {
		cfg, err := Preset(c.name, 40)
		if err != nil {
			t.Fatal(err)
		}
		if c.params > 0 {
			m, _ := New(cfg, 1)
			if m.NumParams() != c.params {
				t.Errorf("%s: %d params, want %d", c.name, m.NumParams(), c.params)
			}
		}
	}
	if _, err := Preset("huge", 10); err == nil || !strings.Contains(err.Error(), `unknown model preset "huge"`) {
		t.Errorf("unknown preset: %v", err)
	}
}

func TestBucketLen(t *testing.T) {
	for _, c := range [][2]int{{1, 1}, {13, 13}, {16, 16}, {17, 24}, {64, 64}, {65, 80}, {256, 256}, {257, 320}} {
		if got := bucketLen(c[0]); got != c[1] {
			t.Errorf("bucketLen(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}
