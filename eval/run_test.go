package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/polo-rl/polo/rollout"
)

func ptr(s string) *string { return &s }

// twoExamples is a hand-checked set: see the expected numbers in TestRunExact.
func twoExamples() []Example {
	return []Example{
		{ID: "e0", Samples: []Sample{
			{Answer: ptr("A"), Correct: true, SelfCertainty: 1, MeanLogProb: -1, Length: 10},
			{Answer: ptr("B"), SelfCertainty: 5, MeanLogProb: -0.5, Length: 20},
			{Answer: ptr("A"), Correct: true, SelfCertainty: 2, MeanLogProb: -2, Length: 30},
			{Answer: nil, SelfCertainty: 0, MeanLogProb: -3, Length: 40, Truncated: true},
		}},
		{ID: "e1", Samples: []Sample{
			{Answer: ptr("C"), SelfCertainty: 1, MeanLogProb: -1, Length: 5},
			{Answer: ptr("C"), SelfCertainty: 1, MeanLogProb: -1, Length: 5},
			{Answer: ptr("D"), Correct: true, SelfCertainty: 3, MeanLogProb: -0.2, Length: 5},
			{Answer: ptr("C"), SelfCertainty: 1, MeanLogProb: -1, Length: 5},
		}},
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestRunExact(t *testing.T) {
	r, err := Run(twoExamples(), Options{K: []int{1, 2, 4}, N: []int{4}})
	if err != nil {
		t.Fatal(err)
	}
	scalars := []struct {
		name      string
		got, want float64
	}{
		{"pass@1", r.PassAt1, (0.5 + 0.25) / 2},
		{"pass@2", r.AtK[1].PassAtK, ((1 - 1.0/6) + (1 - 3.0/6)) / 2},
		{"pass@4", r.AtK[2].PassAtK, 1},
		{"maj@4", r.AtK[2].MajAtK, 0.5}, // e0: A (2 votes) is right; e1: C (3 votes) is wrong
		{"mean length", r.MeanLength, 15},
		{"truncation", r.TruncationRate, 1.0 / 8},
		{"no answer", r.NoAnswerRate, 1.0 / 8},
	}
	for _, s := range scalars {
		if !near(s.got, s.want, 1e-12) {
			t.Errorf("%s = %v, want %v", s.name, s.got, s.want)
		}
	}
	// At N = n every strategy is evaluated exactly once on all samples:
	// first: e0 ✓ e1 ✗; majority: A ✓, C ✗; self-certainty: B (5) ✗, D (3) ✓;
	// sc-borda: A gets 2^.5+3^.5 > B's 2 ✓, C gets 3^.5+2^.5+1 > D's 2 ✗;
	// mean-logprob: B ✗, D ✓; oracle: ✓ ✓.
	want := map[string]float64{"first": 0.5, "majority": 0.5, "self-certainty": 0.5, "sc-borda": 0.5, "mean-logprob": 0.5, "oracle": 1}
	for k, name := range r.BestOfN.Strategies {
		if got := r.BestOfN.Accuracy[k][0]; got != want[name] {
			t.Errorf("Best-of-4 %s = %v, want %v", name, got, want[name])
		}
	}
	sel := r.PerExample[0].Selected
	if sel["self-certainty"] != 1 || sel["sc-borda"] != 0 || sel["majority"] != 0 || *r.PerExample[1].MajAnswer != "C" {
		t.Errorf("per-example selections %v, maj answer %v", sel, *r.PerExample[1].MajAnswer)
	}
}

// exactSubsetAccuracy enumerates all ordered N-subsets and averages correctness.
func exactSubsetAccuracy(s []Sample, N int, st Strategy) float64 {
	var hit, total float64
	used := make([]bool, len(s))
	var rec func(sub []Sample)
	rec = func(sub []Sample) {
		if len(sub) == N {
			total++
			hit += correctness(sub, st.Select(sub, nil))
			return
		}
		for i := range s {
			if !used[i] {
				used[i] = true
				rec(append(sub, s[i]))
				used[i] = false
			}
		}
	}
	rec(nil)
	return hit / total
}

// TestRunSubsets checks the seeded subset estimates for N < n against exhaustive enumeration, and
// that oracle Best-of-N equals pass@N and "first" at N = 1 equals pass@1 in expectation.
func TestRunSubsets(t *testing.T) {
	ex := twoExamples()
	r, err := Run(ex, Options{K: []int{1, 2, 3}, N: []int{1, 2, 3}, Trials: 20000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	const tol = 0.015 // > 4 standard errors of a 20,000-trial mean (averaged over two examples)
	for k, st := range DefaultStrategies() {
		for j, N := range r.BestOfN.N {
			want := (exactSubsetAccuracy(ex[0].Samples, N, st) + exactSubsetAccuracy(ex[1].Samples, N, st)) / 2
			if got := r.BestOfN.Accuracy[k][j]; !near(got, want, tol) {
				t.Errorf("Best-of-%d %s = %.4f, exhaustive %.4f", N, st.Name, got, want)
			}
		}
	}
	for j, N := range r.BestOfN.N {
		oracle := r.BestOfN.Accuracy[slices.Index(r.BestOfN.Strategies, "oracle")][j]
		if !near(oracle, r.AtK[j].PassAtK, tol) {
			t.Errorf("oracle Best-of-%d = %.4f, pass@%d = %.4f", N, oracle, N, r.AtK[j].PassAtK)
		}
		maj := (exactSubsetAccuracy(ex[0].Samples, N, Majority()) + exactSubsetAccuracy(ex[1].Samples, N, Majority())) / 2
		if !near(r.AtK[j].MajAtK, maj, tol) {
			t.Errorf("maj@%d = %.4f, exhaustive %.4f", N, r.AtK[j].MajAtK, maj)
		}
	}
	for j, N := range r.BestOfN.N {
		if first := r.BestOfN.Accuracy[0][j]; !near(first, r.PassAt1, tol) {
			t.Errorf("first at N=%d = %.4f, pass@1 = %.4f", N, first, r.PassAt1)
		}
	}
	// Same seed, same report; another seed moves the estimates.
	again, _ := Run(ex, Options{K: []int{1, 2, 3}, N: []int{1, 2, 3}, Trials: 20000, Seed: 5})
	other, _ := Run(ex, Options{K: []int{1, 2, 3}, N: []int{1, 2, 3}, Trials: 20000, Seed: 6})
	if !slices.EqualFunc(r.BestOfN.Accuracy, again.BestOfN.Accuracy, slices.Equal) {
		t.Error("same seed gave different Best-of-N tables")
	}
	if slices.EqualFunc(r.BestOfN.Accuracy, other.BestOfN.Accuracy, slices.Equal) {
		t.Error("seeds 5 and 6 gave identical Best-of-N tables")
	}
}

func TestRunDefaultsAndErrors(t *testing.T) {
	r, err := Run(twoExamples(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.BestOfN.N, []int{1, 2, 4}) || len(r.AtK) != 3 || r.AtK[2].K != 4 {
		t.Errorf("default sizes: N %v, k %v", r.BestOfN.N, r.AtK)
	}
	for n, want := range map[int][]int{1: {1}, 3: {1, 2, 3}, 6: {1, 2, 4, 6}, 8: {1, 2, 4, 8}} {
		if got, _ := sizes(nil, n, "k"); !slices.Equal(got, want) {
			t.Errorf("default sizes for n=%d: %v, want %v", n, got, want)
		}
	}
	tests := []struct {
		name string
		ex   []Example
		opts Options
		want string
	}{
		{"no examples", nil, Options{}, "no examples"},
		{"empty example", []Example{{ID: "x"}}, Options{}, `example 0 ("x") has no samples`},
		{"k too large", twoExamples(), Options{K: []int{8}}, "k = 8"},
		{"N zero", twoExamples(), Options{N: []int{0}}, "Best-of-N size = 0"},
		{"negative trials", twoExamples(), Options{Trials: -1}, "trials"},
		{"bad strategy", twoExamples(), Options{Strategies: []Strategy{{Name: "x"}}}, "strategy 0"},
	}
	for _, tc := range tests {
		if _, err := Run(tc.ex, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestWriteJSONLAndTable(t *testing.T) {
	r, err := Run(twoExamples(), Options{K: []int{1, 4}, N: []int{4}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, r.PerExample); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var rows []ExampleResult
	for sc.Scan() {
		var row ExampleResult
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		rows = append(rows, row)
	}
	if len(rows) != 2 || rows[0].ID != "e0" || rows[0].Correct != 2 || rows[1].AtK[1].PassAtK != 1 ||
		*rows[0].MajAnswer != "A" || rows[0].Truncated != 1 || rows[0].MeanLength != 25 {
		t.Fatalf("JSONL rows %+v", rows)
	}
	var tab bytes.Buffer
	if err := r.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0.3750", "sc-borda  0.5000", "oracle  1.0000", "4  1.0000  0.5000"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
}

func TestPlotStrategies(t *testing.T) {
	r, err := Run(twoExamples(), Options{Trials: 50})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bon.png")
	if err := PlotStrategies(r.BestOfN, "test", path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("plot file: %d bytes, err %v", len(b), err)
	}
	if err := PlotStrategies(r.BestOfN, "test", "x.gif"); err == nil || !strings.Contains(err.Error(), "extension") {
		t.Errorf("gif: err = %v", err)
	}
}

func TestGenerate(t *testing.T) {
	// The fake sampler answers with the prompt's first token plus the seed parity, so the test can
	// see both the grouping and the per-batch seeds.
	var seeds []uint64
	sample := func(prompts [][]int32, seed uint64) ([]rollout.Completion, error) {
		seeds = append(seeds, seed)
		out := make([]rollout.Completion, len(prompts))
		for i, p := range prompts {
			out[i] = rollout.Completion{
				Tokens:        []int32{p[0], int32(seed % 2)},
				ModelLogProbs: []float32{-1, -3},
				SelfCertainty: []float32{0.5, 1.5},
				Finish:        rollout.FinishLength,
			}
		}
		return out, nil
	}
	judge := func(example int, c rollout.Completion) (Judgement, error) {
		if int(c.Tokens[0]) != 10*example {
			t.Fatalf("example %d judged a completion of prompt %d", example, c.Tokens[0])
		}
		return Judgement{Answer: ptr("x"), Correct: c.Tokens[1] == 1}, nil
	}
	ex, err := Generate([][]int32{{0}, {10}, {20}}, 2, 4, 100, sample, judge)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seeds, []uint64{100, 101}) {
		t.Fatalf("batch seeds %v, want [100 101]", seeds)
	}
	// Rows 0-3 (examples 0, 1) come from seed 100 (wrong), rows 4-5 (example 2) from 101 (right).
	for i, want := range []bool{false, false, true} {
		if len(ex[i].Samples) != 2 || ex[i].Samples[1].Correct != want {
			t.Fatalf("example %d: %+v", i, ex[i].Samples)
		}
	}
	s := ex[0].Samples[0]
	if s.SelfCertainty != 1 || s.MeanLogProb != -2 || s.Length != 2 || !s.Truncated {
		t.Fatalf("FromCompletion: %+v", s)
	}
	if _, err := Generate([][]int32{{1}}, 0, 4, 0, sample, judge); err == nil {
		t.Fatal("n = 0 accepted")
	}
}

func TestResponseSelfCertainty(t *testing.T) {
	c := rollout.Completion{SelfCertainty: []float32{1, 2, 4}, AfterSelfCertainty: 8}
	tests := []struct {
		shift bool
		want  float64
	}{{false, 7.0 / 3}, {true, 14.0 / 3}}
	for _, tc := range tests {
		got, err := ResponseSelfCertainty(c, tc.shift)
		if err != nil || !near(got, tc.want, 1e-12) {
			t.Errorf("shift=%v: %v, %v; want %v", tc.shift, got, err, tc.want)
		}
	}
	c.AfterSelfCertainty = float32(math.NaN())
	if _, err := ResponseSelfCertainty(c, true); err == nil || !strings.Contains(err.Error(), "StatsAfterLast") {
		t.Errorf("shift without the after-last value: err = %v", err)
	}
}
