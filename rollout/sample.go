package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// Decoder produces next-token logits incrementally (with a KV cache). *model.Decoder satisfies it.
type Decoder interface {
	// Prefill starts a batch from ragged prompts and returns each row's next-token logits [B][V].
	Prefill(prompts [][]int32) ([][]float32, error)
	// Step appends one token per row and returns the next-token logits [B][V].
	Step(tokens []int32) ([][]float32, error)
}

// Completion is one sampled response.
//
// All per-token slices have len(Tokens) entries; entry t describes the distribution that produced
// Tokens[t] (the logits after the prompt and Tokens[:t]).
type Completion struct {
	// Tokens are the sampled ids; with Finish == FinishStop the last one is the stop token.
	Tokens []int32
	// LogProbs are the behaviour log-probabilities: log q(token) under the distribution actually
	// sampled from, i.e. softmax of the tempered logits renormalised over the tokens that survived
	// top-k, top-p and min-p. With temperature 1 and no filter they equal ModelLogProbs. Under
	// greedy decoding (temperature 0) they are ModelLogProbs (a point mass would give 0, which no
	// trainer can reproduce).
	LogProbs []float32
	// RawLogProbs are log_softmax(z/T) before filtering (spec C7 "lpRaw"); ModelLogProbs when greedy.
	RawLogProbs []float32
	// ModelLogProbs are log_softmax(z): what a separate forward pass (model.LogProbs) recomputes.
	ModelLogProbs []float32
	// Entropy is the entropy of softmax(z) in nats (the model's, untransformed distribution).
	Entropy []float32
	// SelfCertainty is KL(U || softmax(z)) per token (spec C1); eval averages it over the response.
	SelfCertainty []float32
	// Temperature is the temperature each token was sampled with; nil unless Config.TokenTemperature.
	Temperature []float32
	// Finish is FinishStop or FinishLength.
	Finish string
	// AfterSelfCertainty is the self-certainty of the distribution after the last token; NaN
	// unless Config.StatsAfterLast.
	AfterSelfCertainty float32
}

// Sample draws one completion per prompt. The same decoder outputs, cfg and seed give the same
// completions: row i draws from its own PCG stream seeded by (seed, i), so rows are independent of
// each other and of how many goroutines process them.
//
// A row that has finished keeps being fed its stop token (the decoder needs one token per row) but
// its completion no longer changes; decoding ends when every row has finished (plus one step when
// cfg.StatsAfterLast needs the distribution after the last token of the last rows).
func Sample(dec Decoder, prompts [][]int32, cfg Config, seed uint64) ([]Completion, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("rollout: no prompts to sample from")
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("rollout: prompt %d is empty; every prompt needs at least one token (e.g. BOS)", i)
		}
	}
	B := len(prompts)
	samplers := make([]*sampler, B)
	for i := range samplers {
		var rng *rand.Rand
		if !cfg.greedy() {
			rng = rand.New(rand.NewPCG(seed, uint64(i)))
		}
		samplers[i] = newSampler(cfg, rng)
	}
	out := make([]Completion, B)
	for i := range out {
		n := min(cfg.MaxNewTokens, 64)
		out[i] = Completion{
			Tokens: make([]int32, 0, n), LogProbs: make([]float32, 0, n), RawLogProbs: make([]float32, 0, n),
			ModelLogProbs: make([]float32, 0, n), Entropy: make([]float32, 0, n), SelfCertainty: make([]float32, 0, n),
			AfterSelfCertainty: float32(math.NaN()),
		}
	}
	done := make([]bool, B)
	after := make([]bool, B) // finished, waiting for the distribution after the last token
	next := make([]int32, B)

	logits, err := dec.Prefill(prompts)
	if err != nil {
		return nil, fmt.Errorf("rollout: prefill: %w", err)
	}
	for t := 0; ; t++ {
		if err := checkLogits(logits, B, cfg.StopTokens); err != nil {
			return nil, fmt.Errorf("rollout: step %d: %w", t, err)
		}
		for i := range after {
			if after[i] {
				st, err := Stats(logits[i])
				if err != nil {
					return nil, fmt.Errorf("rollout: step %d: row %d: %w", t, i, err)
				}
				out[i].AfterSelfCertainty, after[i] = float32(st.SelfCertainty), false
			}
		}
		if err := chooseAll(samplers, logits, done, out); err != nil {
			return nil, fmt.Errorf("rollout: step %d: %w", t, err)
		}
		active, waiting := 0, 0
		for i := range out {
			if done[i] {
				continue
			}
			c := &out[i]
			last := c.Tokens[len(c.Tokens)-1]
			next[i] = last
			switch {
			case slices.Contains(cfg.StopTokens, last):
				c.Finish, done[i] = FinishStop, true
			case len(c.Tokens) >= cfg.MaxNewTokens:
				c.Finish, done[i] = FinishLength, true
			default:
				active++
			}
			if done[i] && cfg.StatsAfterLast {
				after[i] = true
				waiting++
			}
		}
		if active == 0 && waiting == 0 {
			return out, nil
		}
		if logits, err = dec.Step(next); err != nil {
			return nil, fmt.Errorf("rollout: decode step %d: %w", t+1, err)
		}
	}
}

// SampleGroups draws g completions for every prompt in one batch of len(prompts)*g rows and
// returns them grouped by prompt: out[i][j] is the j-th sample of prompts[i].
func SampleGroups(dec Decoder, prompts [][]int32, g int, cfg Config, seed uint64) ([][]Completion, error) {
	if g < 1 {
		return nil, fmt.Errorf("rollout: group size = %d, want >= 1", g)
	}
	flat, err := Sample(dec, Repeat(prompts, g), cfg, seed)
	if err != nil {
		return nil, err
	}
	out := make([][]Completion, len(prompts))
	for i := range out {
		out[i] = flat[i*g : (i+1)*g : (i+1)*g]
	}
	return out, nil
}

// Repeat returns each prompt g times in a row (prompt-major order), sharing the underlying slices.
func Repeat(prompts [][]int32, g int) [][]int32 {
	out := make([][]int32, 0, len(prompts)*g)
	for _, p := range prompts {
		for range g {
			out = append(out, p)
		}
	}
	return out
}

// checkLogits rejects decoder output of the wrong shape.
func checkLogits(logits [][]float32, B int, stop []int32) error {
	if len(logits) != B {
		return fmt.Errorf("decoder returned %d logit rows for a batch of %d", len(logits), B)
	}
	V := len(logits[0])
	for i, row := range logits {
		if len(row) != V || V == 0 {
			return fmt.Errorf("decoder returned logit row %d of length %d, row 0 has %d", i, len(row), V)
		}
	}
	for _, t := range stop {
		if int(t) >= V {
			return fmt.Errorf("stop token %d is outside the vocabulary of %d tokens", t, V)
		}
	}
	return nil
}

// chooseAll draws the next token of every unfinished row, in parallel when the work is large
// enough to pay for goroutines. Each row has its own sampler, so the result does not depend on the
// number of workers.
func chooseAll(samplers []*sampler, logits [][]float32, done []bool, out []Completion) error {
	B := len(samplers)
	errs := make([]error, B)
	one := func(i int) {
		if done[i] {
			return
		}
		p, err := samplers[i].choose(logits[i])
		if err != nil {
			errs[i] = fmt.Errorf("row %d: %w", i, err)
			return
		}
		c := &out[i]
		c.Tokens = append(c.Tokens, p.token)
		c.LogProbs = append(c.LogProbs, float32(p.logp))
		c.RawLogProbs = append(c.RawLogProbs, float32(p.rawLogp))
		c.ModelLogProbs = append(c.ModelLogProbs, float32(p.modelLog))
		c.Entropy = append(c.Entropy, float32(p.stats.Entropy))
		c.SelfCertainty = append(c.SelfCertainty, float32(p.stats.SelfCertainty))
		if samplers[i].cfg.TokenTemperature != nil && !samplers[i].cfg.greedy() {
			c.Temperature = append(c.Temperature, float32(p.temp))
		}
	}
	workers := min(runtime.GOMAXPROCS(0), B)
	if workers <= 1 || B*len(logits[0]) < 1<<15 {
		for i := range B {
			one(i)
		}
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < B; i += workers {
					one(i)
				}
			})
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
