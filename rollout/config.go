// Package rollout samples responses from a policy on the host: it turns the next-token logits a
// Decoder returns into tokens (temperature, top-k, top-p, min-p, stop tokens, max new tokens),
// seeded and batched, and records per token the behaviour log-probability of the distribution
// actually sampled from, plus the untransformed log-probability, entropy and self-certainty that
// training and evaluation need without a second forward pass.
//
// The logit pipeline follows Hugging Face generate (spec C7): temperature → top-k → top-p →
// min-p → sample. It is pure Go on []float32 and knows nothing about GoMLX; *model.Decoder
// satisfies Decoder.
package rollout

import (
	"fmt"
	"math"
)

// TransformOrder names the order in which Sample applies the logit transforms; record it in run
// metadata so that behaviour log-probabilities can be interpreted later.
const TransformOrder = "temperature,top_k,top_p,min_p"

// Finish reasons of a Completion.
const (
	FinishStop   = "stop"   // a stop token was sampled (it is the last token of the completion)
	FinishLength = "length" // MaxNewTokens tokens were sampled without a stop token
)

// Config is one sampling configuration. The zero value is not useful (temperature 0 is greedy and
// MaxNewTokens 0 is invalid); start from DefaultConfig.
type Config struct {
	// Temperature divides the logits; 0 means greedy decoding (argmax, ties to the lowest id),
	// where TopK, TopP and MinP have no effect.
	Temperature float64
	// TokenTemperature, when set, replaces Temperature per generated token: it gets the model's
	// next-token entropy (nats) at that position and returns the temperature to sample it with
	// (HAPO's entropy-adaptive sampling). It must return a finite value > 0 and be safe for
	// concurrent use. Ignored when greedy (Temperature 0).
	TokenTemperature func(entropy float64) float64
	// TopK keeps the tokens whose (tempered) logit is at least the K-th largest; ties with the
	// K-th are kept, so more than K may survive. 0 or -1 disables it.
	TopK int
	// TopP keeps the smallest set of most probable tokens whose mass reaches TopP (nucleus
	// sampling, HF ascending-cumulative rule). 0 or 1 disables it.
	TopP float64
	// MinP removes tokens whose probability is below MinP times the largest probability. 0
	// disables it.
	MinP float64
	// MaxNewTokens bounds the completion length (stop token included); must be >= 1.
	MaxNewTokens int
	// StopTokens end a completion when sampled (e.g. the tokenizer's EOS and end-of-turn ids).
	StopTokens []int32
	// StatsAfterLast also records the self-certainty of the distribution after the last token
	// (Completion.AfterSelfCertainty), which the official self-certainty script uses (spec C1,
	// one-position shift). It costs at most one extra decoder step, so the decoder needs room for
	// MaxNewTokens+1 tokens after the longest prompt.
	StatsAfterLast bool
}

// DefaultConfig is plain temperature-1 sampling of at most 256 new tokens with no stop tokens.
func DefaultConfig() Config {
	return Config{Temperature: 1, TopP: 1, MaxNewTokens: 256}
}

// Validate reports the first invalid field, naming it and the accepted range.
func (c Config) Validate() error {
	switch {
	case math.IsNaN(c.Temperature) || math.IsInf(c.Temperature, 0) || c.Temperature < 0:
		return fmt.Errorf("rollout: temperature = %v, want a finite value >= 0 (0 = greedy)", c.Temperature)
	case c.TopK < -1:
		return fmt.Errorf("rollout: top_k = %d, want >= 1, or 0 or -1 to disable", c.TopK)
	case math.IsNaN(c.TopP) || c.TopP < 0 || c.TopP > 1:
		return fmt.Errorf("rollout: top_p = %v, want 0 < top_p <= 1 (0 or 1 disables)", c.TopP)
	case math.IsNaN(c.MinP) || c.MinP < 0 || c.MinP > 1:
		return fmt.Errorf("rollout: min_p = %v, want 0 <= min_p <= 1 (0 disables)", c.MinP)
	case c.MaxNewTokens < 1:
		return fmt.Errorf("rollout: max_new_tokens = %d, want >= 1", c.MaxNewTokens)
	}
	for _, t := range c.StopTokens {
		if t < 0 {
			return fmt.Errorf("rollout: stop token %d is negative; token ids are >= 0", t)
		}
	}
	return nil
}

// greedy reports whether c decodes by argmax.
func (c Config) greedy() bool { return c.Temperature == 0 }
