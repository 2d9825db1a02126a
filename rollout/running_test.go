package rollout_test

import (
	"math"
	"testing"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
)

// TestRunningMatchesAlone: rows that join a continuous batch at different steps, share it with
// other rows, and leave at different times sample exactly what each samples alone (SampleRows
// over a decoder of its own): the same tokens, and log-probs equal to 1e-4. Rows also reuse slots
// freed by earlier rows and the decoder grows on the way.
func TestRunningMatchesAlone(t *testing.T) {
	m, err := model.Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config().VocabSize
	var rows []rollout.Row
	for i := range 7 {
		cfg := rollout.Config{Temperature: 0.8, TopP: 0.95, MaxNewTokens: 3 + 2*(i%4)}
		if i == 2 {
			cfg = rollout.Config{Temperature: 0, MaxNewTokens: 6}
		}
		p := make([]int32, 2+3*i%7)
		for j := range p {
			p[j] = int32((i*13 + j*5 + 1) % V)
		}
		rows = append(rows, rollout.Row{Prompt: p, Config: cfg, Seed: uint64(100 + i/2), Stream: uint64(i % 2), TopLogProbs: i % 3})
	}
	alone := make([]rollout.Completion, len(rows))
	for i, r := range rows {
		dec := kvDecoder(t, m, 1, len(r.Prompt)+r.Config.MaxNewTokens)
		c, err := rollout.SampleRows(dec, []rollout.Row{r}, nil)
		if err != nil {
			t.Fatal(err)
		}
		alone[i] = c[0]
	}

	slots, err := m.NewSlots(2, model.SlotsCapacity(model.SlotsNeed(8, 9)))
	if err != nil {
		t.Fatal(err)
	}
	run := rollout.NewRunning(slots)
	got := make([]*rollout.Completion, len(rows))
	tops := make([]int, len(rows))
	entry := func(i int) rollout.Entry {
		return rollout.Entry{Row: rows[i],
			Each: func(c *rollout.Completion, top []rollout.TopToken) bool {
				if len(top) != rows[i].TopLogProbs {
					t.Errorf("row %d: %d top entries, want %d", i, len(top), rows[i].TopLogProbs)
				}
				tops[i]++
				return false
			},
			Done: func(c rollout.Completion, err error) {
				if err != nil {
					t.Fatalf("row %d: %v", i, err)
				}
				got[i] = &c
			}}
	}
	next := 0
	for step := 0; next < len(rows) || run.Live() > 0; step++ {
		if step == 5 {
			if err := slots.Resize(4, slots.Capacity()); err != nil {
				t.Fatal(err)
			}
		}
		var add []rollout.Entry
		for next < len(rows) && len(add) < run.Free() && (step%2 == 0 || next == 0) {
			add = append(add, entry(next))
			next++
		}
		if err := run.Add(add); err != nil {
			t.Fatal(err)
		}
		if err := run.Step(); err != nil {
			t.Fatal(err)
		}
		if step > 100 {
			t.Fatal("the batch never drained")
		}
	}
	for i := range rows {
		g, w := got[i], alone[i]
		if g == nil {
			t.Fatalf("row %d never finished", i)
		}
		if len(g.Tokens) != len(w.Tokens) || g.Finish != w.Finish || tops[i] != len(w.Tokens) {
			t.Fatalf("row %d: tokens %v (%s), alone %v (%s)", i, g.Tokens, g.Finish, w.Tokens, w.Finish)
		}
		for k := range g.Tokens {
			if g.Tokens[k] != w.Tokens[k] {
				t.Fatalf("row %d: tokens %v, alone %v", i, g.Tokens, w.Tokens)
			}
			if d := math.Abs(float64(g.ModelLogProbs[k] - w.ModelLogProbs[k])); d > 1e-4 {
				t.Errorf("row %d token %d: log-prob %v, alone %v", i, k, g.ModelLogProbs[k], w.ModelLogProbs[k])
			}
			if d := math.Abs(float64(g.LogProbs[k] - w.LogProbs[k])); d > 1e-4 {
				t.Errorf("row %d token %d: behaviour log-prob %v, alone %v", i, k, g.LogProbs[k], w.LogProbs[k])
			}
		}
	}
}

// TestRunningRefusesEntry: an invalid entry (or one too many for the free slots) is answered with
// its error and the running rows carry on.
func TestRunningRefusesEntry(t *testing.T) {
	m, err := model.Load(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := m.NewSlots(2, 32)
	if err != nil {
		t.Fatal(err)
	}
	run := rollout.NewRunning(slots)
	var done []error
	entry := func(cfg rollout.Config) rollout.Entry {
		return rollout.Entry{Row: rollout.Row{Prompt: []int32{1, 2, 3}, Config: cfg},
			Done: func(_ rollout.Completion, err error) { done = append(done, err) }}
	}
	good := rollout.Config{Temperature: 0, MaxNewTokens: 4}
	if err := run.Add([]rollout.Entry{entry(good)}); err != nil {
		t.Fatal(err)
	}
	if err := run.Add([]rollout.Entry{entry(rollout.Config{Temperature: -1, MaxNewTokens: 4})}); err == nil || len(done) != 1 || done[0] == nil {
		t.Fatalf("invalid entry: Add %v, answers %v; want an error answered to it", err, done)
	}
	if err := run.Add([]rollout.Entry{entry(good), entry(good)}); err == nil || len(done) != 3 {
		t.Fatalf("two entries for one free slot: Add %v, answers %v", err, done)
	}
	if run.Live() != 1 {
		t.Fatalf("%d rows live after the refusals, want 1", run.Live())
	}
	for run.Live() > 0 {
		if err := run.Step(); err != nil {
			t.Fatal(err)
		}
	}
	if len(done) != 4 || done[3] != nil {
		t.Fatalf("the running row: answers %v, want it finished without error", done)
	}
}
