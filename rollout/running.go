package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SlotDecoder is a KV-cache decoder whose rows (slots) are filled and decoded independently, for
// continuous batching. *model.Slots satisfies it.
type SlotDecoder interface {
	// Slots is the number of slots (it may grow between calls, never shrink).
	Slots() int
	// Insert prefills prompts into free slots and returns each one's next-token logits.
	Insert(slots []int, prompts [][]int32) ([][]float32, error)
	// Step appends tokens[i] to slots[i] and returns those slots' next-token logits.
	Step(slots []int, tokens []int32) ([][]float32, error)
}

// Entry is one row joining a Running batch.
type Entry struct {
	Row Row
	// Each, when set, sees every sampled token (as RowStep, without the row index); returning
	// true ends the row with FinishStop.
	Each func(c *Completion, top []TopToken) (end bool)
	// Done receives the finished completion, or the error that ended the row. It is called once,
	// from the goroutine that calls Step (or Add, Abort).
	Done func(c Completion, err error)
}

// Running is a continuous batch over a SlotDecoder: rows join (Add) at step boundaries into free
// slots and leave as soon as they finish, instead of a batch running until its last row ends.
// Each row draws from its own PCG stream (Row.Seed, Row.Stream), so what it samples does not
// depend on which rows share its steps. Not safe for concurrent use.
type Running struct {
	dec  SlotDecoder
	rows []*liveRow // by slot; nil = free
	n    int        // live rows
}

type liveRow struct {
	e      Entry
	s      *sampler
	c      Completion
	logits []float32 // next-token logits, not yet sampled from
}

// NewRunning starts an empty continuous batch over dec.
func NewRunning(dec SlotDecoder) *Running { return &Running{dec: dec} }

// Decoder is the batch's decoder.
func (r *Running) Decoder() SlotDecoder { return r.dec }

// Live is the number of rows in the batch; Free the number of slots free for Add.
func (r *Running) Live() int { return r.n }
func (r *Running) Free() int { return r.dec.Slots() - r.n }

// Add prefills entries into free slots; they sample their first token at the next Step. An
// invalid entry (or too few free slots) ends every new entry (Done with the error) and leaves the
// running rows; a decoder failure ends every row of the batch. Either error is returned.
func (r *Running) Add(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}

	refuse := func(err error) error {
		for _, e := range entries {
			e.Done(Completion{}, err)
		}
		return err
	}
	if len(entries) > r.Free() {
		return refuse(fmt.Errorf("rollout: %d rows for %d free slots", len(entries), r.Free()))
	}
	for len(r.rows) < r.dec.Slots() {
		r.rows = append(r.rows, nil)
	}
	live := make([]*liveRow, len(entries))
	prompts := make([][]int32, len(entries))
	for i, e := range entries {
		row := e.Row
		if err := row.Config.Validate(); err != nil {
			return refuse(fmt.Errorf("row %d: %w", i, err))
		}
		if len(row.Prompt) == 0 {
			return refuse(fmt.Errorf("rollout: row %d has an empty prompt; every prompt needs at least one token", i))
		}
		if row.TopLogProbs < 0 {
			return refuse(fmt.Errorf("rollout: row %d asks for %d top log-probs, want >= 0", i, row.TopLogProbs))
		}
		cfg := row.Config
		cfg.StatsAfterLast = false
		var rng *rand.Rand
		if !cfg.greedy() {
			rng = rand.New(rand.NewPCG(row.Seed, row.Stream))
		}
		live[i] = &liveRow{e: e, s: newSampler(cfg, rng), c: Completion{AfterSelfCertainty: float32(math.NaN())}}
		prompts[i] = row.Prompt
	}
	slots := make([]int, 0, len(entries))
	for s, lr := range r.rows {
		if lr == nil && len(slots) < len(entries) {
			slots = append(slots, s)
		}
	}
	logits, err := r.dec.Insert(slots, prompts)
	if err != nil {
		err = fmt.Errorf("rollout: prefill: %w", err)
		for _, lr := range live {
			lr.e.Done(Completion{}, err)
		}
		r.Abort(err)
		return err
	}
	for i, s := range slots {
		live[i].logits = logits[i]
		r.rows[s] = live[i]
	}
	r.n += len(entries)
	return nil
}

// Abort ends every row with err (a decoder failure leaves every slot empty).
func (r *Running) Abort(err error) {
	for s, lr := range r.rows {
		if lr != nil {
			r.rows[s] = nil
			lr.e.Done(Completion{}, err)
		}
	}
	r.n = 0
}

// Step samples the next token of every row, finishes the rows that end (stop token, their own
// MaxNewTokens, or Each), and decodes one step for the others. A decoder failure ends every row
// (Done with the error) and is returned.
func (r *Running) Step() error {
	if r.n == 0 {
		return nil
	}
	slots := make([]int, 0, r.n)
	samplers := make([]*sampler, 0, r.n)
	logits := make([][]float32, 0, r.n)
	outs := make([]Completion, 0, r.n)
	for s, lr := range r.rows {
		if lr != nil {
			slots = append(slots, s)
			samplers = append(samplers, lr.s)
			logits = append(logits, lr.logits)
			outs = append(outs, lr.c)
		}
	}
	fail := func(err error) error {
		r.Abort(err)
		return err
	}
	for i, lr := range logits {
		if err := checkLogits([][]float32{lr}, 1, samplers[i].cfg.StopTokens); err != nil {
			return fail(fmt.Errorf("rollout: %w", err))
		}
	}
	if err := chooseAll(samplers, logits, make([]bool, len(slots)), outs); err != nil {
		return fail(fmt.Errorf("rollout: %w", err))
	}
	var top []TopToken
	var next []int
	var tokens []int32
	for i, s := range slots {
		lr := r.rows[s]
		lr.c, lr.logits = outs[i], nil
		c := &lr.c
		last := c.Tokens[len(c.Tokens)-1]
		top = top[:0]
		if k := lr.e.Row.TopLogProbs; k > 0 {
			top = TopLogProbs(top, logits[i], k)
		}
		done := false
		cfg := lr.s.cfg
		switch {
		case slices.Contains(cfg.StopTokens, last):
			c.Finish, done = FinishStop, true
		case len(c.Tokens) >= cfg.MaxNewTokens:
			c.Finish, done = FinishLength, true
		}
		if lr.e.Each != nil && lr.e.Each(c, top) && !done {
			c.Finish, done = FinishStop, true
		}
		if done {
			r.rows[s] = nil
			r.n--
			lr.e.Done(lr.c, nil)
			continue
		}
		next, tokens = append(next, s), append(tokens, last)
	}
	if len(next) == 0 {
		return nil
	}
	out, err := r.dec.Step(next, tokens)
	if err != nil {
		return fail(fmt.Errorf("rollout: decode step: %w", err))
	}
	for i, s := range next {
		r.rows[s].logits = out[i]
	}
	return nil
}
