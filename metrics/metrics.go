// Package metrics records a run: one JSON line per step in metrics.jsonl, and PNG plots of the curves.
// It only records; it decides nothing.
package metrics

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"
)

// Record is one line of metrics.jsonl: the step, the phase it belongs to and named values.
type Record struct {
	Step   int                `json:"step"`
	Phase  string             `json:"phase"`
	Values map[string]float64 `json:"values"`
	Time   float64            `json:"time,omitempty"` // Unix seconds when written (the dashboard's wall-time axis)
}

// Log appends records to a JSONL file, one line per record, flushed at every write so a killed run
// keeps every completed step.
type Log struct {
	f  *os.File
	tb *EventWriter
}

// Open opens (or creates) path for appending.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open metrics: %w", err)
	}
	return &Log{f: f}, nil
}

// Write appends one record. JSON has no NaN or Inf, so non-finite values are dropped and counted in
// "nonfinite_values".
func (l *Log) Write(r Record) error {
	clean := make(map[string]float64, len(r.Values))
	dropped := 0
	for k, v := range r.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			dropped++
			continue
		}
		clean[k] = v
	}
	if dropped > 0 {
		clean["nonfinite_values"] = float64(dropped)
	}
	r.Values = clean
	if r.Time == 0 {
		r.Time = unixSeconds(time.Now())
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	if l.tb != nil {
		tagged := make(map[string]float64, len(clean))
		for k, v := range clean {
			tagged[r.Phase+"/"+k] = v
		}
		return l.tb.WriteScalars(int64(r.Step), r.Time, tagged)
	}
	return nil
}

// TensorBoard also writes every record to a new event file in dir, each value tagged
// "phase/name" (e.g. rl/reward_mean).
func (l *Log) TensorBoard(dir string) error {
	w, err := NewEventWriter(dir)
	if err != nil {
		return err
	}
	l.tb = w
	return nil
}

// Close closes the file (and the event file).
func (l *Log) Close() error {
	err := l.f.Close()
	if l.tb != nil {
		if e := l.tb.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Read returns every record of a metrics file. A torn last line (a run killed mid-write) is ignored.
func Read(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	line := 0
	var pendingErr error
	for sc.Scan() {
		line++
		if pendingErr != nil { // a bad line that is not the last one is real corruption
			return nil, pendingErr
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			pendingErr = fmt.Errorf("%s line %d: %w", path, line, err)
			continue
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// Rewrite replaces path with the given records (atomically), used on resume to drop the steps after
// the checkpoint that the resumed run will redo.
func Rewrite(path string, records []Record) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, r := range records {
		line, err := json.Marshal(r)
		if err != nil {
			f.Close()
			return err
		}
		w.Write(append(line, '\n'))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Series extracts (step, value) pairs of one key for one phase ("" = any phase), skipping records
// without the key.
func Series(records []Record, phase, key string) (xs, ys []float64) {
	for _, r := range records {
		if phase != "" && r.Phase != phase {
			continue
		}
		if v, ok := r.Values[key]; ok {
			xs = append(xs, float64(r.Step))
			ys = append(ys, v)
		}
	}
	return xs, ys
}

// Keys lists every value name present in the records, sorted.
func Keys(records []Record) []string {
	seen := map[string]bool{}
	for _, r := range records {
		for k := range r.Values {
			seen[k] = true
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
