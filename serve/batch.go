package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/train"
)

// job is the rows of one HTTP request (n samples of each of its prompts) waiting to be sampled.
type job struct {
	ctx  context.Context
	rows []rollout.Row
	// step sees every sampled token of the job's rows (row = index in rows); returning true ends
	// the row (a stop string). It runs on the batching goroutine and must be quick.
	step func(row int, c *rollout.Completion, top []rollout.TopToken) bool
	done chan jobResult // receives exactly one result
}

type jobResult struct {
	comps   []rollout.Completion
	version int64 // weight version the rows were sampled with
	err     error
}

var (
	errQueueFull = errors.New("queue full")
	errClosed    = errors.New("server shutting down")
)

// batcher runs queued jobs on the KV-cache decoder. Every round it takes the jobs waiting at that
// moment, as many as fit maxBatch rows, and decodes them together in one batch (dynamic
// batching): requests that arrive during a round wait for the next one. queued bounds the rows
// waiting, so an overloaded server answers 429 at once instead of queueing without limit.
type batcher struct {
	maxBatch, maxQueue int

	mu      sync.Mutex
	queue   []*job
	queued  int // rows in queue
	closed  bool
	wake    chan struct{}
	stopped chan struct{}

	polMu   sync.Mutex // held while a batch runs and while weights are swapped
	pol     *train.Policy
	version atomic.Int64 // reloads so far
}

func newBatcher(pol *train.Policy, maxBatch, maxQueue int) *batcher {
	b := &batcher{maxBatch: maxBatch, maxQueue: maxQueue, pol: pol,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go b.loop()
	return b
}

// submit queues a job, or refuses it when the queue has no room for its rows.
func (b *batcher) submit(j *job) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return errClosed
	case b.queued+len(j.rows) > b.maxQueue:
		return errQueueFull
	}
	b.queue = append(b.queue, j)
	b.queued += len(j.rows)
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// close refuses new jobs and returns once the queued ones have been answered.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-b.stopped
}

// take removes the next round's jobs from the queue: the first job, then every following job
// while the rows fit maxBatch.
func (b *batcher) take() (round []*job, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rows := 0
	k := 0
	for k < len(b.queue) && (k == 0 || rows+len(b.queue[k].rows) <= b.maxBatch) {
		rows += len(b.queue[k].rows)
		k++
	}
	round = append(round, b.queue[:k]...)
	b.queue = b.queue[k:]
	b.queued -= rows
	return round, b.closed
}

func (b *batcher) loop() {
	defer close(b.stopped)
	for {
		round, closed := b.take()
		if len(round) == 0 {
			if closed {
				return
			}
			<-b.wake
			continue
		}
		b.run(round)
	}
}

// run samples one round. Jobs whose client has gone are answered without sampling.
func (b *batcher) run(round []*job) {
	var live []*job
	for _, j := range round {
		if err := j.ctx.Err(); err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	var rows []rollout.Row
	owner := make([]int, 0, len(rows)) // global row -> job
	first := make([]int, len(live))    // job -> its first global row
	maxPrompt, maxNew := 0, 0
	for k, j := range live {
		first[k] = len(rows)
		for _, r := range j.rows {
			rows = append(rows, r)
			owner = append(owner, k)
			maxPrompt = max(maxPrompt, len(r.Prompt))
			maxNew = max(maxNew, r.Config.MaxNewTokens)
		}
	}
	b.polMu.Lock()
	defer b.polMu.Unlock()
	comps, err := b.sample(rows, maxPrompt+maxNew, func(i int, c *rollout.Completion, top []rollout.TopToken) bool {
		k := owner[i]
		j := live[k]
		if j.ctx.Err() != nil {
			return true // the client left: free the row
		}
		return j.step != nil && j.step(i-first[k], c, top)
	})
	for k, j := range live {
		if err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		j.done <- jobResult{comps: comps[first[k] : first[k]+len(j.rows)], version: b.version.Load()}
	}
}

// sample runs rows on a decoder whose batch is the next power of two (so that few decode graphs
// are compiled).
func (b *batcher) sample(rows []rollout.Row, maxLen int, step rollout.RowStep) ([]rollout.Completion, error) {
	batch := 1
	for batch < len(rows) {
		batch *= 2
	}
	dec, err := b.pol.Model.NewDecoder(batch, maxLen)
	if errors.Is(err, model.ErrTooLarge) {
		dec, err = b.pol.Model.NewDecoder(len(rows), maxLen)
	}
	if err != nil {
		return nil, err
	}
	return rollout.SampleRows(dec, rows, step)
}

// reload swaps in the weights of a model folder between two batches. The new weights must have
// the architecture of the served ones.
func (b *batcher) reload(dir string) (int64, error) {
	m, err := model.Load(dir)
	if err != nil {
		return 0, err
	}
	b.polMu.Lock()
	defer b.polMu.Unlock()
	if got, want := m.Config(), b.pol.Model.Config(); got.ModelType != want.ModelType || got.VocabSize != want.VocabSize ||
		got.HiddenSize != want.HiddenSize || got.NumLayers != want.NumLayers {
		return 0, fmt.Errorf("%s holds a %s model (vocab %d, hidden %d, %d layers), the server a %s model (vocab %d, hidden %d, %d layers)",
			dir, got.ModelType, got.VocabSize, got.HiddenSize, got.NumLayers, want.ModelType, want.VocabSize, want.HiddenSize, want.NumLayers)
	}
	if err := m.CheckFinite(); err != nil {
		return 0, fmt.Errorf("%s: %w", dir, err)
	}
	p := *b.pol
	p.Model = m
	b.pol = &p
	return b.version.Add(1), nil
}
