package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/train"
)

// job is the rows of one HTTP request (n samples of each of its prompts) waiting to be sampled.
type job struct {
	ctx  context.Context
	eng  *engine // the served model (base or adapter) the rows sample from
	rows []rollout.Row
	// step sees every sampled token of the job's rows (row = index in rows); returning true ends
	// the row (a stop string). It runs on the batching goroutine and must be quick.
	step func(row int, c *rollout.Completion, top []rollout.TopToken) bool
	done chan jobResult // receives exactly one result

	// filled by the batching goroutine while the rows run
	comps   []rollout.Completion
	left    int
	err     error
	version int64
}

type jobResult struct {
	comps   []rollout.Completion
	version int64 // weight version the rows were sampled with
	err     error
}

// engine is one served model: the base weights, or the base with a LoRA adapter (a view that
// shares the base's weight tensors). Each has its own slot decoder while it has rows running.
type engine struct {
	name string
	dir  string // where the weights (or the adapter) came from
	pol  *train.Policy

	// owned by the batching goroutine
	slots *model.Slots
	run   *rollout.Running
}

// admitEvery bounds the steps a waiting request is kept out of a running batch.
const admitEvery = 4

var (
	errQueueFull = errors.New("queue full")
	errClosed    = errors.New("server shutting down")
)

// batcher runs queued jobs on the KV-cache decoder by continuous batching: at every decode step
// boundary it admits the jobs waiting (FIFO, while the rows fit maxBatch) into free slots of the
// running batch, and a row leaves its slot as soon as it finishes. queued bounds the rows
// waiting, so an overloaded server answers 429 at once instead of queueing without limit.
//
// Weight reloads run between steps when no row is running: while one waits, no new rows are
// admitted, the running ones finish with the old weights.
type batcher struct {
	maxBatch, maxQueue int

	mu       sync.Mutex
	queue    []*job
	queued   int // rows in queue
	live     int // rows running (written by the batching goroutine)
	ctrl     []func()
	closed   bool
	base     *engine
	adapters map[string]*engine
	wake     chan struct{}
	stopped  chan struct{}

	version atomic.Int64 // reloads so far
}

func newBatcher(base *engine, maxBatch, maxQueue int) *batcher {
	b := &batcher{maxBatch: maxBatch, maxQueue: maxQueue, base: base, adapters: map[string]*engine{},
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go b.loop()
	return b
}

func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
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
	b.signal()
	return nil
}

// close refuses new jobs and returns once the queued ones have been answered.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
	<-b.stopped
}

// control runs fn on the batching goroutine at the next moment no row is running (admission
// pauses until then) and returns fn's error.
func (b *batcher) control(fn func() error) error {
	res := make(chan error, 1)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errClosed
	}
	b.ctrl = append(b.ctrl, func() { res <- fn() })
	b.mu.Unlock()
	b.signal()
	return <-res
}

// engine returns the served model a request names: "" or the served name for the base, else a
// loaded adapter.
func (b *batcher) engine(name string) (*engine, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == "" || name == b.base.name {
		return b.base, true
	}
	e, ok := b.adapters[name]
	return e, ok
}

// served is a snapshot of one served model's fields (reloads change them under mu).
type served struct {
	name, dir string
	m         *model.Model
}

// models lists the base then the adapters by name.
func (b *batcher) models() (base served, adapters []served) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.adapters {
		adapters = append(adapters, served{e.name, e.dir, e.pol.Model})
	}
	sort.Slice(adapters, func(i, k int) bool { return adapters[i].name < adapters[k].name })
	return served{b.base.name, b.base.dir, b.base.pol.Model}, adapters
}

func (b *batcher) loop() {
	defer close(b.stopped)
	var running []*engine // engines with rows in their batch
	waited := 0           // steps since rows began waiting for admission
	for {
		b.mu.Lock()
		if len(b.ctrl) > 0 && b.live == 0 {
			ops := b.ctrl
			b.ctrl = nil
			b.mu.Unlock()
			for _, op := range ops {
				op()
			}
			continue
		}
		var admit []*job
		rows := 0
		// While a batch runs, new rows are admitted once a quarter of the batch (or every waiting
		// row) fits, or after admitEvery steps: each admission costs a prefill and an insertion
		// pass over the cache, so joining in groups pays them less often.
		free := b.maxBatch - b.live
		if len(b.ctrl) == 0 && (b.live == 0 || free >= min(b.queued, max(1, b.maxBatch/4)) || waited >= admitEvery) {
			waited = 0
			k := 0
			for k < len(b.queue) {
				n := len(b.queue[k].rows)
				if b.live+rows+n > b.maxBatch && (b.live > 0 || k > 0) {
					break
				}
				rows += n
				k++
			}
			admit = slices.Clone(b.queue[:k])
			b.queue = b.queue[k:]
			b.queued -= rows
		}
		pending := len(b.queue) > 0
		closed := b.closed && !pending
		idle := b.live == 0 && len(admit) == 0
		b.mu.Unlock()
		if idle {
			if closed {
				return
			}
			<-b.wake
			continue
		}
		if len(admit) == 0 && pending {
			waited++
		}
		running = b.admit(admit, running)
		kept := running[:0]
		for _, e := range running {
			if err := e.run.Step(); err != nil {
				e.slots, e.run = nil, nil // Step answered its rows with the error
			} else if e.run.Live() == 0 {
				e.slots, e.run = nil, nil // the next rows get a decoder sized for them
			}
			if e.run != nil {
				kept = append(kept, e)
			}
		}
		running = kept
	}
}

// admit starts jobs in their engines' batches (growing the slot decoders as needed) and returns
// the engines with rows running. Jobs whose client has gone are answered without sampling.
func (b *batcher) admit(jobs []*job, running []*engine) []*engine {
	byEngine := map[*engine][]*job{}
	var order []*engine
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		if byEngine[j.eng] == nil {
			order = append(order, j.eng)
		}
		byEngine[j.eng] = append(byEngine[j.eng], j)
	}
	for _, e := range order {
		js := byEngine[e]
		var entries []rollout.Entry
		longest, maxNew := 0, 0
		for _, j := range js {
			j.comps, j.left, j.version = make([]rollout.Completion, len(j.rows)), len(j.rows), b.version.Load()
			for i, r := range j.rows {
				longest, maxNew = max(longest, len(r.Prompt)), max(maxNew, r.Config.MaxNewTokens)
				entries = append(entries, b.entry(j, i))
			}
		}
		if err := e.fit(len(entries), model.SlotsNeed(longest, maxNew)); err != nil {
			switch {
			case errors.Is(err, model.ErrTooLarge) && e.run != nil:
				// the running batch cannot grow that far: the jobs wait until it has drained
				b.requeue(js)
			case e.run != nil: // a failed resize loses the running rows' caches
				e.run.Abort(err)
				e.slots, e.run = nil, nil
				running = slices.DeleteFunc(running, func(x *engine) bool { return x == e })
				fallthrough
			default:
				for _, j := range js {
					j.done <- jobResult{err: err}
				}
			}
			continue
		}
		b.addLive(len(entries))
		if err := e.run.Add(entries); err != nil && e.run.Live() == 0 {
			e.slots, e.run = nil, nil // every row was answered with the error
			running = slices.DeleteFunc(running, func(x *engine) bool { return x == e })
			continue
		}
		if !slices.Contains(running, e) {
			running = append(running, e)
		}
	}
	return running
}

// requeue puts jobs back at the head of the queue.
func (b *batcher) requeue(js []*job) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(slices.Clone(js), b.queue...)
	for _, j := range js {
		b.queued += len(j.rows)
	}
}

func (b *batcher) addLive(n int) {
	b.mu.Lock()
	b.live += n
	b.mu.Unlock()
}

// entry is row i of job j in a running batch.
func (b *batcher) entry(j *job, i int) rollout.Entry {
	return rollout.Entry{Row: j.rows[i],
		Each: func(c *rollout.Completion, top []rollout.TopToken) bool {
			if j.ctx.Err() != nil {
				return true // the client left: free the row
			}
			return j.step != nil && j.step(i, c, top)
		},
		Done: func(c rollout.Completion, err error) {
			b.addLive(-1)
			j.comps[i] = c
			if err != nil && j.err == nil {
				j.err = err
			}
			if j.left--; j.left == 0 {
				if j.err != nil {
					j.done <- jobResult{err: j.err}
				} else {
					j.done <- jobResult{comps: j.comps, version: j.version}
				}
			}
		}}
}

// fit makes room in the engine's batch for rows more rows that need a cache of need positions:
// a new slot decoder when none runs (its batch the next power of two, so that few graphs are
// compiled), else the running one grown.
func (e *engine) fit(rows, need int) error {
	capacity := model.SlotsCapacity(need)
	if e.slots == nil {
		batch := 1
		for batch < rows {
			batch *= 2
		}
		s, err := e.pol.Model.NewSlots(batch, capacity)
		if errors.Is(err, model.ErrTooLarge) {
			s, err = e.pol.Model.NewSlots(rows, capacity)
		}
		if err != nil {
			return err
		}
		e.slots, e.run = s, rollout.NewRunning(s)
		return nil
	}
	if e.run.Free() >= rows && e.slots.Capacity() >= need {
		return nil
	}
	batch := e.slots.Slots()
	for batch-e.run.Live() < rows {
		batch *= 2
	}
	return e.slots.Resize(batch, max(e.slots.Capacity(), capacity))
}

// checkArch refuses weights of another architecture than the served ones.
func checkArch(dir string, got, want model.Config) error {
	if got.ModelType != want.ModelType || got.VocabSize != want.VocabSize ||
		got.HiddenSize != want.HiddenSize || got.NumLayers != want.NumLayers {
		return fmt.Errorf("%s holds a %s model (vocab %d, hidden %d, %d layers), the server a %s model (vocab %d, hidden %d, %d layers)",
			dir, got.ModelType, got.VocabSize, got.HiddenSize, got.NumLayers, want.ModelType, want.VocabSize, want.HiddenSize, want.NumLayers)
	}
	return nil
}

// reload swaps in the weights of a model folder once no row is running (admission pauses until
// then). The new weights must have the architecture of the served ones; loaded adapters are
// re-read from their folders onto the new weights.
func (b *batcher) reload(dir string) (int64, error) {
	m, err := model.Load(dir)
	if err != nil {
		return 0, err
	}
	base, _ := b.models()
	if err := checkArch(dir, m.Config(), base.m.Config()); err != nil {
		return 0, err
	}
	if err := m.CheckFinite(); err != nil {
		return 0, fmt.Errorf("%s: %w", dir, err)
	}
	var v int64
	err = b.control(func() error {
		b.mu.Lock()
		ads := make(map[string]*model.Model, len(b.adapters))
		for name, e := range b.adapters {
			a, err := m.LoadAdapter(e.dir, 0)
			if err != nil {
				b.mu.Unlock()
				return fmt.Errorf("adapter %s on the new weights: %w", name, err)
			}
			ads[name] = a
		}
		p := *b.base.pol
		p.Model = m
		b.base.pol, b.base.dir = &p, dir
		for name, e := range b.adapters {
			q := *e.pol
			q.Model = ads[name]
			e.pol = &q
		}
		b.mu.Unlock()
		v = b.version.Add(1)
		return nil
	})
	return v, err
}

// loadAdapter serves the PEFT adapter in dir, on the served weights, as model name.
func (b *batcher) loadAdapter(name, dir string) error {
	for {
		base, _ := b.models()
		bm := base.m
		if bm.HasAdapter() {
			return fmt.Errorf("the served model %s already carries an adapter; serve its base model to add adapters", base.name)
		}
		m, err := bm.LoadAdapter(dir, 0)
		if err != nil {
			return err
		}
		b.mu.Lock()
		switch {
		case b.closed:
			b.mu.Unlock()
			return errClosed
		case name == b.base.name || b.adapters[name] != nil:
			b.mu.Unlock()
			return fmt.Errorf("the model %q is already served", name)
		case b.base.pol.Model != bm: // the weights were reloaded meanwhile: load onto the new ones
			b.mu.Unlock()
			continue
		}
		p := *b.base.pol
		p.Model = m
		b.adapters[name] = &engine{name: name, dir: dir, pol: &p}
		b.mu.Unlock()
		return nil
	}
}

// unloadAdapter stops serving an adapter; requests already accepted for it finish.
func (b *batcher) unloadAdapter(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.adapters[name] == nil {
		return fmt.Errorf("no adapter named %q is loaded", name)
	}
	delete(b.adapters, name)
	return nil
}
