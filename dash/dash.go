// Package dash serves the local web dashboard over run folders: live curves of several runs, the
// samples the model wrote, configs and their differences, checkpoints. It only reads run folders;
// the page and its charts are embedded in the binary (no CDN), so it works offline and on a
// machine that reaches nothing.
package dash

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/polo-rl/polo/metrics"
)

//go:embed assets
var assets embed.FS

// Server answers the page and its JSON API for a fixed list of root folders; the runs under them
// are looked up again on every /api/runs, so runs started after the server (a compare in
// progress) appear without a restart.
type Server struct {
	roots []string
	mu    sync.Mutex
	runs  []Run
}

// Run is one run folder as the page sees it.
type Run struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Dir   string `json:"dir"`
	Group string `json:"group"` // runs of one `polo compare` algorithm share it (name without -seedN)
	Seed  string `json:"seed,omitempty"`
	Algo  string `json:"algo,omitempty"`
	// Live is true while metrics.jsonl was written in the last 30 s.
	Live bool `json:"live"`
}

// New checks that the roots hold at least one run (a folder with metrics.jsonl or config.yaml, or
// such folders one or two levels below).
func New(roots []string) (*Server, error) {
	s := &Server{roots: roots}
	runs, err := s.scan()
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no run folder (one with metrics.jsonl or config.yaml) in %s", strings.Join(roots, ", "))
	}
	return s, nil
}

// Runs returns the runs found by the last scan.
func (s *Server) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Run(nil), s.runs...)
}

func isRun(dir string) bool {
	for _, f := range []string{"metrics.jsonl", "config.yaml"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

var seedSuffix = regexp.MustCompile(`^(.*)-seed(-?\d+)$`)

// scan finds the runs under the roots. IDs are positions in a list that only grows (a run
// keeps its ID for the page's life); a run whose folder disappeared stays listed.
func (s *Server) scan() ([]Run, error) {
	var dirs []string
	for _, root := range s.roots {
		st, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("run folder %s: %w", root, errors.Unwrap(err))
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("run folder %s: not a directory", root)
		}
		if isRun(root) {
			dirs = append(dirs, root)
			continue
		}
		for _, pattern := range []string{"*", filepath.Join("*", "*")} {
			matches, _ := filepath.Glob(filepath.Join(root, pattern))
			sort.Strings(matches)
			for _, m := range matches {
				if isRun(m) {
					dirs = append(dirs, m)
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known := map[string]bool{}
	for _, r := range s.runs {
		known[r.Dir] = true
	}
	for _, d := range dirs {
		if known[d] {
			continue
		}
		known[d] = true
		r := Run{ID: len(s.runs), Dir: d, Name: filepath.Base(d)}
		r.Group = r.Name
		if m := seedSuffix.FindStringSubmatch(r.Name); m != nil {
			r.Group, r.Seed = m[1], m[2]
		}
		s.runs = append(s.runs, r)
	}
	// Names must be unique on the page: fall back to the path for clashes.
	count := map[string]int{}
	for _, r := range s.runs {
		count[filepath.Base(r.Dir)]++
	}
	for i := range s.runs {
		if count[filepath.Base(s.runs[i].Dir)] > 1 {
			s.runs[i].Name = s.runs[i].Dir
		}
		s.runs[i].Live = false
		if st, err := os.Stat(filepath.Join(s.runs[i].Dir, "metrics.jsonl")); err == nil {
			s.runs[i].Live = time.Since(st.ModTime()) < 30*time.Second
		}
		if s.runs[i].Algo == "" {
			if flat, err := flatConfig(s.runs[i].Dir); err == nil {
				s.runs[i].Algo = flat["algo.name"]
				if s.runs[i].Seed == "" {
					s.runs[i].Seed = flat["seed"]
				}
			}
		}
	}
	return append([]Run(nil), s.runs...), nil
}

// Handler serves the page (/) and the API (/api/...).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/runs", s.handleRuns)
	mux.HandleFunc("GET /api/metrics", s.handleMetrics)
	mux.HandleFunc("GET /api/samples", s.handleSamples)
	mux.HandleFunc("GET /api/config", s.handleConfig)
	mux.HandleFunc("GET /api/diff", s.handleDiff)
	mux.HandleFunc("GET /api/checkpoints", s.handleCheckpoints)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// run looks up the run named by the query parameter key (an ID, never a path).
func (s *Server) run(w http.ResponseWriter, r *http.Request, key string) (Run, bool) {
	id, err := strconv.Atoi(r.URL.Query().Get(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || id < 0 || id >= len(s.runs) {
		http.Error(w, fmt.Sprintf("%s: no run %q", key, r.URL.Query().Get(key)), http.StatusBadRequest)
		return Run{}, false
	}
	return s.runs[id], true
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.scan()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, runs)
}

// maxChunk bounds one metrics answer; the page asks again from the returned offset.
const maxChunk = 4 << 20

// MetricsChunk is the answer of /api/metrics: the complete lines of metrics.jsonl from byte From
// on. Reset tells the page to drop what it has (the file was rewritten shorter, as on resume).
type MetricsChunk struct {
	Offset  int64            `json:"offset"` // where the next request starts
	Reset   bool             `json:"reset"`
	More    bool             `json:"more"` // another chunk is ready now
	Records []metrics.Record `json:"records"`
}

// ReadMetricsFrom returns the complete lines of path from byte offset from (torn last lines are
// left for the next call, when the writer has finished them).
func ReadMetricsFrom(path string, from int64) (MetricsChunk, error) {
	out := MetricsChunk{Records: []metrics.Record{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		out.Reset = from > 0
		return out, nil
	}
	if err != nil {
		return out, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return out, err
	}
	if from > st.Size() || from < 0 {
		out.Reset, from = true, 0
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return out, err
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxChunk))
	if err != nil {
		return out, err
	}
	end := bytes.LastIndexByte(buf, '\n') + 1
	out.More = from+int64(len(buf)) < st.Size() && end > 0
	sc := bufio.NewScanner(bytes.NewReader(buf[:end]))
	sc.Buffer(make([]byte, 1<<20), maxChunk)
	for sc.Scan() {
		var rec metrics.Record
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out.Records = append(out.Records, rec)
		}
	}
	out.Offset = from + int64(end)
	return out, nil
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	run, ok := s.run(w, r, "run")
	if !ok {
		return
	}
	from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	chunk, err := ReadMetricsFrom(filepath.Join(run.Dir, "metrics.jsonl"), from)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, chunk)
}

// SampleQuery filters the samples log.
type SampleQuery struct {
	Kind      string   // "" = all
	Step      *int     // nil = all steps
	MinReward *float64 // inclusive bounds
	MaxReward *float64
	Text      string // case-insensitive substring of prompt or response
	Limit     int    // newest first; ≤ 0 means 200
}

// SampleAnswer is the answer of /api/samples.
type SampleAnswer struct {
	Total   int              `json:"total"` // matching samples (Samples holds at most Limit of them)
	Steps   []int            `json:"steps"` // every step present (for the step picker)
	Kinds   []string         `json:"kinds"`
	Samples []metrics.Sample `json:"samples"`
}

// FilterSamples applies q to samples (oldest first) and returns the newest matches first.
func FilterSamples(samples []metrics.Sample, q SampleQuery) SampleAnswer {
	out := SampleAnswer{Steps: []int{}, Kinds: []string{}, Samples: []metrics.Sample{}}
	steps, kinds := map[int]bool{}, map[string]bool{}
	limit := q.Limit
	if limit <= 0 {
		limit = 200
	}
	text := strings.ToLower(q.Text)
	for i := len(samples) - 1; i >= 0; i-- {
		s := samples[i]
		steps[s.Step], kinds[s.Kind] = true, true
		switch {
		case q.Kind != "" && s.Kind != q.Kind,
			q.Step != nil && s.Step != *q.Step,
			q.MinReward != nil && s.Reward < *q.MinReward,
			q.MaxReward != nil && s.Reward > *q.MaxReward,
			text != "" && !strings.Contains(strings.ToLower(s.Prompt), text) && !strings.Contains(strings.ToLower(s.Response), text):
			continue
		}
		out.Total++
		if len(out.Samples) < limit {
			out.Samples = append(out.Samples, s)
		}
	}
	for st := range steps {
		out.Steps = append(out.Steps, st)
	}
	sort.Ints(out.Steps)
	for k := range kinds {
		out.Kinds = append(out.Kinds, k)
	}
	sort.Strings(out.Kinds)
	return out
}

func optFloat(v string) *float64 {
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return nil
	}
	return &f
}

func (s *Server) handleSamples(w http.ResponseWriter, r *http.Request) {
	run, ok := s.run(w, r, "run")
	if !ok {
		return
	}
	samples, err := metrics.ReadSamples(filepath.Join(run.Dir, "samples"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	v := r.URL.Query()
	q := SampleQuery{Kind: v.Get("kind"), Text: v.Get("q"), MinReward: optFloat(v.Get("min")), MaxReward: optFloat(v.Get("max"))}
	q.Limit, _ = strconv.Atoi(v.Get("limit"))
	if st, err := strconv.Atoi(v.Get("step")); err == nil {
		q.Step = &st
	}
	writeJSON(w, FilterSamples(samples, q))
}

// flatConfig reads dir/config.yaml as dotted keys ("sampling.group_size") to display values.
func flatConfig(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		return nil, err
	}
	var root any
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s/config.yaml: %w", dir, err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, x := range m {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				walk(key, x)
			}
			return
		}
		switch x := v.(type) {
		case string:
			out[prefix] = x
		case nil:
			out[prefix] = ""
		default:
			b, _ := json.Marshal(x)
			out[prefix] = string(b)
		}
	}
	walk("", root)
	return out, nil
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	run, ok := s.run(w, r, "run")
	if !ok {
		return
	}
	data, err := os.ReadFile(filepath.Join(run.Dir, "config.yaml"))
	if err != nil {
		http.Error(w, "config: "+err.Error(), http.StatusNotFound)
		return
	}
	writeJSON(w, map[string]string{"yaml": string(data)})
}

// ConfigDiff is one field whose value differs between two runs' configs ("" where absent).
type ConfigDiff struct {
	Key string `json:"key"`
	A   string `json:"a"`
	B   string `json:"b"`
}

// DiffConfigs lists the fields of a and b whose values differ, sorted by key.
func DiffConfigs(a, b map[string]string) []ConfigDiff {
	out := []ConfigDiff{}
	for k, va := range a {
		if vb, ok := b[k]; !ok || vb != va {
			out = append(out, ConfigDiff{k, va, vb})
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, ConfigDiff{k, "", vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *Server) handleDiff(w http.ResponseWriter, r *http.Request) {
	ra, ok := s.run(w, r, "a")
	if !ok {
		return
	}
	rb, ok := s.run(w, r, "b")
	if !ok {
		return
	}
	fa, err := flatConfig(ra.Dir)
	if err == nil {
		var fb map[string]string
		if fb, err = flatConfig(rb.Dir); err == nil {
			writeJSON(w, DiffConfigs(fa, fb))
			return
		}
	}
	http.Error(w, err.Error(), http.StatusNotFound)
}

// Checkpoint is one complete checkpoint folder of a run.
type Checkpoint struct {
	Name   string  `json:"name"`
	Phase  string  `json:"phase"`
	Step   int     `json:"step"`
	Time   float64 `json:"time"`  // Unix seconds of its state.json
	Bytes  int64   `json:"bytes"` // all files in it
	Latest bool    `json:"latest"`
}

var ckptName = regexp.MustCompile(`^([a-z]+)-(\d+)$`)

// ListCheckpoints lists dir/checkpoints/<phase>-<step> folders that hold a state.json (complete:
// the trainer renames a finished temporary folder into place), oldest step first.
func ListCheckpoints(dir string) ([]Checkpoint, error) {
	root := filepath.Join(dir, "checkpoints")
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return []Checkpoint{}, nil
	}
	if err != nil {
		return nil, err
	}
	latest, _ := os.ReadFile(filepath.Join(root, "latest"))
	out := []Checkpoint{}
	for _, e := range entries {
		m := ckptName.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		st, err := os.Stat(filepath.Join(root, e.Name(), "state.json"))
		if err != nil {
			continue
		}
		c := Checkpoint{Name: e.Name(), Phase: m[1], Time: float64(st.ModTime().UnixNano()) / 1e9}
		c.Step, _ = strconv.Atoi(m[2])
		c.Latest = strings.TrimSpace(string(latest)) == e.Name()
		filepath.WalkDir(filepath.Join(root, e.Name()), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					c.Bytes += info.Size()
				}
			}
			return nil
		})
		out = append(out, c)
	}
	phaseOrder := map[string]int{"sft": 0, "rl": 1}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Phase != out[j].Phase {
			return phaseOrder[out[i].Phase] < phaseOrder[out[j].Phase]
		}
		return out[i].Step < out[j].Step
	})
	return out, nil
}

func (s *Server) handleCheckpoints(w http.ResponseWriter, r *http.Request) {
	run, ok := s.run(w, r, "run")
	if !ok {
		return
	}
	cks, err := ListCheckpoints(run.Dir)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, cks)
}
