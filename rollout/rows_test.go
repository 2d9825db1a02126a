package rollout

import (
	"math"
	"slices"
	"testing"
)

// TestSampleRowsMatchesSample: rows seeded (s, i) with Sample's configuration draw exactly what
// Sample(…, s) draws, whatever other rows share the batch; each row keeps its own token limit,
// stop tokens and temperature; the callback can end a row.
func TestSampleRowsMatchesSample(t *testing.T) {
	z := []float32{0.3, 1.2, -0.5, 0.9, 0.1, 2.0, -1.0, 0.7}
	cfg := Config{Temperature: 0.9, TopK: 6, TopP: 0.95, MaxNewTokens: 12, StopTokens: []int32{6}}
	prompts := [][]int32{{1}, {1}, {1}}
	want, err := Sample(&fixedDecoder{z: z}, prompts, cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	greedy := Config{Temperature: 0, MaxNewTokens: 3}
	short := cfg
	short.MaxNewTokens = 2
	rows := []Row{
		{Prompt: []int32{1}, Config: greedy, TopLogProbs: 3},
		{Prompt: []int32{1}, Config: cfg, Seed: 42, Stream: 0},
		{Prompt: []int32{1}, Config: cfg, Seed: 42, Stream: 1},
		{Prompt: []int32{1}, Config: short, Seed: 7},
		{Prompt: []int32{1}, Config: cfg, Seed: 42, Stream: 2},
		{Prompt: []int32{1}, Config: cfg, Seed: 9},
	}
	calls := make([]int, len(rows))
	got, err := SampleRows(&fixedDecoder{z: z}, rows, func(i int, c *Completion, top []TopToken) bool {
		calls[i]++
		if i == 0 {
			// z's top three: 5 (2.0), 1 (1.2), 3 (0.9), as log_softmax
			var s float64
			for _, v := range z {
				s += math.Exp(float64(v))
			}
			for k, id := range []int32{5, 1, 3} {
				want := float32(float64(z[id]) - math.Log(s))
				if top[k].Token != id || math.Abs(float64(top[k].LogProb-want)) > 1e-6 {
					t.Errorf("top[%d] = %+v, want token %d logprob %v", k, top[k], id, want)
				}
			}
		}
		return i == 5 && len(c.Tokens) == 4 // the callback ends row 5 after 4 tokens
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, i := range []int{1, 2, 4} {
		if !slices.Equal(got[i].Tokens, want[k].Tokens) || !slices.Equal(got[i].LogProbs, want[k].LogProbs) || got[i].Finish != want[k].Finish {
			t.Errorf("row %d = %v %v %s, want Sample's row %d %v %v %s", i, got[i].Tokens, got[i].LogProbs, got[i].Finish,
				k, want[k].Tokens, want[k].LogProbs, want[k].Finish)
		}
	}
	if !slices.Equal(got[0].Tokens, []int32{5, 5, 5}) || got[0].Finish != FinishLength || calls[0] != 3 {
		t.Errorf("greedy row = %v %s after %d calls, want [5 5 5] length after 3", got[0].Tokens, got[0].Finish, calls[0])
	}
	if len(got[3].Tokens) > 2 || (len(got[3].Tokens) < 2 && got[3].Finish != FinishStop) {
		t.Errorf("row with max 2 tokens = %v %s", got[3].Tokens, got[3].Finish)
	}
	if len(got[5].Tokens) > 4 || calls[5] > 4 || (len(got[5].Tokens) == 4 && got[5].Finish != FinishStop) {
		t.Errorf("row ended by the callback after 4 tokens = %v %s (%d calls)", got[5].Tokens, got[5].Finish, calls[5])
	}
}

// TestTopLogProbs: the top list is sorted, ties go to the lower id, and k is capped at V.
func TestTopLogProbs(t *testing.T) {
	z := []float32{1, 3, 3, -2, 0}
	got := TopLogProbs(nil, z, 10)
	ids := make([]int32, len(got))
	for i, g := range got {
		ids[i] = g.Token
	}
	if !slices.Equal(ids, []int32{1, 2, 0, 4, 3}) {
		t.Fatalf("order %v, want [1 2 0 4 3]", ids)
	}
	var s float64
	for _, g := range got {
		s += math.Exp(float64(g.LogProb))
	}
	if math.Abs(s-1) > 1e-6 {
		t.Errorf("probabilities of the full list sum to %v, want 1", s)
	}
	if got := TopLogProbs(nil, z, 2); len(got) != 2 || got[0].Token != 1 || got[1].Token != 2 {
		t.Errorf("top 2 = %+v", got)
	}
}
