package model

import (
	"embed"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// presets/*.json are the config.json files of published checkpoints, as Hugging Face serves them,
// so that benchmarks run the real shapes with random weights (no download).
//
//go:embed presets/*.json
var presetFiles embed.FS

// HFPresets lists the names of the embedded published configurations.
func HFPresets() []string {
	ents, _ := presetFiles.ReadDir("presets")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(out)
	return out
}

// HFPreset returns the configuration of a published checkpoint by name (e.g. "qwen2.5-0.5b").
func HFPreset(name string) (Config, error) {
	data, err := presetFiles.ReadFile("presets/" + name + ".json")
	if err != nil {
		return Config{}, fmt.Errorf("unknown preset %q; known: %s", name, strings.Join(HFPresets(), ", "))
	}
	return ParseConfig(data)
}

// BenchOptions is one training-step benchmark: full fine-tuning or a LoRA adapter, with or without
// activation checkpointing, on a batch of Batch rows of Seq tokens.
type BenchOptions struct {
	LoRA    *LoRAConfig // nil: full fine-tuning
	Remat   bool
	Batch   int
	Seq     int
	Steps   int // timed steps after the first (which includes compilation)
	Seed    int64
	Compute ComputeOptions // bf16 autocast, fused attention
	WarmUp  bool           // compile the step's graphs before the first step (timed as WarmUpSeconds)
	Verbose func(format string, a ...any)
}

// BenchResult holds what one benchmark measured.
type BenchResult struct {
	Params, Trainable int
	InitSeconds       float64   // building the random weights
	FirstStepSeconds  float64   // first step, including graph compilation
	StepSeconds       []float64 // later steps (Accumulate + Step)
	RSSAfterInit      uint64    // resident memory with the weights in place
	PeakRSS           uint64    // peak resident memory over the whole run
	PeakStepRSS       uint64    // peak resident memory during the steps alone (after a reset), 0 if unknown
	Loss              float64   // mean token NLL of the first step (a sanity figure: ≈ ln V for random weights)
	WarmUpSeconds     float64   // compiling the graphs before the first step (with WarmUp)
	Compile           CompileStats
	Compute           ComputeOptions
}

// Bench builds a model of cfg with random weights and times training steps (forward, backward,
// AdamW) on a random batch, recording resident memory. Run each configuration in its own process
// for a clean peak.
func Bench(cfg Config, o BenchOptions) (res BenchResult, err error) {
	say := o.Verbose
	if say == nil {
		say = func(string, ...any) {}
	}
	t0 := time.Now()
	m, err := New(cfg, o.Seed)
	if err != nil {
		return res, err
	}
	res.InitSeconds = time.Since(t0).Seconds()
	res.Params = m.NumParams()
	res.Trainable = res.Params
	if o.LoRA != nil {
		if m, err = m.AddAdapter(*o.LoRA); err != nil {
			return res, err
		}
		res.Trainable = m.NumAdapterParams()
	}
	res.RSSAfterInit, _ = CurrentRSS()
	say("weights ready in %.1f s: %d parameters, %d trainable, RSS %.2f GiB", res.InitSeconds, res.Params, res.Trainable, float64(res.RSSAfterInit)/(1<<30))
	tr, err := NewTrainer(m, OptimConfig{LR: 1e-5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, ClipNorm: 1})
	if err != nil {
		return res, err
	}
	tr.SetActivationCheckpointing(o.Remat)
	if err := m.SetCompute(o.Compute); err != nil {
		return res, err
	}
	res.Compute = m.Compute()
	before := GlobalCompileStats()
	defer func() { res.Compile = CompileSince(before) }()
	if o.WarmUp {
		t := time.Now()
		if err := tr.WarmUp(o.Batch, o.Seq, 1); err != nil {
			return res, err
		}
		res.WarmUpSeconds = time.Since(t).Seconds()
		say("warm-up compiled the step's graphs in %.1f s", res.WarmUpSeconds)
	}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 11))
	ids, mask, coef := make([][]int32, o.Batch), make([][]int32, o.Batch), make([][]float32, o.Batch)
	n := float32(o.Batch * (o.Seq - 1))
	for i := range ids {
		ids[i], mask[i], coef[i] = make([]int32, o.Seq), make([]int32, o.Seq), make([]float32, o.Seq-1)
		for j := range ids[i] {
			ids[i][j], mask[i][j] = int32(rng.IntN(cfg.VocabSize)), 1
		}
		for j := range coef[i] {
			coef[i][j] = -1 / n // SFT cross-entropy, mean over tokens
		}
	}
	step := func() (float64, float64, error) {
		t := time.Now()
		lp, _, err := tr.Accumulate(ids, mask, coef, nil)
		if err != nil {
			return 0, 0, err
		}
		if _, err := tr.Step(1e-5); err != nil {
			return 0, 0, err
		}
		var nll float64
		for _, row := range lp {
			for _, v := range row {
				nll -= float64(v)
			}
		}
		return time.Since(t).Seconds(), nll / float64(n), nil
	}
	canReset := ResetPeakRSS()
	if res.FirstStepSeconds, res.Loss, err = step(); err != nil {
		return res, err
	}
	say("first step (with compilation) %.1f s, loss %.3f", res.FirstStepSeconds, res.Loss)
	for i := 0; i < o.Steps; i++ {
		s, _, err := step()
		if err != nil {
			return res, err
		}
		res.StepSeconds = append(res.StepSeconds, s)
		say("step %d: %.1f s", i+2, s)
	}
	if canReset {
		res.PeakStepRSS, _ = PeakRSS()
	}
	res.PeakRSS = max(res.PeakStepRSS, res.RSSAfterInit)
	return res, nil
}

// CompileSince is what the process compiled since the statistics before (GlobalCompileStats).
func CompileSince(before CompileStats) CompileStats {
	now := GlobalCompileStats()
	d := CompileStats{Graphs: now.Graphs - before.Graphs, Seconds: now.Seconds - before.Seconds, ByName: map[string]int{}}
	for k, v := range now.ByName {
		if n := v - before.ByName[k]; n > 0 {
			d.ByName[k] = n
		}
	}
	return d
}
