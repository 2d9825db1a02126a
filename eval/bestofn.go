package eval

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Sample is one scored response to one prompt.
type Sample struct {
	// Answer is the extracted, normalised final answer; nil when none could be extracted.
	Answer *string `json:"answer"`
	// Correct is the task verifier's verdict on this response.
	Correct bool `json:"correct"`
	// Score is an external score (a reward function or a reward model); used by StrategyScorer.
	Score float64 `json:"score,omitempty"`
	// Q is a value critic's score of the response (value.Critic.Score: Q of its last action);
	// used by QValue.
	Q float64 `json:"q,omitempty"`
	// SelfCertainty is the mean per-token self-certainty of the response (spec C1).
	SelfCertainty float64 `json:"self_certainty"`
	// MeanLogProb is the mean per-token log-probability of the response under the model.
	MeanLogProb float64 `json:"mean_logprob"`
	// Length is the number of response tokens.
	Length int `json:"length"`
	// Truncated is true when the response hit the token limit before a stop token.
	Truncated bool `json:"truncated"`
}

// Strategy picks one of N samples of the same prompt; -1 means "no answer" (counted wrong).
// The samples arrive in their original order; eq compares answers.
type Strategy struct {
	Name   string
	Select func(samples []Sample, eq Equal) int
}

// Names of the built-in strategies.
const (
	StrategyFirst  = "first"          // the first sample: what a single sample achieves (pass@1 in expectation)
	StrategyMajor  = "majority"       // majority vote over answers (Borda with power 0)
	StrategySC     = "self-certainty" // argmax of self-certainty
	StrategyBorda  = "sc-borda"       // Borda vote weighted by self-certainty rank, power 0.5
	StrategyLogP   = "mean-logprob"   // argmax of the mean token log-probability
	StrategyScorer = "scorer"         // argmax of Sample.Score
	StrategyOracle = "oracle"         // correct if any sample is (pass@N): an upper bound
	StrategyQ      = "q-value"        // argmax of Sample.Q (a value critic; Digi-Q / B-Coder ranking)
)

// DefaultStrategies are the strategies Run reports when Options.Strategies is empty. The scorer is
// not among them because Score is only meaningful when the caller filled it in; add Scorer().
func DefaultStrategies() []Strategy {
	return []Strategy{First(), Majority(), SelfCertaintyArgmax(), Borda(0.5), MeanLogProb(), Oracle()}
}

// First selects the first sample.
func First() Strategy {
	return Strategy{StrategyFirst, func(s []Sample, _ Equal) int { return 0 }}
}

// Majority selects a sample carrying the most frequent answer (ties → the answer seen first).
func Majority() Strategy {
	return Strategy{StrategyMajor, func(s []Sample, eq Equal) int {
		w, _ := MajorityVote(answersOf(s), eq)
		return w
	}}
}

// Borda selects by spec C1's self-certainty Borda vote with the given power (the paper's script
// uses 0.5). Its name is "sc-borda" for 0.5 and "sc-borda-p<power>" otherwise.
func Borda(power float64) Strategy {
	name := StrategyBorda
	if power != 0.5 {
		name = StrategyBorda + "-p" + strconv.FormatFloat(power, 'g', -1, 64)
	}
	return Strategy{name, func(s []Sample, eq Equal) int {
		sc := make([]float64, len(s))
		for i := range s {
			sc[i] = s[i].SelfCertainty
		}
		w, _ := BordaVote(answersOf(s), sc, power, eq)
		return w
	}}
}

// SelfCertaintyArgmax selects the most self-certain sample.
func SelfCertaintyArgmax() Strategy {
	return Strategy{StrategySC, func(s []Sample, _ Equal) int {
		return argmaxAnswered(s, func(x Sample) float64 { return x.SelfCertainty })
	}}
}

// MeanLogProb selects the sample with the highest mean token log-probability.
func MeanLogProb() Strategy {
	return Strategy{StrategyLogP, func(s []Sample, _ Equal) int {
		return argmaxAnswered(s, func(x Sample) float64 { return x.MeanLogProb })
	}}
}

// Scorer selects the sample with the highest external Score.
func Scorer() Strategy {
	return Strategy{StrategyScorer, func(s []Sample, _ Equal) int {
		return argmaxAnswered(s, func(x Sample) float64 { return x.Score })
	}}
}

// QValue selects the sample a value critic scores highest (Sample.Q): the ranker of Digi-Q's
// Best-of-N and B-Coder's post-processing. Like the other argmax strategies it ranks samples
// without an extracted answer below answered ones; ties go to the first.
func QValue() Strategy {
	return Strategy{StrategyQ, func(s []Sample, _ Equal) int {
		return argmaxAnswered(s, func(x Sample) float64 { return x.Q })
	}}
}

// Oracle selects a correct sample when there is one: the pass@N upper bound of any selector.
func Oracle() Strategy {
	return Strategy{StrategyOracle, func(s []Sample, _ Equal) int {
		if i := slices.IndexFunc(s, func(x Sample) bool { return x.Correct }); i >= 0 {
			return i
		}
		return 0
	}}
}

// argmaxAnswered returns the first sample with the largest key, ranking samples without an
// extracted answer below all answered ones (spec C1 gives them -Inf); NaN keys rank lowest.
// When no sample has an answer (tasks without extraction) it is a plain argmax.
func argmaxAnswered(s []Sample, key func(Sample) float64) int {
	anyAnswer := slices.ContainsFunc(s, func(x Sample) bool { return x.Answer != nil })
	best, bestKey := -1, math.Inf(-1)
	for i, x := range s {
		if anyAnswer && x.Answer == nil {
			continue
		}
		k := key(x)
		if math.IsNaN(k) {
			k = math.Inf(-1)
		}
		if best < 0 || k > bestKey {
			best, bestKey = i, k
		}
	}
	return best
}

func answersOf(s []Sample) []*string {
	a := make([]*string, len(s))
	for i := range s {
		a[i] = s[i].Answer
	}
	return a
}

// subsetAccuracy returns, for each strategy, its expected correctness on a random size-N subset
// of samples: exact (one evaluation) when N >= len(samples), otherwise the mean over `trials`
// seeded subsets. All strategies see the same subsets (common random numbers, so their
// differences are not sampling noise of the subsets). A subset comes in random order, so the
// order-based tie rules (first answer seen, first argmax) break ties at random, as they would on
// fresh i.i.d. samples, and "first" is a uniformly random sample.
func subsetAccuracy(samples []Sample, N, trials int, sts []Strategy, eq Equal, rng *rand.Rand) []float64 {
	acc := make([]float64, len(sts))
	if N >= len(samples) {
		for k, st := range sts {
			acc[k] = correctness(samples, st.Select(samples, eq))
		}
		return acc
	}
	idx := make([]int, len(samples))
	sub := make([]Sample, N)
	for range trials {
		pickSubset(idx, N, rng)
		for j, i := range idx[:N] {
			sub[j] = samples[i]
		}
		for k, st := range sts {
			acc[k] += correctness(sub, st.Select(sub, eq))
		}
	}
	for k := range acc {
		acc[k] /= float64(trials)
	}
	return acc
}

// pickSubset puts a uniformly random ordered N-subset of 0..len(idx)-1 in idx[:N].
func pickSubset(idx []int, N int, rng *rand.Rand) {
	for i := range idx {
		idx[i] = i
	}
	for i := range N { // partial Fisher–Yates
		j := i + rng.IntN(len(idx)-i)
		idx[i], idx[j] = idx[j], idx[i]
	}
}

func correctness(s []Sample, i int) float64 {
	if i >= 0 && i < len(s) && s[i].Correct {
		return 1
	}
	return 0
}
