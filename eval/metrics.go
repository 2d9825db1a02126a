// Package eval measures a policy from its samples: pass@1, unbiased pass@k, maj@k, and the
// accuracy of Best-of-N selection strategies (self-certainty with Borda voting, self-certainty,
// mean log-probability, majority vote, an external scorer) as N grows.
//
// Everything but Generate is pure functions on plain values: a caller that samples in another way
// (a remote engine, a saved JSONL) builds []Example itself. Answer extraction and equivalence
// belong to the task; eval only compares the strings it is given (see Options.Equal).
package eval

import (
	"fmt"
	"math"
	"sort"
)

// PassAtK is the unbiased estimator of pass@k from n samples of which c are correct (Chen et al.
// 2021): 1 - C(n-c, k)/C(n, k), computed as the product 1 - Π_{i=n-c+1..n} (1 - k/i), which never
// forms a binomial coefficient and so stays exact for large n.
func PassAtK(n, c, k int) (float64, error) {
	switch {
	case n < 1:
		return 0, fmt.Errorf("eval: pass@k needs at least one sample, got n = %d", n)
	case c < 0 || c > n:
		return 0, fmt.Errorf("eval: %d correct out of n = %d samples is impossible", c, n)
	case k < 1 || k > n:
		return 0, fmt.Errorf("eval: pass@%d needs 1 <= k <= n = %d samples per example", k, n)
	}
	if n-c < k {
		return 1, nil
	}
	prod := 1.0
	for i := n - c + 1; i <= n; i++ {
		prod *= 1 - float64(k)/float64(i)
	}
	return 1 - prod, nil
}

// scLogFloor clamps log p_j: one exact zero would make KL(U || p) infinite (spec C1).
const scLogFloor = -1e4

// TokenSelfCertainty is KL(U || p) = -log V - (1/V) Σ_j log p_j for one full next-token
// distribution given as log-softmax values (spec C1). It is 0 for the uniform distribution and
// grows as p concentrates.
func TokenSelfCertainty(logp []float64) float64 {
	var s float64
	for _, l := range logp {
		s += max(l, scLogFloor)
	}
	V := float64(len(logp))
	return -math.Log(V) - s/V
}

// SelfCertainty is the self-certainty of a response: the mean of TokenSelfCertainty over the
// distributions that produced its tokens ([n][V] log-softmax rows). It is 0 for an empty response.
func SelfCertainty(logprobs [][]float64) float64 {
	if len(logprobs) == 0 {
		return 0
	}
	var s float64
	for _, row := range logprobs {
		s += TokenSelfCertainty(row)
	}
	return s / float64(len(logprobs))
}

// Equal decides whether two extracted answers are the same answer.
type Equal func(a, b string) bool

func exactEqual(a, b string) bool { return a == b }

// buckets assigns each answered sample to the first earlier sample with an equivalent answer
// (its own index if none); unanswered samples get -1. With a non-transitive comparator this is
// the "first match" rule of spec C1.
func buckets(answers []*string, eq Equal) []int {
	if eq == nil {
		eq = exactEqual
	}
	b := make([]int, len(answers))
	for i, a := range answers {
		b[i] = -1
		if a == nil {
			continue
		}
		b[i] = i
		for j := range i {
			if answers[j] != nil && b[j] == j && eq(*answers[j], *a) {
				b[i] = j
				break
			}
		}
	}
	return b
}

// BordaVote is spec C1's self-certainty-weighted vote: samples are ranked by sc (descending,
// ties keep index order), the sample of rank r gives (N - r + 1)^power to its answer's bucket,
// and the bucket with the largest total wins (ties → the smallest bucket index, i.e. the answer
// seen first). totals[j] is the total of the bucket opened by sample j (0 for samples that opened
// none). power 0 is a plain majority vote. winner is -1 when no sample has an answer.
func BordaVote(answers []*string, sc []float64, power float64, eq Equal) (winner int, totals []float64) {
	N := len(answers)
	order := make([]int, N)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sc[order[a]] > sc[order[b]] })
	rank := make([]int, N)
	for r, i := range order {
		rank[i] = r + 1
	}
	totals = make([]float64, N)
	for i, b := range buckets(answers, eq) {
		if b >= 0 {
			totals[b] += math.Pow(float64(N-rank[i]+1), power)
		}
	}
	winner = -1
	for j, b := range buckets(answers, eq) {
		if b == j && (winner < 0 || totals[j] > totals[winner]) {
			winner = j
		}
	}
	return winner, totals
}

// MajorityVote returns the sample whose answer is the most frequent (ties → the answer whose first
// occurrence has the lowest index) and the vote count of each bucket; -1 when no sample has an
// answer. Unanswered samples do not vote.
func MajorityVote(answers []*string, eq Equal) (winner int, counts []float64) {
	return BordaVote(answers, make([]float64, len(answers)), 0, eq)
}
