package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var allTargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

func loraCfg(r int, targets ...string) LoRAConfig {
	if len(targets) == 0 {
		targets = allTargets
	}
	return LoRAConfig{Rank: r, Alpha: 2 * float64(r), Targets: targets, Seed: 7}
}

func mustLogits(t *testing.T, m *Model, ids, mask [][]int32) [][][]float32 {
	t.Helper()
	lg, err := m.Logits(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	return lg
}

// maxDiff is the largest |a−b| over real positions.
func maxDiff(a, b [][][]float32, mask [][]int32) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i] {
			if mask[i][j] == 0 {
				continue
			}
			for k := range a[i][j] {
				d = math.Max(d, math.Abs(float64(a[i][j][k]-b[i][j][k])))
			}
		}
	}
	return d
}

func allWeights(t *testing.T, m *Model) [][]float32 {
	t.Helper()
	h, err := m.hostParams()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// trainLoRA takes steps AdamW steps on random batches.
func trainLoRA(t *testing.T, tr *Trainer, steps int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for s := 0; s < steps; s++ {
		ids, mask, coef := randomBatch(rng, 3, 9, 40)
		if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Step(0.02); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoRAExactAtInit: with B = 0 the adapted logits equal the base's bit for bit, A is drawn as
// PEFT does (|A| < 1/√in, not all zero), and the tensors have PEFT's names and shapes.
func TestLoRAExactAtInit(t *testing.T) {
	base := tinyModel(t, 1)
	m, err := base.AddAdapter(loraCfg(4))
	if err != nil {
		t.Fatal(err)
	}
	ids, mask, _ := randomBatch(rand.New(rand.NewPCG(1, 2)), 3, 9, 40)
	want, got := mustLogits(t, base, ids, mask), mustLogits(t, m, ids, mask)
	if d := maxDiff(want, got, mask); d != 0 {
		t.Fatalf("adapted logits differ from the base's by %g at B = 0", d)
	}
	al := m.lora.lay
	d, in := base.cfg.HiddenSize, base.cfg.HiddenSize
	if al.names[0] != "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" || !slices.Equal(al.shapes[0], []int{4, in}) {
		t.Fatalf("first adapter tensor %s %v", al.names[0], al.shapes[0])
	}
	want7 := 2 * 7 * base.cfg.NumLayers
	if len(al.names) != want7 {
		t.Fatalf("%d adapter tensors, want %d", len(al.names), want7)
	}
	host, _ := m.adapterHost()
	bound := 1 / math.Sqrt(float64(in))
	var maxA float64
	for _, v := range host[0] {
		maxA = math.Max(maxA, math.Abs(float64(v)))
	}
	if maxA == 0 || maxA > bound || maxA < 0.8*bound {
		t.Fatalf("max |A| = %g, want just under 1/√in = %g", maxA, bound)
	}
	for _, v := range host[1] {
		if v != 0 {
			t.Fatal("B is not zero at init")
		}
	}
	_ = d
	// Same seed, same A; another seed, another A.
	m2, _ := base.AddAdapter(loraCfg(4))
	h2, _ := m2.adapterHost()
	if !slices.Equal(h2[0], host[0]) {
		t.Fatal("the same seed drew another A")
	}
	c := loraCfg(4)
	c.Seed = 8
	m3, _ := base.AddAdapter(c)
	h3, _ := m3.adapterHost()
	if slices.Equal(h3[0], host[0]) {
		t.Fatal("another seed drew the same A")
	}
}

// TestLoRATrainsOnlyAdapter: after a few AdamW steps the base weights are bit-identical, every
// adapter tensor moved, the optimizer holds state for adapter tensors only, the adapted logits
// moved, Base() still gives the original logits, and the merged model's logits equal the adapted
// model's within float32 rounding.
func TestLoRATrainsOnlyAdapter(t *testing.T) {
	base := tinyModel(t, 1)
	before := allWeights(t, base)
	m, err := base.AddAdapter(loraCfg(4, "q_proj", "v_proj", "down_proj"))
	if err != nil {
		t.Fatal(err)
	}
	a0, _ := m.adapterHost()
	tr, err := NewTrainer(m, OptimConfig{LR: 0.02, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, ClipNorm: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.mom) != len(m.lora.params) || len(tr.mom) != 2*3*base.cfg.NumLayers {
		t.Fatalf("optimizer holds %d moment tensors, want %d (adapter only)", len(tr.mom), 2*3*base.cfg.NumLayers)
	}
	trainLoRA(t, tr, 3, 5)
	for i, w := range allWeights(t, m) {
		if !slices.Equal(w, before[i]) {
			t.Fatalf("base weight %s changed", base.lay.names[i])
		}
	}
	a1, _ := m.adapterHost()
	for i := range a1 {
		if slices.Equal(a0[i], a1[i]) {
			t.Fatalf("adapter tensor %s did not change", m.lora.lay.names[i])
		}
	}
	ids, mask, _ := randomBatch(rand.New(rand.NewPCG(9, 2)), 3, 9, 40)
	lb, la := mustLogits(t, base, ids, mask), mustLogits(t, m, ids, mask)
	if d := maxDiff(lb, la, mask); d < 1e-3 {
		t.Fatalf("adapted logits moved only %g from the base's", d)
	}
	if d := maxDiff(lb, mustLogits(t, m.Base(), ids, mask), mask); d != 0 {
		t.Fatalf("Base() logits differ from the original by %g", d)
	}
	mg, err := m.Merged()
	if err != nil {
		t.Fatal(err)
	}
	d := maxDiff(la, mustLogits(t, mg, ids, mask), mask)
	t.Logf("merged vs adapted logits: max |Δ| = %.3g (logit change from training %.3g)", d, maxDiff(lb, la, mask))
	if d > 2e-5 {
		t.Fatalf("merged logits differ from adapted by %g", d)
	}
	if _, err := NewTrainer(m.Base(), DefaultOptimConfig()); err == nil {
		t.Fatal("a Trainer accepted the frozen Base view")
	}
	if err := m.Save(t.TempDir()); err == nil {
		t.Fatal("Save of an adapted model did not refuse")
	}
}

// TestLoRAScaleAndGradient checks the adapter's forward against a host computation (one layer's
// q_proj output through the logits is hard to isolate, so the merged-weights identity is used:
// with A, B set by hand, logits equal those of a model whose q weight is W + s·B·A), for plain and
// rsLoRA scaling, and the adapter gradient against central finite differences.
func TestLoRAScaleAndGradient(t *testing.T) {
	base := tinyModel(t, 2)
	ids, mask, coef := randomBatch(rand.New(rand.NewPCG(4, 4)), 2, 8, 40)
	for _, rs := range []bool{false, true} {
		c := LoRAConfig{Rank: 4, Alpha: 3, RSLoRA: rs, Targets: []string{"q_proj"}, Seed: 1}
		m, err := base.AddAdapter(c)
		if err != nil {
			t.Fatal(err)
		}
		host, _ := m.adapterHost()
		rng := rand.New(rand.NewPCG(5, 5))
		for i := range host[1] {
			host[1][i] = float32(0.1 * rng.NormFloat64())
		}
		m = base.withAdapter(m.lora.lay, host)
		// Host merge of layer 0's q_proj with s = 3/4 or 3/2.
		s := 0.75
		if rs {
			s = 1.5
		}
		if math.Abs(c.Scale()-s) > 1e-15 {
			t.Fatalf("scale %g, want %g", c.Scale(), s)
		}
		w, shape, _ := base.Weights("model.layers.0.self_attn.q_proj.weight")
		out, in := shape[0], shape[1]
		ref, _ := base.Clone()
		for o := 0; o < out; o++ {
			for j := 0; j < in; j++ {
				var sum float64
				for k := 0; k < 4; k++ {
					sum += float64(host[1][o*4+k]) * float64(host[0][k*in+j])
				}
				w[o*in+j] += float32(s * sum)
			}
		}
		ref.setWeights("model.layers.0.self_attn.q_proj.weight", w)
		// Layer 1's q_proj also has an adapter: merge it too.
		w1, _, _ := base.Weights("model.layers.1.self_attn.q_proj.weight")
		for o := 0; o < out; o++ {
			for j := 0; j < in; j++ {
				var sum float64
				for k := 0; k < 4; k++ {
					sum += float64(host[3][o*4+k]) * float64(host[2][k*in+j])
				}
				w1[o*in+j] += float32(s * sum)
			}
		}
		ref.setWeights("model.layers.1.self_attn.q_proj.weight", w1)
		if d := maxDiff(mustLogits(t, ref, ids, mask), mustLogits(t, m, ids, mask), mask); d > 2e-5 {
			t.Fatalf("rslora=%v: adapted logits differ from the hand-merged model by %g", rs, d)
		}
	}
	// Finite differences of the surrogate L = Σ coef·logp with respect to entries of A and B.
	m, _ := base.AddAdapter(LoRAConfig{Rank: 2, Alpha: 2, Targets: []string{"v_proj", "up_proj"}, Seed: 3})
	host, _ := m.adapterHost()
	for i := 1; i < len(host); i += 2 {
		for j := range host[i] {
			host[i][j] = 0.05
		}
	}
	m = base.withAdapter(m.lora.lay, host)
	tr, _ := NewTrainer(m, DefaultOptimConfig())
	if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	loss := func(mm *Model) float64 {
		lp, _, err := mm.LogProbs(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		var l float64
		for i := range lp {
			for j := range lp[i] {
				if mask[i][j] == 1 && mask[i][j+1] == 1 {
					l += float64(coef[i][j]) * float64(lp[i][j])
				}
			}
		}
		return l
	}
	for _, ti := range []int{0, 1, 3} {
		name := m.lora.lay.names[ti]
		g, err := tr.gradients(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range []int{0, 5} {
			const h = 1e-2
			hp := slices.Clone(host[ti])
			hp[j] += h
			hm := slices.Clone(host[ti])
			hm[j] -= h
			plus, minus := slices.Clone(host), slices.Clone(host)
			plus[ti], minus[ti] = hp, hm
			fd := (loss(base.withAdapter(m.lora.lay, plus)) - loss(base.withAdapter(m.lora.lay, minus))) / (2 * h)
			if math.Abs(fd-float64(g[j])) > 2e-3+0.02*math.Abs(fd) {
				t.Fatalf("%s[%d]: gradient %g, finite difference %g", name, j, g[j], fd)
			}
			t.Logf("%s[%d]: gradient %.5f, finite difference %.5f", name, j, g[j], fd)
		}
	}
}

// TestLoRADropoutSeeded: dropout changes the forward of training (not of LogProbs), the same seed
// gives the same update, another seed another, and the draw count survives SaveState/LoadState.
func TestLoRADropoutSeeded(t *testing.T) {
	base := tinyModel(t, 3)
	ids, mask, coef := randomBatch(rand.New(rand.NewPCG(6, 6)), 2, 8, 40)
	run := func(seed int64, p float64, steps int) (*Model, *Trainer) {
		c := loraCfg(4, "q_proj", "up_proj")
		c.Dropout, c.Seed = p, seed
		m, _ := base.AddAdapter(c)
		tr, _ := NewTrainer(m, OptimConfig{LR: 0.02, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, ClipNorm: 1})
		for s := 0; s < steps; s++ {
			if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Step(0.02); err != nil {
				t.Fatal(err)
			}
		}
		return m, tr
	}
	a, _ := run(1, 0.3, 2)
	b, _ := run(1, 0.3, 2)
	c, _ := run(2, 0.3, 2)
	z, _ := run(1, 0, 2)
	ha, _ := a.adapterHost()
	hb, _ := b.adapterHost()
	hc, _ := c.adapterHost()
	hz, _ := z.adapterHost()
	if !slices.Equal(ha[1], hb[1]) {
		t.Fatal("same seed, different updates")
	}
	if slices.Equal(ha[1], hc[1]) || slices.Equal(ha[1], hz[1]) {
		t.Fatal("dropout seed or rate had no effect on the update")
	}
	// LogProbs has no dropout: two calls agree.
	l1, _, _ := a.LogProbs(ids, mask)
	l2, _, _ := a.LogProbs(ids, mask)
	if !slices.Equal(l1[0], l2[0]) {
		t.Fatal("LogProbs is not deterministic")
	}
	// Resume: 3 steps straight equal 2 steps, save, load into a new trainer, 1 step.
	full, _ := run(1, 0.3, 3)
	part, tr := run(1, 0.3, 2)
	dir := t.TempDir()
	if err := part.SaveAdapter(dir, "tiny"); err != nil {
		t.Fatal(err)
	}
	if err := tr.SaveState(filepath.Join(dir, "optimizer.bin")); err != nil {
		t.Fatal(err)
	}
	re, err := base.LoadAdapter(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr2, _ := NewTrainer(re, OptimConfig{LR: 0.02, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, ClipNorm: 1})
	if err := tr2.LoadState(filepath.Join(dir, "optimizer.bin")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr2.Accumulate(ids, mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr2.Step(0.02); err != nil {
		t.Fatal(err)
	}
	hf, _ := full.adapterHost()
	hr, _ := re.adapterHost()
	for i := range hf {
		if !slices.Equal(hf[i], hr[i]) {
			t.Fatalf("resumed adapter tensor %s differs from the uninterrupted run", re.lora.lay.names[i])
		}
	}
}

// TestPEFTLayout checks SaveAdapter against PEFT's documented layout (field names and values of
// adapter_config.json, key names and [r, in] / [out, r] shapes), and that an adapter written by
// hand in that layout loads and acts as W + (alpha/r)·B·A.
func TestPEFTLayout(t *testing.T) {
	base := tinyModel(t, 4)
	c := LoRAConfig{Rank: 8, Alpha: 16, Dropout: 0.05, Targets: []string{"o_proj", "q_proj", "gate_proj"}, Seed: 1}
	m, _ := base.AddAdapter(c)
	host, _ := m.adapterHost()
	for i := 1; i < len(host); i += 2 {
		for j := range host[i] {
			host[i][j] = float32(j%7) * 0.01
		}
	}
	m = base.withAdapter(m.lora.lay, host)
	dir := t.TempDir()
	if err := m.SaveAdapter(dir, "Qwen/Qwen2.5-0.5B"); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"peft_type": "LORA", "r": 8.0, "lora_alpha": 16.0, "lora_dropout": 0.05,
		"use_rslora": false, "bias": "none", "task_type": "CAUSAL_LM", "fan_in_fan_out": false,
		"base_model_name_or_path": "Qwen/Qwen2.5-0.5B", "use_dora": false} {
		if cfg[k] != want {
			t.Errorf("adapter_config.json %s = %v, want %v", k, cfg[k], want)
		}
	}
	if tm, _ := json.Marshal(cfg["target_modules"]); string(tm) != `["q_proj","o_proj","gate_proj"]` {
		t.Errorf("target_modules = %s", tm)
	}
	ts, err := readSafetensors(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	d, inter := base.cfg.HiddenSize, base.cfg.IntermediateSize
	q := base.cfg.NumHeads * base.cfg.HeadDim
	wantShapes := map[string][]int{}
	for l := 0; l < base.cfg.NumLayers; l++ {
		p := "base_model.model.model.layers." + string(rune('0'+l)) + "."
		wantShapes[p+"self_attn.q_proj.lora_A.weight"] = []int{8, d}
		wantShapes[p+"self_attn.q_proj.lora_B.weight"] = []int{q, 8}
		wantShapes[p+"self_attn.o_proj.lora_A.weight"] = []int{8, q}
		wantShapes[p+"self_attn.o_proj.lora_B.weight"] = []int{d, 8}
		wantShapes[p+"mlp.gate_proj.lora_A.weight"] = []int{8, d}
		wantShapes[p+"mlp.gate_proj.lora_B.weight"] = []int{inter, 8}
	}
	if len(ts) != len(wantShapes) {
		t.Fatalf("%d tensors in adapter_model.safetensors, want %d", len(ts), len(wantShapes))
	}
	for k, s := range wantShapes {
		if !slices.Equal(ts[k].Shape, s) {
			t.Errorf("%s: shape %v, want %v", k, ts[k].Shape, s)
		}
	}
	// Load back: the same logits bit for bit, the same config.
	ids, mask, _ := randomBatch(rand.New(rand.NewPCG(8, 8)), 2, 8, 40)
	back, err := base.LoadAdapter(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(mustLogits(t, m, ids, mask), mustLogits(t, back, ids, mask), mask); d != 0 {
		t.Fatalf("reloaded adapter gives logits %g away", d)
	}
	bc, _ := back.AdapterConfig()
	if bc.Rank != 8 || bc.Alpha != 16 || bc.Dropout != 0.05 || !slices.Equal(bc.Targets, []string{"q_proj", "o_proj", "gate_proj"}) {
		t.Fatalf("reloaded config %+v", bc)
	}

	// A hand-written adapter (PEFT's names, with the "default" adapter name some tools keep) on
	// layer 1's k_proj only.
	hand := t.TempDir()
	kv := base.cfg.NumKVHeads * base.cfg.HeadDim
	a := make([]float32, 2*d)
	b := make([]float32, kv*2)
	for i := range a {
		a[i] = float32(i%5) * 0.02
	}
	for i := range b {
		b[i] = float32(i%3) * 0.03
	}
	if err := writeSafetensors(filepath.Join(hand, "adapter_model.safetensors"), map[string]hostTensor{
		"base_model.model.model.layers.1.self_attn.k_proj.lora_A.default.weight": {Shape: []int{2, d}, F32: a},
		"base_model.model.model.layers.1.self_attn.k_proj.lora_B.default.weight": {Shape: []int{kv, 2}, F32: b},
	}, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(hand, "adapter_config.json"), []byte(`{"peft_type": "LORA", "r": 2, "lora_alpha": 8,
		"target_modules": ["k_proj"], "bias": "none", "task_type": "CAUSAL_LM", "fan_in_fan_out": false,
		"rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": null, "layers_to_transform": [1]}`), 0o644)
	hm, err := base.LoadAdapter(hand, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, _, _ := base.Weights("model.layers.1.self_attn.k_proj.weight")
	for o := 0; o < kv; o++ {
		for j := 0; j < d; j++ {
			w[o*d+j] += 4 * (b[o*2]*a[j] + b[o*2+1]*a[d+j])
		}
	}
	ref, _ := base.Clone()
	ref.setWeights("model.layers.1.self_attn.k_proj.weight", w)
	if dd := maxDiff(mustLogits(t, ref, ids, mask), mustLogits(t, hm, ids, mask), mask); dd > 2e-5 {
		t.Fatalf("hand-written adapter: logits %g from the hand-merged model", dd)
	}
	// Saving it again writes layers_to_transform [1].
	again := t.TempDir()
	if err := hm.SaveAdapter(again, "x"); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(again, "adapter_config.json"))
	if !strings.Contains(string(data), `"layers_to_transform": [
    1
  ]`) {
		t.Fatalf("layers_to_transform not written: %s", data)
	}
}

// TestAdapterBadInput: each malformed adapter or config is one clear error.
func TestAdapterBadInput(t *testing.T) {
	base := tinyModel(t, 1)
	for _, c := range []struct {
		cfg  LoRAConfig
		want string
	}{
		{LoRAConfig{Rank: 0, Alpha: 1, Targets: []string{"q_proj"}}, "r (rank)"},
		{LoRAConfig{Rank: 2, Alpha: 0, Targets: []string{"q_proj"}}, "lora_alpha"},
		{LoRAConfig{Rank: 2, Alpha: 1, Dropout: 1, Targets: []string{"q_proj"}}, "lora_dropout"},
		{LoRAConfig{Rank: 2, Alpha: 1, Targets: []string{"lm_head"}}, `unknown target module "lm_head"`},
		{LoRAConfig{Rank: 2, Alpha: 1}, "target_modules is empty"},
	} {
		if _, err := base.AddAdapter(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	good := `"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]`
	for _, c := range []struct{ json, want string }{
		{`{` + good + `, "use_dora": true}`, "use_dora"},
		{`{` + good + `, "bias": "all"}`, "bias"},
		{`{` + good + `, "fan_in_fan_out": true}`, "fan_in_fan_out"},
		{`{` + good + `, "modules_to_save": ["lm_head"]}`, "modules_to_save"},
		{`{"peft_type": "IA3", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}`, "peft_type"},
		{`{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ".*proj"}`, "pattern"},
		{`{` + good + `, "rank_pattern": {"q_proj": 4}}`, "rank_pattern"},
		{`{`, "malformed JSON"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(c.json), 0o644)
		if _, err := base.LoadAdapter(dir, 0); err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line with %q", c.json, err, c.want)
		}
	}
	// Weights that do not fit the config or the model.
	d := base.cfg.HiddenSize
	for _, c := range []struct {
		ts   map[string]hostTensor
		want string
	}{
		{map[string]hostTensor{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {Shape: []int{2, d}, F32: make([]float32, 2*d)}}, "lacks"},
		{map[string]hostTensor{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {Shape: []int{3, d}, F32: make([]float32, 3*d)},
			"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": {Shape: []int{d, 3}, F32: make([]float32, 3*d)}}, "shape"},
		{map[string]hostTensor{"base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight": {Shape: []int{2, d}, F32: make([]float32, 2*d)}}, "layer 9"},
		{map[string]hostTensor{"base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight": {Shape: []int{2, d}, F32: make([]float32, 2*d)}}, "does not list"},
		{map[string]hostTensor{"model.layers.0.self_attn.q_proj.weight": {Shape: []int{2, d}, F32: make([]float32, 2*d)}}, "unexpected tensor"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(`{`+good+`}`), 0o644)
		if err := writeSafetensors(filepath.Join(dir, "adapter_model.safetensors"), c.ts, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := base.LoadAdapter(dir, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// TestLoRAEveryAccumulatePath: the other surrogates (token set, internal layer, value) take the
// adapter's gradients too. A one-candidate token set and the last layer's internal policy have
// exactly Accumulate's adapter gradient; the value surrogate reaches the adapter (the base stays
// frozen) and the activation-checkpointed graph gives the same gradient.
func TestLoRAEveryAccumulatePath(t *testing.T) {
	base := tinyModel(t, 3)
	m, err := base.AddAdapter(loraCfg(4))
	if err != nil {
		t.Fatal(err)
	}
	// Move B off zero so that A's gradient is not zero either.
	tr0, _ := NewTrainer(m, OptimConfig{LR: 0.05, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, ClipNorm: 1})
	trainLoRA(t, tr0, 2, 11)
	ids, mask, coef := randomBatch(rand.New(rand.NewPCG(4, 4)), 3, 8, 40)
	name := m.lora.lay.names[0] // layer 0 q_proj lora_A
	grad := func(remat bool, acc func(tr *Trainer) error) []float32 {
		t.Helper()
		tr, err := NewTrainer(m, DefaultOptimConfig())
		if err != nil {
			t.Fatal(err)
		}
		tr.SetActivationCheckpointing(remat)
		if err := acc(tr); err != nil {
			t.Fatal(err)
		}
		g, err := tr.gradients(name)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	diff := func(a, b []float32) (d, scale float64) {
		for i := range a {
			d = math.Max(d, math.Abs(float64(a[i]-b[i])))
			scale = math.Max(scale, math.Abs(float64(a[i])))
		}
		return d, scale
	}
	want := grad(false, func(tr *Trainer) error { _, _, err := tr.Accumulate(ids, mask, coef, nil); return err })
	cand, c1 := make([][][]int32, len(ids)), make([][][]float32, len(ids))
	for b := range ids {
		for j := 0; j+1 < len(ids[b]); j++ {
			cand[b] = append(cand[b], []int32{ids[b][j+1]})
			c1[b] = append(c1[b], []float32{coef[b][j]})
		}
	}
	last := base.cfg.NumLayers - 1
	for _, c := range []struct {
		name  string
		remat bool
		acc   func(tr *Trainer) error
	}{
		{"token set", false, func(tr *Trainer) error { _, err := tr.AccumulateTokenSet(ids, mask, cand, c1); return err }},
		{"last layer", false, func(tr *Trainer) error { _, err := tr.AccumulateLayer(ids, mask, coef, last, true); return err }},
		{"token set, checkpointed", true, func(tr *Trainer) error { _, err := tr.AccumulateTokenSet(ids, mask, cand, c1); return err }},
	} {
		got := grad(c.remat, c.acc)
		if d, scale := diff(want, got); scale == 0 || d > 1e-5*scale {
			t.Errorf("%s: adapter gradient off Accumulate's by %.3g (scale %.3g)", c.name, d, scale)
		}
	}
	head := NewValueHead(base.cfg.HiddenSize)
	for i := range head.W {
		head.W[i] = float32(i%5) - 2 // a zero head passes no gradient to the trunk
	}
	g := grad(false, func(tr *Trainer) error { _, err := tr.AccumulateValue(ids, mask, head, coef); return err })
	if _, scale := diff(g, g); scale == 0 {
		t.Error("value surrogate: zero adapter gradient")
	}
}
