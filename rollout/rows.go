package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/internal/fmath"
)

// Row is one independently configured sequence of a mixed batch: a server batches the rows of
// unrelated requests, each with its own sampling settings and seed, into one decoder batch.
type Row struct {
	Prompt []int32
	// Config is this row's sampling configuration (StatsAfterLast is not supported here).
	Config Config
	// Seed and Stream seed the row's PCG source. Sample uses (seed, row index), so rows with
	// Seed = s and Stream = i draw exactly what row i of Sample(…, s) draws from the same logits.
	Seed, Stream uint64
	// TopLogProbs > 0 asks for the that many most likely tokens of the model distribution
	// log_softmax(z) at every step (OpenAI's top_logprobs).
	TopLogProbs int
}

// TopToken is one entry of a top-log-prob list: a token and its model log-probability.
type TopToken struct {
	Token   int32
	LogProb float32
}

// RowStep reports the token a row has just sampled. c holds the row's completion so far (its last
// token is the new one); top is the row's top list for this step (nil unless Row.TopLogProbs > 0).
// Returning true ends the row now with FinishStop (a stop string matched, or the client left).
// It is called from the sampling goroutine, row after row, and must not keep c or top.
type RowStep func(row int, c *Completion, top []TopToken) (end bool)

// SampleRows draws one completion per row, each with its own configuration and seed, in one
// decoder batch. Decoding ends when every row has finished (stop token, its own MaxNewTokens, or
// the callback); a finished row keeps being fed its last token but no longer changes.
func SampleRows(dec Decoder, rows []Row, each RowStep) ([]Completion, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("rollout: no rows to sample")
	}
	B := len(rows)
	samplers := make([]*sampler, B)
	prompts := make([][]int32, B)
	var stops []int32
	for i, r := range rows {
		if err := r.Config.Validate(); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		if len(r.Prompt) == 0 {
			return nil, fmt.Errorf("rollout: row %d has an empty prompt; every prompt needs at least one token", i)
		}
		if r.TopLogProbs < 0 {
			return nil, fmt.Errorf("rollout: row %d asks for %d top log-probs, want >= 0", i, r.TopLogProbs)
		}
		cfg := r.Config
		cfg.StatsAfterLast = false
		var rng *rand.Rand
		if !cfg.greedy() {
			rng = rand.New(rand.NewPCG(r.Seed, r.Stream))
		}
		samplers[i] = newSampler(cfg, rng)
		prompts[i] = r.Prompt
		stops = append(stops, cfg.StopTokens...)
	}
	out := make([]Completion, B)
	for i := range out {
		out[i].AfterSelfCertainty = float32(math.NaN())
	}
	done := make([]bool, B)
	next := make([]int32, B)
	var top []TopToken
	logits, err := dec.Prefill(prompts)
	if err != nil {
		return nil, fmt.Errorf("rollout: prefill: %w", err)
	}
	for t := 0; ; t++ {
		if err := checkLogits(logits, B, stops); err != nil {
			return nil, fmt.Errorf("rollout: step %d: %w", t, err)
		}
		if err := chooseAll(samplers, logits, done, out); err != nil {
			return nil, fmt.Errorf("rollout: step %d: %w", t, err)
		}
		active := 0
		for i := range out {
			if done[i] {
				continue
			}
			c := &out[i]
			last := c.Tokens[len(c.Tokens)-1]
			next[i] = last
			top = top[:0]
			if k := rows[i].TopLogProbs; k > 0 {
				top = TopLogProbs(top, logits[i], k)
			}
			cfg := samplers[i].cfg
			switch {
			case slices.Contains(cfg.StopTokens, last):
				c.Finish, done[i] = FinishStop, true
			case len(c.Tokens) >= cfg.MaxNewTokens:
				c.Finish, done[i] = FinishLength, true
			}
			if each != nil && each(i, c, top) && !done[i] {
				c.Finish, done[i] = FinishStop, true
			}
			if !done[i] {
				active++
			}
		}
		if active == 0 {
			return out, nil
		}
		if logits, err = dec.Step(next); err != nil {
			return nil, fmt.Errorf("rollout: decode step %d: %w", t+1, err)
		}
	}
}

// TopLogProbs appends to dst the k most likely tokens of log_softmax(z), most likely first (ties
// to the lower id), with their log-probabilities.
func TopLogProbs(dst []TopToken, z []float32, k int) []TopToken {
	avxstate.Clear() // scalar loops over the vocabulary follow
	k = min(k, len(z))
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += fmath.Exp(float64(v) - m)
	}
	logS := math.Log(s)
	start := len(dst)
	for j, v := range z {
		n := len(dst) - start
		if n == k && v <= z[dst[len(dst)-1].Token] {
			continue
		}
		// insertion into the sorted tail: larger logits first, earlier ids first among equals
		pos := n
		for pos > 0 && z[dst[start+pos-1].Token] < v {
			pos--
		}
		if n < k {
			dst = append(dst, TopToken{})
		} else if pos == n {
			continue
		}
		copy(dst[start+pos+1:], dst[start+pos:len(dst)-1])
		dst[start+pos] = TopToken{Token: int32(j)}
	}
	for i := start; i < len(dst); i++ {
		dst[i].LogProb = float32(float64(z[dst[i].Token]) - m - logS)
	}
	return dst
}
