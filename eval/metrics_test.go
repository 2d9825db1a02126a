package eval

import (
	"math"
	"strings"
	"testing"
)

// bruteForcePassAtK enumerates every k-subset of n samples (the first c correct) and returns the
// fraction that contains a correct one.
func bruteForcePassAtK(n, c, k int) float64 {
	var hit, total float64
	var rec func(start, left int, any bool)
	rec = func(start, left int, any bool) {
		if left == 0 {
			total++
			if any {
				hit++
			}
			return
		}
		for i := start; i <= n-left; i++ {
			rec(i+1, left-1, any || i < c)
		}
	}
	rec(0, k, false)
	return hit / total
}

func TestPassAtKBruteForce(t *testing.T) {
	for n := 1; n <= 10; n++ {
		for c := 0; c <= n; c++ {
			for k := 1; k <= n; k++ {
				got, err := PassAtK(n, c, k)
				if err != nil {
					t.Fatal(err)
				}
				if want := bruteForcePassAtK(n, c, k); math.Abs(got-want) > 1e-12 {
					t.Fatalf("pass@%d(n=%d, c=%d) = %v, brute force %v", k, n, c, got, want)
				}
			}
		}
	}
}

// TestPassAtKLarge checks the product form against 1 - C(n-c,k)/C(n,k) in log-gamma form where
// binomials overflow float64.
func TestPassAtKLarge(t *testing.T) {
	lbinom := func(n, k int) float64 {
		a, _ := math.Lgamma(float64(n + 1))
		b, _ := math.Lgamma(float64(k + 1))
		c, _ := math.Lgamma(float64(n - k + 1))
		return a - b - c
	}
	for _, tc := range []struct{ n, c, k int }{{2000, 3, 100}, {2000, 1, 1}, {1024, 500, 512}, {5000, 10, 2500}} {
		got, _ := PassAtK(tc.n, tc.c, tc.k)
		want := 1 - math.Exp(lbinom(tc.n-tc.c, tc.k)-lbinom(tc.n, tc.k))
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("pass@%d(n=%d, c=%d) = %.12f, want %.12f", tc.k, tc.n, tc.c, got, want)
		}
	}
	if p, _ := PassAtK(100, 1, 1); math.Abs(p-0.01) > 1e-15 {
		t.Errorf("pass@1 with 1 of 100 correct = %v, want 0.01", p)
	}
}

func TestPassAtKErrors(t *testing.T) {
	for _, tc := range []struct {
		n, c, k int
		want    string
	}{{0, 0, 1, "at least one sample"}, {4, 5, 1, "impossible"}, {4, -1, 1, "impossible"}, {4, 2, 5, "pass@5"}, {4, 2, 0, "pass@0"}} {
		if _, err := PassAtK(tc.n, tc.c, tc.k); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PassAtK(%d,%d,%d) err = %v, want %q", tc.n, tc.c, tc.k, err, tc.want)
		}
	}
}

func TestSelfCertaintySpec(t *testing.T) {
	logs := func(p ...float64) []float64 {
		out := make([]float64, len(p))
		for i := range p {
			out[i] = math.Log(p[i])
		}
		return out
	}
	tests := []struct {
		logp []float64
		want float64
	}{
		{logs(0.7, 0.1, 0.1, 0.1), 0.429813},
		{logs(0.25, 0.25, 0.25, 0.25), 0},
		{logs(0.97, 0.01, 0.01, 0.01), 2.075198},
		{[]float64{0, math.Inf(-1)}, -math.Log(2) + 1e4/2}, // clamped at -1e4
	}
	for _, tc := range tests {
		if got := TokenSelfCertainty(tc.logp); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("SC(%v) = %.7f, want %.7f", tc.logp, got, tc.want)
		}
	}
	resp := [][]float64{logs(0.7, 0.1, 0.1, 0.1), logs(0.97, 0.01, 0.01, 0.01)}
	if got, want := SelfCertainty(resp), (0.429813+2.075198)/2; math.Abs(got-want) > 1e-6 {
		t.Errorf("response SC = %v, want %v", got, want)
	}
}

func strs(xs ...string) []*string {
	out := make([]*string, len(xs))
	for i, x := range xs {
		if x != "-" {
			out[i] = &xs[i]
		}
	}
	return out
}

// TestBordaSpecExample reproduces spec C1: answers [A, B, A, C], SC [0.9, 0.8, 0.3, 0.5].
func TestBordaSpecExample(t *testing.T) {
	ans := strs("A", "B", "A", "C")
	sc := []float64{0.9, 0.8, 0.3, 0.5}
	tests := []struct {
		power   float64
		a, b, c float64
	}{
		{0, 2, 1, 1},
		{0.5, 3.0, 1.732051, 1.414214},
		{1, 5, 3, 2},
		{3, 65, 27, 8},
	}
	for _, tc := range tests {
		w, totals := BordaVote(ans, sc, tc.power, nil)
		// Buckets are opened by samples 0 (A), 1 (B) and 3 (C); sample 2 joins bucket 0.
		got := []float64{totals[0], totals[1], totals[3]}
		want := []float64{tc.a, tc.b, tc.c}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-6 {
				t.Errorf("p=%v: totals {A,B,C} = %v, want %v", tc.power, got, want)
			}
		}
		if w != 0 || totals[2] != 0 {
			t.Errorf("p=%v: winner %d (totals %v), want 0 (A)", tc.power, w, totals)
		}
	}
}

func TestMajorityVoteTies(t *testing.T) {
	fold := func(a, b string) bool { return strings.EqualFold(a, b) }
	tests := []struct {
		name    string
		answers []*string
		eq      Equal
		want    int
	}{
		{"clear majority", strs("A", "B", "B"), nil, 1},
		{"2-2 tie → answer seen first", strs("B", "A", "A", "B"), nil, 0},
		{"1-1-1 tie → first", strs("C", "A", "B"), nil, 0},
		{"unanswered samples do not vote", strs("-", "A", "-", "-"), nil, 1},
		{"no answers", strs("-", "-"), nil, -1},
		{"comparator merges answers", strs("x", "y", "X"), fold, 0},
		{"exact comparator keeps them apart, tie → first", strs("x", "y", "X"), nil, 0},
		{"tie broken by first occurrence, not by last vote", strs("A", "B", "B", "A", "C"), nil, 0},
	}
	for _, tc := range tests {
		if got, _ := MajorityVote(tc.answers, tc.eq); got != tc.want {
			t.Errorf("%s: winner %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestArgmaxStrategies(t *testing.T) {
	a, b := "a", "b"
	samples := []Sample{
		{Answer: nil, SelfCertainty: 9, MeanLogProb: -0.1, Score: 5, Q: 7}, // most confident but no answer
		{Answer: &a, SelfCertainty: 2, MeanLogProb: -1, Score: math.NaN(), Q: 0.8},
		{Answer: &b, SelfCertainty: 3, MeanLogProb: -2, Score: 1, Q: 0.2},
		{Answer: &a, SelfCertainty: 3, MeanLogProb: -0.5, Score: 1, Correct: true, Q: 0.8},
	}
	tests := []struct {
		st   Strategy
		want int
	}{
		{SelfCertaintyArgmax(), 2}, // tie 3/3 → first; sample 0 is unanswered
		{MeanLogProb(), 3},
		{Scorer(), 2}, // NaN ranks lowest; tie → first
		{QValue(), 1}, // Q argmax among answered samples; tie 0.8/0.8 → first
		{First(), 0},
		{Majority(), 1},
		{Borda(0.5), 1}, // SC order 0,2,3,1: a gets 2^.5 + 1 = 2.41 (ranks 3, 4), b gets 3^.5 = 1.73 (rank 2)
		{Oracle(), 3},
	}
	for _, tc := range tests {
		if got := tc.st.Select(samples, nil); got != tc.want {
			t.Errorf("%s selected %d, want %d", tc.st.Name, got, tc.want)
		}
	}
	// Without any extracted answer the argmax strategies fall back to a plain argmax.
	none := []Sample{{SelfCertainty: 1}, {SelfCertainty: 4}, {SelfCertainty: 2}}
	if got := SelfCertaintyArgmax().Select(none, nil); got != 1 {
		t.Errorf("self-certainty without answers selected %d, want 1", got)
	}
	if got := Borda(1.5).Name; got != "sc-borda-p1.5" {
		t.Errorf("Borda(1.5).Name = %q", got)
	}
}
