package eval

import (
	"fmt"
	"math"
	"strconv"

	"github.com/polo-rl/polo/rollout"
)

// SampleFunc draws one completion per prompt for a batch of prompts, e.g. a closure over
// rollout.Sample with a model decoder and a rollout.Config.
type SampleFunc func(prompts [][]int32, seed uint64) ([]rollout.Completion, error)

// Judgement is what the task says about one completion.
type Judgement struct {
	Answer  *string // extracted, normalised answer; nil if none
	Correct bool
	Score   float64 // optional external score for StrategyScorer
}

// Judge decodes and checks completion c of prompt number example.
type Judge func(example int, c rollout.Completion) (Judgement, error)

// Generate draws n samples for every prompt, batch rows at a time (prompt-major order, so one
// batch holds whole groups when batch is a multiple of n), and judges them. Batch b is sampled
// with seed seed+b, so the result is a deterministic function of the inputs. Example IDs are the
// prompt indices; overwrite them if the task has its own.
func Generate(prompts [][]int32, n, batch int, seed uint64, sample SampleFunc, judge Judge) ([]Example, error) {
	switch {
	case len(prompts) == 0:
		return nil, fmt.Errorf("eval: no prompts to generate from")
	case n < 1:
		return nil, fmt.Errorf("eval: samples per prompt = %d, want >= 1", n)
	case batch < 1:
		return nil, fmt.Errorf("eval: batch size = %d, want >= 1", batch)
	}
	rows := rollout.Repeat(prompts, n)
	examples := make([]Example, len(prompts))
	for i := range examples {
		examples[i] = Example{ID: strconv.Itoa(i), Samples: make([]Sample, 0, n)}
	}
	for b, start := 0, 0; start < len(rows); b, start = b+1, start+batch {
		end := min(start+batch, len(rows))
		comps, err := sample(rows[start:end], seed+uint64(b))
		if err != nil {
			return nil, fmt.Errorf("eval: sample rows %d..%d: %w", start, end-1, err)
		}
		if len(comps) != end-start {
			return nil, fmt.Errorf("eval: sampler returned %d completions for %d prompts", len(comps), end-start)
		}
		for r, c := range comps {
			i := (start + r) / n
			j, err := judge(i, c)
			if err != nil {
				return nil, fmt.Errorf("eval: judge example %d: %w", i, err)
			}
			examples[i].Samples = append(examples[i].Samples, FromCompletion(c, j))
		}
	}
	return examples, nil
}

// FromCompletion summarises a sampled completion for evaluation: self-certainty is the mean of
// the per-token values (spec C1, the paper's alignment: the distributions that produced the
// tokens) and MeanLogProb the mean of the model's (untransformed) token log-probabilities.
func FromCompletion(c rollout.Completion, j Judgement) Sample {
	return Sample{Answer: j.Answer, Correct: j.Correct, Score: j.Score, Length: len(c.Tokens),
		Truncated:     c.Finish == rollout.FinishLength,
		SelfCertainty: mean32(c.SelfCertainty), MeanLogProb: mean32(c.ModelLogProbs)}
}

// ResponseSelfCertainty is a completion's self-certainty. With officialShift false it is the
// paper's: the mean over the distributions that produced the tokens (what FromCompletion uses).
// With officialShift true it reproduces the official script's one-position shift: the first
// token's distribution is dropped and the one after the last token added, which needs the
// completion to be sampled with rollout.Config.StatsAfterLast.
func ResponseSelfCertainty(c rollout.Completion, officialShift bool) (float64, error) {
	if !officialShift || len(c.SelfCertainty) == 0 {
		return mean32(c.SelfCertainty), nil
	}
	if math.IsNaN(float64(c.AfterSelfCertainty)) {
		return 0, fmt.Errorf("eval: the shifted self-certainty needs the distribution after the last token; sample with rollout.Config.StatsAfterLast")
	}
	n := len(c.SelfCertainty)
	return (mean32(c.SelfCertainty[1:])*float64(n-1) + float64(c.AfterSelfCertainty)) / float64(n), nil
}

func mean32(xs []float32) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += float64(x)
	}
	return s / float64(len(xs))
}
