package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
)

// sampleBenchOptions is one sampling benchmark: Batch random prompts of PromptLen tokens, NewTokens
// sampled per row (temperature 1, no stop token, so every row generates them all).
type sampleBenchOptions struct {
	Name                                string // preset or config file
	Batch, PromptLen, NewTokens, Rounds int
	Seed                                int64
	Compute                             model.ComputeOptions
	WarmUp                              bool
}

// sampleBenchResult is what `polo model bench --mode sample` prints (one JSON object).
type sampleBenchResult struct {
	Config          string               `json:"config"`
	Params          int                  `json:"params"`
	Batch           int                  `json:"batch"`
	PromptLen       int                  `json:"prompt_len"`
	NewTokens       int                  `json:"new_tokens"`
	Compute         model.ComputeOptions `json:"compute"`
	Capacity        int                  `json:"cache_slots"`
	WarmUpSeconds   float64              `json:"warmup_s"`
	FirstRoundS     float64              `json:"first_round_s"` // includes compilation without --warmup
	RoundSeconds    []float64            `json:"round_s"`       // each round: prefill + every decode step + host sampling
	PrefillSeconds  float64              `json:"prefill_s"`     // best round
	DecodeStepMean  float64              `json:"decode_step_mean_s"`
	DecodeStepMed   float64              `json:"decode_step_median_s"`
	HostSeconds     float64              `json:"host_sampling_s"` // best round: time outside the decoder (sampling on the host)
	TokensPerSecond float64              `json:"tokens_per_s"`    // best round: Batch×NewTokens / round time
	WeightBytes     int64                `json:"weight_bytes"`    // float32 weights the decode step reads
	KVCacheBytes    int64                `json:"kv_cache_bytes"`  // float32 cache (read in full each step)
	Compile         model.CompileStats   `json:"compile"`
}

// timedDecoder records the time of each Prefill and Step call (device work plus the logits' copy
// to the host).
type timedDecoder struct {
	d       *model.Decoder
	prefill time.Duration
	steps   []time.Duration
}

func (t *timedDecoder) Prefill(p [][]int32) ([][]float32, error) {
	t0 := time.Now()
	out, err := t.d.Prefill(p)
	t.prefill = time.Since(t0)
	return out, err
}

func (t *timedDecoder) Step(tok []int32) ([][]float32, error) {
	t0 := time.Now()
	out, err := t.d.Step(tok)
	t.steps = append(t.steps, time.Since(t0))
	return out, err
}

// benchSample times KV-cache sampling of a model with random weights.
func benchSample(cfg model.Config, o sampleBenchOptions, stdout, stderr io.Writer) error {
	if o.Batch < 1 || o.PromptLen < 1 || o.NewTokens < 1 || o.Rounds < 1 {
		return usagef("model bench --mode sample: want --batch, --prompt-len, --new-tokens and --rounds >= 1")
	}
	say := func(f string, a ...any) { fmt.Fprintf(stderr, "sample: "+f+"\n", a...) }
	m, err := model.New(cfg, o.Seed)
	if err != nil {
		return err
	}
	if err := m.SetCompute(o.Compute); err != nil {
		return usagef("model bench: %v", err)
	}
	before := model.GlobalCompileStats()
	dec, err := m.NewDecoder(o.Batch, o.PromptLen+o.NewTokens)
	if err != nil {
		return err
	}
	c := m.Config()
	res := sampleBenchResult{Config: o.Name, Params: m.NumParams(), Batch: o.Batch, PromptLen: o.PromptLen, NewTokens: o.NewTokens, Compute: m.Compute(),
		Capacity: dec.Capacity(), WeightBytes: 4 * int64(m.NumParams()),
		KVCacheBytes: 4 * 2 * int64(c.NumLayers) * int64(o.Batch) * int64(c.NumKVHeads) * int64(dec.Capacity()) * int64(c.HeadDim)}
	if o.WarmUp {
		t := time.Now()
		if err := dec.WarmUp(o.PromptLen); err != nil {
			return err
		}
		res.WarmUpSeconds = time.Since(t).Seconds()
		say("warm-up compiled prefill and decode in %.1f s", res.WarmUpSeconds)
	}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 7))
	prompts := make([][]int32, o.Batch)
	for i := range prompts {
		prompts[i] = make([]int32, o.PromptLen)
		for j := range prompts[i] {
			prompts[i][j] = int32(rng.IntN(c.VocabSize))
		}
	}
	sc := rollout.DefaultConfig()
	sc.MaxNewTokens = o.NewTokens
	best := -1.0
	for r := 0; r < o.Rounds; r++ {
		td := &timedDecoder{d: dec}
		t0 := time.Now()
		comps, err := rollout.Sample(td, prompts, sc, uint64(o.Seed)+uint64(r))
		if err != nil {
			return err
		}
		total := time.Since(t0).Seconds()
		n := 0
		for _, cp := range comps {
			n += len(cp.Tokens)
		}
		res.RoundSeconds = append(res.RoundSeconds, total)
		if r == 0 {
			res.FirstRoundS = total
		}
		steps := make([]float64, len(td.steps))
		var sum float64
		for i, d := range td.steps {
			steps[i] = d.Seconds()
			sum += steps[i]
		}
		say("round %d: %.2f s, %d tokens, prefill %.3f s, %d decode steps", r+1, total, n, td.prefill.Seconds(), len(steps))
		if best < 0 || total < best {
			best = total
			slices.Sort(steps)
			res.PrefillSeconds = td.prefill.Seconds()
			if len(steps) > 0 {
				res.DecodeStepMean = sum / float64(len(steps))
				res.DecodeStepMed = steps[len(steps)/2]
			}
			res.HostSeconds = total - td.prefill.Seconds() - sum
			res.TokensPerSecond = float64(n) / total
		}
	}
	res.Compile = model.CompileSince(before)
	return json.NewEncoder(stdout).Encode(res)
}
