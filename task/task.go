// Package task holds what a policy is asked to do: examples (a prompt plus what a verifier needs),
// datasets loaded from JSONL or Parquet, and seeded synthetic task generators.
//
// The package never samples from a model; it only produces prompts and reference answers.
package task

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
)

// Message is one turn of a chat conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Example is one prompt and what a verifier needs to score a response to it.
//
// Either Prompt (plain text) or Messages (chat) is set. Answer is the reference answer in the form a
// verifier compares against (for code tasks: the tests). Meta carries task-specific data, for
// example the generator name under key "task" and the numbers of a countdown puzzle.
type Example struct {
	ID       string            `json:"id"`
	Prompt   string            `json:"prompt,omitempty"`
	Messages []Message         `json:"messages,omitempty"`
	Answer   string            `json:"answer"`
	Meta     map[string]string `json:"meta,omitempty"`
}

// Source yields examples one at a time. A finite source returns io.EOF when exhausted;
// generators never do.
type Source interface {
	Next() (Example, error)
}

// Dataset is a loaded, in-memory list of examples.
type Dataset struct {
	// Name describes where the examples came from (a path), for error messages.
	Name     string
	Examples []Example
	// Skipped lists the malformed rows dropped under OnError "skip", one error each
	// (file, row, field), so a skip is never silent.
	Skipped []error
}

// Len is the number of examples.
func (d *Dataset) Len() int { return len(d.Examples) }

// Shuffled returns a copy of the dataset in an order drawn from seed.
func (d *Dataset) Shuffled(seed int64) *Dataset {
	out := &Dataset{Name: d.Name, Examples: append([]Example(nil), d.Examples...), Skipped: d.Skipped}
	rng := rand.New(rand.NewSource(seed))
	rng.Shuffle(len(out.Examples), func(i, j int) { out.Examples[i], out.Examples[j] = out.Examples[j], out.Examples[i] })
	return out
}

// Split shuffles by seed and puts round(testFrac*Len) examples in test, the rest in train.
// testFrac outside [0,1] is clamped. The same seed always gives the same split.
func (d *Dataset) Split(testFrac float64, seed int64) (train, test *Dataset) {
	if testFrac < 0 {
		testFrac = 0
	}
	if testFrac > 1 {
		testFrac = 1
	}
	s := d.Shuffled(seed)
	nTest := int(testFrac*float64(len(s.Examples)) + 0.5)
	test = &Dataset{Name: d.Name + "[test]", Examples: s.Examples[:nTest:nTest]}
	train = &Dataset{Name: d.Name + "[train]", Examples: s.Examples[nTest:]}
	return train, test
}

// Iter returns a Source over the dataset. With loop false it yields every example once, in a
// seeded shuffled order, then io.EOF. With loop true it never ends: each epoch is reshuffled with
// the next draw of the same seeded source. A seed of -1 keeps the file order (first epoch only).
func (d *Dataset) Iter(seed int64, loop bool) Source {
	it := &datasetIter{d: d, loop: loop}
	if seed != -1 {
		it.rng = rand.New(rand.NewSource(seed))
	}
	it.newEpoch()
	return it
}

type datasetIter struct {
	d     *Dataset
	rng   *rand.Rand
	loop  bool
	order []int
	pos   int
}

func (it *datasetIter) newEpoch() {
	it.order = make([]int, len(it.d.Examples))
	for i := range it.order {
		it.order[i] = i
	}
	if it.rng != nil {
		it.rng.Shuffle(len(it.order), func(i, j int) { it.order[i], it.order[j] = it.order[j], it.order[i] })
	}
	it.pos = 0
}

func (it *datasetIter) Next() (Example, error) {
	if len(it.d.Examples) == 0 {
		return Example{}, fmt.Errorf("dataset %s is empty", it.d.Name)
	}
	if it.pos == len(it.order) {
		if !it.loop {
			return Example{}, io.EOF
		}
		if it.rng == nil {
			it.rng = rand.New(rand.NewSource(0))
		}
		it.newEpoch()
	}
	ex := it.d.Examples[it.order[it.pos]]
	it.pos++
	return ex, nil
}

// Take draws n examples from a source, stopping early at io.EOF.
func Take(s Source, n int) ([]Example, error) {
	out := make([]Example, 0, n)
	for len(out) < n {
		ex, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, err
		}
		out = append(out, ex)
	}
	return out, nil
}
