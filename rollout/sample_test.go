package rollout

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

// fixedDecoder returns the same logits for every row at every position.
type fixedDecoder struct {
	z     []float32
	steps int
}

func (d *fixedDecoder) rows(n int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = slices.Clone(d.z)
	}
	return out
}
func (d *fixedDecoder) Prefill(p [][]int32) ([][]float32, error) { return d.rows(len(p)), nil }
func (d *fixedDecoder) Step(t []int32) ([][]float32, error)      { d.steps++; return d.rows(len(t)), nil }

// chainDecoder favours token (last+1) mod V after each row's last token, and records what it is fed.
type chainDecoder struct {
	V   int
	fed [][]int32
}

func (d *chainDecoder) logits(last []int32) [][]float32 {
	out := make([][]float32, len(last))
	for i, l := range last {
		out[i] = make([]float32, d.V)
		out[i][(int(l)+1)%d.V] = 5
	}
	return out
}
func (d *chainDecoder) Prefill(p [][]int32) ([][]float32, error) {
	last := make([]int32, len(p))
	for i, x := range p {
		last[i] = x[len(x)-1]
	}
	return d.logits(last), nil
}
func (d *chainDecoder) Step(t []int32) ([][]float32, error) {
	d.fed = append(d.fed, slices.Clone(t))
	return d.logits(t), nil
}

// refDist is the C7 pipeline written directly (sorts, no shortcuts): the distribution that Sample
// must reproduce.
func refDist(z []float32, cfg Config) []float64 {
	V := len(z)
	s := make([]float64, V)
	for i, v := range z {
		s[i] = float64(v) / cfg.Temperature
	}
	softmax := func() []float64 {
		m := math.Inf(-1)
		for _, x := range s {
			m = max(m, x)
		}
		q, tot := make([]float64, V), 0.0
		for i, x := range s {
			q[i] = math.Exp(x - m)
			tot += q[i]
		}
		for i := range q {
			q[i] /= tot
		}
		return q
	}
	if cfg.TopK > 0 && cfg.TopK < V {
		sorted := slices.Clone(s)
		sort.Sort(sort.Reverse(sort.Float64Slice(sorted)))
		for i := range s {
			if s[i] < sorted[cfg.TopK-1] {
				s[i] = math.Inf(-1)
			}
		}
	}
	if cfg.TopP > 0 && cfg.TopP < 1 {
		keep := naiveTopP(softmax(), cfg.TopP)
		for i := range s {
			if !keep[i] {
				s[i] = math.Inf(-1)
			}
		}
	}
	if cfg.MinP > 0 {
		q := softmax()
		qmax := slices.Max(q)
		for i := range s {
			if q[i] < cfg.MinP*qmax {
				s[i] = math.Inf(-1)
			}
		}
	}
	return softmax()
}

// TestSampleFrequencies is the chi-square goodness-of-fit test of spec/issue 2: 20,000 seeded
// draws per configuration against the transformed distribution.
func TestSampleFrequencies(t *testing.T) {
	z := f32(2, 1, 0, -1, 0.5, -0.5, 1.5, -2)
	const rows, steps = 40, 500
	tests := []struct {
		name string
		cfg  Config
		kept int // size of the support, checked against refDist as well
	}{
		{"plain", Config{Temperature: 1}, 8},
		{"temperature 0.7", Config{Temperature: 0.7}, 8},
		{"temperature 1.5", Config{Temperature: 1.5}, 8},
		{"top-k 3", Config{Temperature: 1, TopK: 3}, 3},
		{"top-p 0.7", Config{Temperature: 1, TopP: 0.7}, 3},
		{"min-p 0.2", Config{Temperature: 1, MinP: 0.2}, 4},
		{"T 0.8 + top-k 6 + top-p 0.95 + min-p 0.05", Config{Temperature: 0.8, TopK: 6, TopP: 0.95, MinP: 0.05}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.MaxNewTokens = steps
			want := refDist(z, cfg)
			support := 0
			for _, q := range want {
				if q > 0 {
					support++
				}
			}
			if support != tc.kept {
				t.Fatalf("reference support %d, test table says %d", support, tc.kept)
			}
			plain := refDist(z, Config{Temperature: cfg.Temperature})
			model := refDist(z, Config{Temperature: 1})
			prompts := make([][]int32, rows)
			for i := range prompts {
				prompts[i] = []int32{0}
			}
			out, err := Sample(&fixedDecoder{z: z}, prompts, cfg, 42)
			if err != nil {
				t.Fatal(err)
			}
			counts := make([]float64, len(z))
			for _, c := range out {
				if len(c.Tokens) != steps || c.Finish != FinishLength {
					t.Fatalf("completion of %d tokens, finish %q; want %d, %q", len(c.Tokens), c.Finish, steps, FinishLength)
				}
				for i, tok := range c.Tokens {
					if want[tok] == 0 {
						t.Fatalf("sampled token %d, which the filters remove", tok)
					}
					counts[tok]++
					checks := []struct {
						name string
						got  float32
						want float64
					}{
						{"LogProbs", c.LogProbs[i], math.Log(want[tok])},
						{"RawLogProbs", c.RawLogProbs[i], math.Log(plain[tok])},
						{"ModelLogProbs", c.ModelLogProbs[i], math.Log(model[tok])},
					}
					for _, ch := range checks {
						if math.Abs(float64(ch.got)-ch.want) > 1e-6 {
							t.Fatalf("%s of token %d = %v, want %v", ch.name, tok, ch.got, ch.want)
						}
					}
				}
			}
			stat, df := chiSquare(counts, want)
			pval := chiSquarePValue(stat, df)
			t.Logf("chi2 = %.2f, df = %d, p = %.3f", stat, df, pval)
			if pval < 1e-3 {
				t.Fatalf("empirical frequencies %v do not fit %v: chi2 = %.2f, df = %d, p = %.2g", counts, want, stat, df, pval)
			}
			// The test has power: where the transform changes the distribution, the plain
			// softmax(z) is rejected.
			if tc.name != "plain" {
				if stat, df := chiSquare(counts, model); df >= 1 && chiSquarePValue(stat, df) > 1e-6 {
					t.Fatalf("untransformed distribution not rejected: chi2 = %.2f, df = %d", stat, df)
				}
			}
		})
	}
}

// chiSquare returns Pearson's statistic over the categories with positive expected mass (a count
// where want is 0 gives +Inf) and its degrees of freedom.
func chiSquare(counts, want []float64) (float64, int) {
	var n float64
	for _, c := range counts {
		n += c
	}
	stat, k := 0.0, 0
	for i, q := range want {
		if q == 0 {
			if counts[i] > 0 {
				return math.Inf(1), 1
			}
			continue
		}
		e := n * q
		stat += (counts[i] - e) * (counts[i] - e) / e
		k++
	}
	return stat, k - 1
}

func TestStopTokensAndFinish(t *testing.T) {
	dec := &chainDecoder{V: 10}
	cfg := Config{Temperature: 0, MaxNewTokens: 6, StopTokens: []int32{4}}
	out, err := Sample(dec, [][]int32{{7, 0}, {3}, {5}}, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		tokens []int32
		finish string
	}{
		{[]int32{1, 2, 3, 4}, FinishStop},
		{[]int32{4}, FinishStop},
		{[]int32{6, 7, 8, 9, 0, 1}, FinishLength},
	}
	for i, w := range want {
		if !slices.Equal(out[i].Tokens, w.tokens) || out[i].Finish != w.finish {
			t.Errorf("row %d: %v %q, want %v %q", i, out[i].Tokens, out[i].Finish, w.tokens, w.finish)
		}
		if n := len(out[i].Tokens); len(out[i].LogProbs) != n || len(out[i].SelfCertainty) != n || len(out[i].Entropy) != n {
			t.Errorf("row %d: per-token slices of different lengths", i)
		}
	}
	// Prefill plus 5 steps (the last row needs 6 tokens); finished rows are fed their stop token.
	wantFed := [][]int32{{1, 4, 6}, {2, 4, 7}, {3, 4, 8}, {4, 4, 9}, {4, 4, 0}}
	if !slices.EqualFunc(dec.fed, wantFed, slices.Equal) {
		t.Errorf("decoder was fed %v, want %v", dec.fed, wantFed)
	}
	// Greedy log-probs are the model's: logit 5 against nine zeros.
	if want := 5 - math.Log(math.Exp(5)+9); math.Abs(float64(out[2].LogProbs[0])-want) > 1e-6 {
		t.Errorf("greedy logp = %v, want %v", out[2].LogProbs[0], want)
	}
}

func TestStatsAfterLast(t *testing.T) {
	dec := &chainDecoder{V: 10}
	cfg := Config{Temperature: 0, MaxNewTokens: 3, StopTokens: []int32{4}, StatsAfterLast: true}
	out, err := Sample(dec, [][]int32{{2}, {6}}, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Row 0 stops after [3 4] at step 1; row 1 runs to [7 8 9]. One extra step gives row 1's
	// distribution after token 9; row 0's comes from the step after it stopped.
	wantFed := [][]int32{{3, 7}, {4, 8}, {4, 9}}
	if !slices.EqualFunc(dec.fed, wantFed, slices.Equal) {
		t.Fatalf("decoder was fed %v, want %v", dec.fed, wantFed)
	}
	// Every distribution here is one logit 5 among nine 0s.
	lse := math.Log(math.Exp(5) + 9)
	want := -math.Log(10) - ((5-lse)+9*(-lse))/10
	for i, c := range out {
		if math.Abs(float64(c.AfterSelfCertainty)-want) > 1e-6 || math.Abs(float64(c.SelfCertainty[0])-want) > 1e-6 {
			t.Errorf("row %d: after-last SC %v, first-token SC %v, want %v", i, c.AfterSelfCertainty, c.SelfCertainty[0], want)
		}
	}
	plain, _ := Sample(&chainDecoder{V: 10}, [][]int32{{2}}, Config{Temperature: 0, MaxNewTokens: 3}, 1)
	if !math.IsNaN(float64(plain[0].AfterSelfCertainty)) {
		t.Errorf("AfterSelfCertainty = %v without StatsAfterLast, want NaN", plain[0].AfterSelfCertainty)
	}
}

func TestSampleDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	z := make([]float32, 8192) // 8 rows × 8192 is above the parallel threshold
	for i := range z {
		z[i] = float32(2 * rng.NormFloat64())
	}
	cfg := Config{Temperature: 0.9, TopP: 0.9, MaxNewTokens: 20}
	prompts := Repeat([][]int32{{1}}, 8)
	run := func(seed uint64) []Completion {
		out, err := Sample(&fixedDecoder{z: z}, prompts, cfg, seed)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := run(7), run(7)
	prev := runtime.GOMAXPROCS(1)
	serial := run(7)
	runtime.GOMAXPROCS(prev)
	c := run(8)
	same := func(x, y []Completion) bool {
		for i := range x {
			if !slices.Equal(x[i].Tokens, y[i].Tokens) || !slices.Equal(x[i].LogProbs, y[i].LogProbs) {
				return false
			}
		}
		return true
	}
	if !same(a, b) || !same(a, serial) {
		t.Fatal("same seed gave different completions (or serial and parallel differ)")
	}
	if same(a, c) {
		t.Fatal("seeds 7 and 8 gave identical completions")
	}
	if slices.Equal(a[0].Tokens, a[1].Tokens) {
		t.Fatal("two rows of the same prompt drew identical 20-token completions")
	}
}

func TestSampleGroups(t *testing.T) {
	dec := &chainDecoder{V: 10}
	groups, err := SampleGroups(dec, [][]int32{{1}, {5}}, 3, Config{Temperature: 0, MaxNewTokens: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || len(groups[0]) != 3 {
		t.Fatalf("groups shape %d×%d, want 2×3", len(groups), len(groups[0]))
	}
	for j := range 3 {
		if !slices.Equal(groups[0][j].Tokens, []int32{2, 3}) || !slices.Equal(groups[1][j].Tokens, []int32{6, 7}) {
			t.Fatalf("group sample %d: %v / %v", j, groups[0][j].Tokens, groups[1][j].Tokens)
		}
	}
}

type badDecoder struct {
	prefill [][]float32
	stepErr error
}

func (d badDecoder) Prefill([][]int32) ([][]float32, error) { return d.prefill, nil }
func (d badDecoder) Step([]int32) ([][]float32, error)      { return nil, d.stepErr }

func TestSampleErrors(t *testing.T) {
	good := [][]float32{f32(0, 1, 2)}
	tests := []struct {
		name    string
		dec     Decoder
		prompts [][]int32
		cfg     Config
		want    string
	}{
		{"bad config", badDecoder{prefill: good}, [][]int32{{1}}, Config{Temperature: 1}, "max_new_tokens"},
		{"no prompts", badDecoder{prefill: good}, nil, DefaultConfig(), "no prompts"},
		{"empty prompt", badDecoder{prefill: good}, [][]int32{{}}, DefaultConfig(), "prompt 0 is empty"},
		{"row count", badDecoder{prefill: good}, [][]int32{{1}, {2}}, DefaultConfig(), "1 logit rows for a batch of 2"},
		{"NaN logits", badDecoder{prefill: [][]float32{f32(0, math.NaN())}}, [][]int32{{1}}, DefaultConfig(), "row 0: logit of token 1 is NaN"},
		{"stop outside vocab", badDecoder{prefill: good}, [][]int32{{1}}, Config{Temperature: 1, MaxNewTokens: 3, StopTokens: []int32{3}}, "stop token 3 is outside"},
		{"step error", badDecoder{prefill: good, stepErr: errors.New("cache full")}, [][]int32{{1}}, DefaultConfig(), "decode step 1: cache full"},
	}
	for _, tc := range tests {
		_, err := Sample(tc.dec, tc.prompts, tc.cfg, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// TestTokenTemperature: a per-token temperature rule is applied from the model's entropy at each
// position: a rule that always returns 0.7 samples exactly as Temperature 0.7, records 0.7 per
// token, and sees the untempered entropy of the logits.
func TestTokenTemperature(t *testing.T) {
	z := []float32{2, 1, 0.5, -1}
	st, _ := Stats(z)
	var seen []float64
	rule := func(h float64) float64 {
		seen = append(seen, h)
		return 0.7
	}
	fixed, err := Sample(&fixedDecoder{z: z}, [][]int32{{1}}, Config{Temperature: 0.7, MaxNewTokens: 12}, 5)
	if err != nil {
		t.Fatal(err)
	}
	hooked, err := Sample(&fixedDecoder{z: z}, [][]int32{{1}}, Config{Temperature: 1, TokenTemperature: rule, MaxNewTokens: 12}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fixed[0].Tokens, hooked[0].Tokens) || !slices.Equal(fixed[0].LogProbs, hooked[0].LogProbs) {
		t.Fatalf("rule 0.7 sampled %v %v, Temperature 0.7 %v %v", hooked[0].Tokens, hooked[0].LogProbs, fixed[0].Tokens, fixed[0].LogProbs)
	}
	if len(hooked[0].Temperature) != 12 || hooked[0].Temperature[3] != 0.7 || fixed[0].Temperature != nil {
		t.Fatalf("recorded temperatures %v (fixed %v)", hooked[0].Temperature, fixed[0].Temperature)
	}
	if len(seen) != 12 || math.Abs(seen[0]-st.Entropy) > 1e-12 {
		t.Fatalf("rule saw entropies %v, want %v each", seen, st.Entropy)
	}
	bad := Config{Temperature: 1, TokenTemperature: func(float64) float64 { return 0 }, MaxNewTokens: 2}
	if _, err := Sample(&fixedDecoder{z: z}, [][]int32{{1}}, bad, 5); err == nil || !strings.Contains(err.Error(), "token temperature 0") {
		t.Fatalf("zero token temperature: %v", err)
	}
}
