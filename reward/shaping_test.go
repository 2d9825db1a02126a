package reward

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

const tol = 1e-6

func near(a, b float64) bool { return math.Abs(a-b) <= tol }

func nearAll(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !near(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Spec A4 worked numbers.
func TestDAPOOverlong(t *testing.T) {
	for _, tt := range []struct {
		L    int
		want float64
	}{{10000, 0}, {16384, 0}, {18432, -0.5}, {20480, -1}} {
		if got := DAPOOverlong(tt.L, 20480, 4096, 1); !near(got, tt.want) {
			t.Errorf("L=%d: %v, want %v", tt.L, got, tt.want)
		}
	}
	// monotone non-increasing and continuous
	prev := 0.0
	for L := 16000; L <= 20480; L += 7 {
		r := DAPOOverlong(L, 20480, 4096, 1)
		if r > prev+1e-12 || r > 0 || prev-r > 7.0/4096+1e-12 {
			t.Fatalf("L=%d: %v after %v", L, r, prev)
		}
		prev = r
	}
}

// Spec A1 table (c = 4).
func TestOTCToolReward(t *testing.T) {
	tests := []struct {
		m, n int
		want float64
	}{
		{0, 0, 1}, {1, 0, 0.866025}, {2, 0, 0.707107}, {4, 0, 0.5},
		{0, 1, 0}, {1, 1, 1}, {2, 1, 0.866025}, {3, 1, 0.707107},
		{1, 2, 0.866025}, {2, 2, 1}, {6, 2, 0.707107},
	}
	for _, tt := range tests {
		if got := OTCToolReward(tt.m, tt.n, true, 4, "grpo"); !near(got, tt.want) {
			t.Errorf("m=%d n=%d: %v, want %v", tt.m, tt.n, got, tt.want)
		}
	}
	// Properties: unique max at m = n, in [0,1], decays to 0.
	for n := 1; n <= 5; n++ {
		for m := 0; m < 200; m++ {
			r := OTCToolReward(m, n, true, 4, "grpo")
			if r < 0 || r > 1+1e-12 || (m != n && r >= 1-1e-12) {
				t.Fatalf("m=%d n=%d r=%v", m, n, r)
			}
		}
		if OTCToolReward(1e6, n, true, 4, "grpo") > 1e-3 || OTCToolReward(1e6, 0, true, 4, "ppo") > 1e-3 {
			t.Fatalf("no decay")
		}
	}
	if OTCReward(0.9, 0, 1) != 0 {
		t.Fatal("wrong answer must give 0")
	}
}

func TestOTCGroupHistory(t *testing.T) {
	h := NewOTCHistory()
	cfg := OTCConfig{C: 4}
	// Step 1: correct rollouts use 2 and 3 calls -> n = 2.
	r, err := OTCGroup("q", []int{2, 3, 0}, []bool{true, true, false}, []float64{1, 1, 0}, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if !nearAll(r, []float64{1, OTCToolReward(3, 2, true, 4, "grpo"), 0}) {
		t.Fatalf("step 1: %v", r)
	}
	// Step 2: a correct rollout with 1 call lowers n to 1; the history keeps 1 afterwards.
	r, _ = OTCGroup("q", []int{1, 2}, []bool{true, true}, []float64{1, 1}, cfg, h)
	if !nearAll(r, []float64{1, 0.866025}) {
		t.Fatalf("step 2: %v", r)
	}
	if n, ok := h.MinCorrect("q"); !ok || n != 1 {
		t.Fatalf("history n=%d ok=%v", n, ok)
	}
	// Step 3: no correct rollout, format-only reward: n comes from the history (global scope).
	r, _ = OTCGroup("q", []int{2}, []bool{false}, []float64{0.5}, cfg, h)
	if !nearAll(r, []float64{0.5 * 0.866025}) {
		t.Fatalf("step 3: %v", r)
	}
	// Unknown prompt, no correct rollout: falls back to the PPO form.
	r, _ = OTCGroup("new", []int{2}, []bool{false}, []float64{0.5}, cfg, h)
	if !nearAll(r, []float64{0.5 * 0.707107}) {
		t.Fatalf("fallback: %v", r)
	}
	b, _ := json.Marshal(h)
	h2 := NewOTCHistory()
	if err := json.Unmarshal(b, h2); err != nil {
		t.Fatal(err)
	}
	if n, _ := h2.MinCorrect("q"); n != 1 || string(b) != `{"q":1}` {
		t.Fatalf("round trip %s", b)
	}
	if _, err := OTCGroup("q", []int{1}, []bool{true}, []float64{1}, OTCConfig{}, h); err == nil {
		t.Fatal("c = 0 accepted")
	}
}

// Spec A2 tables.
func TestHAPOLengthReward(t *testing.T) {
	cfg := DefaultHAPOConfig()
	cos := []struct {
		h       float64
		known   bool
		L       int
		correct bool
		want    float64
	}{
		{0, false, 500, true, 0},
		{1000, true, 500, true, 0.707107},
		{1000, true, 1000, true, 0},
		{1000, true, 1050, true, -0.078459},
		{1000, true, 1500, true, -0.7},
		{1000, true, 2500, true, -0.7},
		{1000, true, 500, false, 0},
		{1000, true, 1500, false, -0.707107},
		{1000, true, 2500, false, -1},
	}
	for _, tt := range cos {
		if got := HAPOLengthReward(tt.h, tt.known, tt.L, tt.correct, cfg); !near(got, tt.want) {
			t.Errorf("cosine h=%v L=%d c=%v: %v, want %v", tt.h, tt.L, tt.correct, got, tt.want)
		}
	}
	cfg.Type = "linear"
	lin := []struct {
		L       int
		correct bool
		want    float64
	}{{500, true, 0.5}, {1050, true, 0}, {1600, true, -0.5}, {3000, true, -0.7}, {1600, false, -0.5}, {3000, false, -1}}
	for _, tt := range lin {
		if got := HAPOLengthReward(1000, true, tt.L, tt.correct, cfg); !near(got, tt.want) {
			t.Errorf("linear L=%d c=%v: %v, want %v", tt.L, tt.correct, got, tt.want)
		}
	}
	if got := HAPORepetition([]int{1, 2, 3, 1, 2, 3}, 3, -1); !near(got, -0.5) {
		t.Errorf("repetition %v, want -0.5", got)
	}
	if HAPORepetition([]int{1, 2, 3, 1, 2, 3}, 3, 0) != 0 {
		t.Error("penalty 0 must disable")
	}
}

func TestHAPOHistoryAndGroup(t *testing.T) {
	cfg := DefaultHAPOConfig()
	h := NewHAPOHistory("min")
	// First batch: history null, so the first correct solutions get rlen = 0 (property 2).
	r, err := HAPOGroup(h, []string{"a", "a", "a"}, []int{1000, 800, 300}, []bool{true, true, false}, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !nearAll(r, []float64{1, 1, 0}) {
		t.Fatalf("batch 1 %v", r)
	}
	if v, ok := h.Get("a"); !ok || v != 800 {
		t.Fatalf("h = %v", v)
	}
	// Second batch scored against h = 800; a longer correct one raises nothing (min mode).
	r, _ = HAPOGroup(h, []string{"a", "a"}, []int{400, 1200}, []bool{true, true}, nil, cfg)
	want := []float64{1 + math.Cos(0.5*math.Pi/2), 1 - 0.7} // 1200/800: cos floor -0.7
	if !nearAll(r, want) {
		t.Fatalf("batch 2 %v, want %v", r, want)
	}
	if v, _ := h.Get("a"); v != 400 {
		t.Fatalf("min mode h = %v, want 400", v)
	}
	// Mean mode: h = 900 after [800,1000]; then one more 600 -> r = 1/3 -> 1/3*600 + 2/3*900 = 800.
	m := NewHAPOHistory("mean")
	m.UpdateBatch([]string{"q", "q", "q"}, []int{800, 1000, 5}, []bool{true, true, false})
	m.UpdateBatch([]string{"q"}, []int{600}, []bool{true})
	if v, _ := m.Get("q"); !near(v, 800) {
		t.Fatalf("mean mode h = %v, want 800", v)
	}
	// Merge (data parallel): min element-wise; mean count-weighted.
	o := NewHAPOHistory("min")
	o.UpdateBatch([]string{"a", "b"}, []int{350, 90}, []bool{true, true})
	h.Merge(o)
	if v, _ := h.Get("a"); v != 350 {
		t.Fatalf("merge min a = %v", v)
	}
	m2 := NewHAPOHistory("mean")
	m2.UpdateBatch([]string{"q"}, []int{1400}, []bool{true}) // cnt 1
	m.Merge(m2)                                              // (800*3 + 1400*1)/4 = 950
	if v, _ := m.Get("q"); !near(v, 950) {
		t.Fatalf("merge mean q = %v", v)
	}
	// Checkpoint round trip.
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back HAPOHistory
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if v, ok := back.Get("b"); !ok || v != 90 || back.Mode != "min" {
		t.Fatalf("round trip %s", b)
	}
	// Sentinel: values >= 100000 mean null.
	back.H["z"] = 100000
	if _, ok := back.Get("z"); ok {
		t.Fatal("sentinel read as a length")
	}
	bad := cfg
	bad.Weight = 1.5
	if _, err := HAPOGroup(h, nil, nil, nil, nil, bad); err == nil {
		t.Fatal("w_lr > 1 accepted")
	}
}

// Spec A3 worked numbers: the length weights among correct responses.
func TestDRPOLengthWeights(t *testing.T) {
	w, err := DRPOLengthWeights([]string{"g", "g", "g", "h"}, []int{100, 300, 50, 700}, []bool{true, true, false, true}, 1000, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !nearAll(w, []float64{0.880797, 0.119203, 0, 1}) {
		t.Fatalf("w = %v", w)
	}
	// Shift invariance and large lambda -> uniform.
	w2, _ := DRPOLengthWeights([]string{"g", "g"}, []int{150, 350}, []bool{true, true}, 1000, 0.1)
	w3, _ := DRPOLengthWeights([]string{"g", "g"}, []int{100, 300}, []bool{true, true}, 1000, 1e9)
	if !nearAll(w2, w[:2]) || !nearAll(w3, []float64{0.5, 0.5}) {
		t.Fatalf("shift %v uniform %v", w2, w3)
	}
	if _, err := DRPOLengthWeights(nil, nil, nil, 1000, 0); err == nil {
		t.Fatal("lambda 0 accepted")
	}
}

// Spec A5.
func TestRuleReward(t *testing.T) {
	r, err := RuleReward([]bool{true, false, true, true})
	if err != nil || r != 0.75 {
		t.Fatalf("%v %v", r, err)
	}
	r2, _ := RuleReward([]bool{true, true, false, true})
	if r2 != r {
		t.Fatal("order matters")
	}
	if _, err := RuleReward(nil); err == nil {
		t.Fatal("K = 0 accepted")
	}
	if _, err := NewRuleSet(nil); err == nil {
		t.Fatal("empty rule set accepted")
	}
	judge := func(out string) func(string, string) (bool, error) {
		return func(string, string) (bool, error) { return ParseJudgeVerdict(out), nil }
	}
	rs, _ := NewRuleSet([]Rule{
		{"short", func(_, resp string) (bool, error) { return len(resp) < 20, nil }},
		{"judge yes", judge("Verdict: YES, it does.")},
		{"judge no", judge("No. yes would be wrong")},
		{"judge junk", judge("maybe")},
		{"erroring", func(string, string) (bool, error) { return true, errors.New("judge unreachable") }},
		{"panicking", func(string, string) (bool, error) { panic("boom") }},
	})
	score, verdicts, errs := rs.Score("p", "short answer")
	if !near(score, 2.0/6) || len(errs) != 2 || !strings.Contains(errs[1].Error(), `rule "panicking": panicked: boom`) {
		t.Fatalf("score %v verdicts %v errs %v", score, verdicts, errs)
	}
	// Combined with a correctness reward by weights.
	c := Components{}
	c.Add("correct", []float64{1, 0})
	c.Add("rule", []float64{0.75, 0.25})
	got, err := c.Combine(map[string]float64{"correct": 1, "rule": 0.5})
	if err != nil || !nearAll(got, []float64{1.375, 0.125}) {
		t.Fatalf("combine %v %v", got, err)
	}
}

func TestComponentsErrors(t *testing.T) {
	c := Components{}
	c.Add("a", []float64{1, 2})
	if err := c.Add("b", []float64{1}); err == nil {
		t.Fatal("length mismatch accepted")
	}
	if _, err := c.Combine(map[string]float64{}); err == nil || !strings.Contains(err.Error(), `"a" has no weight`) {
		t.Fatalf("missing weight: %v", err)
	}
	if _, err := c.Combine(map[string]float64{"a": 1, "typo": 1}); err == nil || !strings.Contains(err.Error(), `"typo" names no component`) {
		t.Fatalf("extra weight: %v", err)
	}
}

// Spec A6 worked numbers.
func TestASPOShape(t *testing.T) {
	acorr := []float64{0.866024, 0.866024, -0.866024, -0.866024}
	args := func(delta, k float64) []float64 {
		a, err := ASPOShape(acorr, []bool{true, true, false, false}, []bool{true, true, true, false},
			[]int{100, 500, 10, 0}, []int{1000, 1000, 900, 800}, []string{"g", "g", "g", "g"}, delta, k)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if got := args(-2, 0.7); !nearAll(got, []float64{1.266024, 0.466024, -0.866024, -0.866024}) {
		t.Errorf("conservative %v", got)
	}
	if got := args(-2.5, 0.9); !nearAll(got, []float64{1.366024, 0.366024, -0.866024, -0.866024}) {
		t.Errorf("aggressive %v", got)
	}
	// The clip binds when the bias exceeds k|A|.
	a, _ := ASPOShape([]float64{0.1, 0.1}, []bool{true, true}, []bool{true, true}, []int{0, 1000}, []int{1000, 1000}, []string{"g", "g"}, -2, 0.7)
	if !nearAll(a, []float64{0.17, 0.03}) {
		t.Errorf("clipped %v", a)
	}
}
