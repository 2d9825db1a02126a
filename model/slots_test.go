package model

import (
	"math"
	"testing"
)

// TestSlotsJoinLeave runs sequences that enter and leave a Slots decoder at different steps —
// into a fresh decoder, into free slots while others decode, into a slot freed by a finished
// sequence, across a Resize — and checks every logit row against a full forward pass over the
// sequence alone.
func TestSlotsJoinLeave(t *testing.T) {
	m, err := Load(fixtureDir("qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.NewSlots(2, 24)
	if err != nil {
		t.Fatal(err)
	}
	type live struct {
		seq    []int32
		logits []float32
		left   int // steps to run
	}
	rows := map[int]*live{}
	worst := 0.0
	check := func() {
		for _, r := range rows {
			ref, err := m.Logits([][]int32{r.seq}, [][]int32{ones(len(r.seq))})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range ref[0][len(r.seq)-1] {
				worst = math.Max(worst, math.Abs(float64(v-r.logits[k])))
			}
		}
	}
	insert := func(slots []int, prompts [][]int32, left []int) {
		t.Helper()
		lg, err := d.Insert(slots, prompts)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range slots {
			rows[s] = &live{seq: append([]int32(nil), prompts[i]...), logits: lg[i], left: left[i]}
		}
	}
	step := func() {
		t.Helper()
		var slots []int
		var toks []int32
		for s, r := range rows {
			if r.left == 0 {
				delete(rows, s) // finished: the slot is free
				continue
			}
			r.left--
			tok := int32((len(r.seq)*37 + s*11 + 5) % m.Config().VocabSize)
			r.seq = append(r.seq, tok)
			slots, toks = append(slots, s), append(toks, tok)
		}
		if len(slots) == 0 {
			return
		}
		lg, err := d.Step(slots, toks)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range slots {
			rows[s].logits = lg[i]
		}
		check()
	}
	insert([]int{0}, [][]int32{{5, 17, 33}}, []int{8})
	check()
	step()
	step()
	insert([]int{1}, [][]int32{{100, 7, 250, 31, 9, 12, 64}}, []int{2}) // joins a running batch
	check()
	step()
	step()
	step()                                      // slot 1 finishes
	insert([]int{1}, [][]int32{{42}}, []int{3}) // reuses the freed slot
	check()
	// step slot 1 alone: slot 0, not stepped, must keep its cache as it is
	r1 := rows[1]
	r1.left--
	tok := int32(77 % m.Config().VocabSize)
	r1.seq = append(r1.seq, tok)
	lg, err := d.Step([]int{1}, []int32{tok})
	if err != nil {
		t.Fatal(err)
	}
	r1.logits = lg[0]
	check()
	if err := d.Resize(4, 32); err != nil {
		t.Fatal(err)
	}
	insert([]int{2, 3}, [][]int32{{8, 9}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}}, []int{4, 4})
	check()
	for range 5 {
		step()
	}
	t.Logf("max |slots - forward| logit diff = %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("slot decoder logits differ from forward by %.3g > 1e-4", worst)
	}
	if _, err := d.Insert([]int{0}, [][]int32{make([]int32, 40)}); err == nil {
		t.Error("a prompt longer than the capacity was inserted")
	}
	if err := d.Resize(2, 32); err == nil {
		t.Error("Resize shrank the decoder")
	}
}
