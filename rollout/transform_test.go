package rollout

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

func f32(xs ...float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

func probs(lp []float64) []float64 {
	out := make([]float64, len(lp))
	for i, l := range lp {
		out[i] = math.Exp(l)
	}
	return out
}

// TestTransformSpecExamples reproduces the worked numbers of spec C7 on z = [2, 1, 0, -1].
func TestTransformSpecExamples(t *testing.T) {
	z := f32(2, 1, 0, -1)
	p := []float64{0.643914, 0.236883, 0.087144, 0.032059}
	renorm := func(keep ...int) []float64 {
		var s float64
		for _, k := range keep {
			s += p[k]
		}
		out := make([]float64, len(p))
		for _, k := range keep {
			out[k] = p[k] / s
		}
		return out
	}
	tests := []struct {
		name string
		cfg  Config
		want []float64
	}{
		{"plain", Config{Temperature: 1, MaxNewTokens: 1}, p},
		{"temperature 0.5", Config{Temperature: 0.5, MaxNewTokens: 1}, []float64{0.864955, 0.117059, 0.015842, 0.002144}},
		{"top-k 2", Config{Temperature: 1, TopK: 2, MaxNewTokens: 1}, renorm(0, 1)},
		{"top-k 4 = off", Config{Temperature: 1, TopK: 4, MaxNewTokens: 1}, p},
		{"top-p 0.8", Config{Temperature: 1, TopP: 0.8, MaxNewTokens: 1}, renorm(0, 1)},
		{"top-p 0.95", Config{Temperature: 1, TopP: 0.95, MaxNewTokens: 1}, renorm(0, 1, 2)},
		{"min-p 0.1", Config{Temperature: 1, MinP: 0.1, MaxNewTokens: 1}, renorm(0, 1, 2)},
		{"min-p 1 keeps argmax", Config{Temperature: 1, MinP: 1, MaxNewTokens: 1}, renorm(0)},
		{"greedy", Config{Temperature: 0, TopK: 3, MaxNewTokens: 1}, []float64{1, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lp, err := Transform(z, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := probs(lp)
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 2e-6 {
					t.Fatalf("q = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestGreedyTiesLowestID(t *testing.T) {
	sp := newSampler(Config{MaxNewTokens: 1}, nil)
	p, err := sp.choose(f32(1, 3, 3))
	if err != nil {
		t.Fatal(err)
	}
	if p.token != 1 {
		t.Fatalf("greedy on [1 3 3] = %d, want 1", p.token)
	}
	if want := 3 - math.Log(math.Exp(1)+2*math.Exp(3)); math.Abs(p.logp-want) > 1e-12 {
		t.Fatalf("greedy logp = %v, want model logp %v", p.logp, want)
	}
}

func TestTopKKeepsTies(t *testing.T) {
	lp, err := Transform(f32(1, 2, 2, 0), Config{Temperature: 1, TopK: 1, MaxNewTokens: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := probs(lp); math.Abs(got[1]-0.5) > 1e-12 || math.Abs(got[2]-0.5) > 1e-12 || got[0] != 0 || got[3] != 0 {
		t.Fatalf("top-k 1 with a tie: q = %v, want [0 .5 .5 0]", got)
	}
}

// TestStatsSpecExamples reproduces spec C1's self-certainty numbers and checks the entropy.
func TestStatsSpecExamples(t *testing.T) {
	tests := []struct {
		p      []float64
		wantSC float64
	}{
		{[]float64{0.7, 0.1, 0.1, 0.1}, 0.429813},
		{[]float64{0.25, 0.25, 0.25, 0.25}, 0},
		{[]float64{0.97, 0.01, 0.01, 0.01}, 2.075198},
	}
	for _, tc := range tests {
		z := make([]float32, len(tc.p))
		wantH := 0.0
		for i, p := range tc.p {
			z[i] = float32(math.Log(p) + 3) // a shift must not matter
			wantH -= p * math.Log(p)
		}
		st, err := Stats(z)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(st.SelfCertainty-tc.wantSC) > 1e-6 || math.Abs(st.Entropy-wantH) > 1e-6 {
			t.Errorf("p=%v: SC=%.6f H=%.6f, want SC=%.6f H=%.6f", tc.p, st.SelfCertainty, st.Entropy, tc.wantSC, wantH)
		}
	}
	// A -Inf logit is clamped at log p = -1e4 instead of making SC infinite.
	st, err := Stats(f32(0, 0, math.Inf(-1)))
	if err != nil {
		t.Fatal(err)
	}
	want := -math.Log(3) - (2*math.Log(0.5)-1e4)/3
	if math.Abs(st.SelfCertainty-want) > 1e-9 {
		t.Fatalf("SC with a -Inf logit = %v, want %v", st.SelfCertainty, want)
	}
}

func TestKthLargest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		a := make([]float64, n)
		for i := range a {
			switch rng.IntN(4) {
			case 0:
				a[i] = math.Inf(-1)
			case 1:
				a[i] = float64(rng.IntN(5)) // many ties
			default:
				a[i] = rng.NormFloat64()
			}
		}
		sorted := slices.Clone(a)
		sort.Sort(sort.Reverse(sort.Float64Slice(sorted)))
		k := 1 + rng.IntN(n)
		if got := kthLargest(slices.Clone(a), k); got != sorted[k-1] {
			t.Fatalf("trial %d: kthLargest(k=%d) = %v, want %v", trial, k, got, sorted[k-1])
		}
	}
}

// naiveTopP is the spec C7 rule written directly: sort ascending, remove tokens whose ascending
// cumulative mass is <= 1-p, always keep the most probable.
func naiveTopP(q []float64, p float64) []bool {
	idx := make([]int, len(q))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		if q[idx[a]] != q[idx[b]] {
			return q[idx[a]] < q[idx[b]]
		}
		return idx[a] > idx[b]
	})
	keep := make([]bool, len(q))
	cum := 0.0
	for r, i := range idx {
		cum += q[i]
		keep[i] = q[i] > 0 && (cum > 1-p || r == len(idx)-1)
	}
	return keep
}

// TestTopPMatchesNaive checks the prefiltered nucleus against a full sort on a large vocabulary.
func TestTopPMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const V = 5000
	for _, p := range []float64{0.1, 0.5, 0.9, 0.95, 0.999} {
		for _, scale := range []float64{0.5, 3} {
			z := make([]float32, V)
			for i := range z {
				z[i] = float32(scale * rng.NormFloat64())
			}
			plain, _ := Transform(z, Config{Temperature: 1, MaxNewTokens: 1})
			want := naiveTopP(probs(plain), p)
			lp, err := Transform(z, Config{Temperature: 1, TopP: p, MaxNewTokens: 1})
			if err != nil {
				t.Fatal(err)
			}
			nKeep, mass := 0, 0.0
			for i := range lp {
				kept := !math.IsInf(lp[i], -1)
				if kept != want[i] {
					t.Fatalf("p=%v scale=%v: token %d kept=%v, naive rule says %v", p, scale, i, kept, want[i])
				}
				if kept {
					nKeep++
					mass += math.Exp(plain[i])
				}
			}
			if mass < p-1e-9 {
				t.Fatalf("p=%v: kept mass %v < p", p, mass)
			}
			t.Logf("p=%v scale=%v: kept %d of %d tokens, mass %.4f", p, scale, nKeep, V, mass)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"negative temperature", func(c *Config) { c.Temperature = -0.1 }, "temperature"},
		{"NaN temperature", func(c *Config) { c.Temperature = math.NaN() }, "temperature"},
		{"top-k -2", func(c *Config) { c.TopK = -2 }, "top_k"},
		{"top-p 1.5", func(c *Config) { c.TopP = 1.5 }, "top_p"},
		{"top-p negative", func(c *Config) { c.TopP = -0.5 }, "top_p"},
		{"min-p 2", func(c *Config) { c.MinP = 2 }, "min_p"},
		{"max new tokens 0", func(c *Config) { c.MaxNewTokens = 0 }, "max_new_tokens"},
		{"negative stop token", func(c *Config) { c.StopTokens = []int32{2, -1} }, "stop token"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err = %v, want an error naming %q", tc.name, err, tc.field)
		}
	}
}

func TestTransformRejectsBadLogits(t *testing.T) {
	for _, z := range [][]float32{
		{},
		f32(0, math.NaN()),
		f32(0, math.Inf(1)),
		f32(math.Inf(-1), math.Inf(-1)),
	} {
		if _, err := Transform(z, DefaultConfig()); err == nil {
			t.Errorf("Transform(%v) succeeded, want an error", z)
		}
	}
}
