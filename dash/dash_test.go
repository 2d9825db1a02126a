package dash

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The page follows a growing metrics.jsonl by byte offset: a torn last line waits for its end,
// and a file rewritten shorter (resume) tells the page to start over.
func TestReadMetricsFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	l1 := `{"step":1,"phase":"rl","values":{"reward_mean":0.25},"time":100}` + "\n"
	l2 := `{"step":2,"phase":"rl","values":{"reward_mean":0.5},"time":101}` + "\n"
	writeFile(t, path, l1+l2[:20])
	c, err := ReadMetricsFrom(path, 0)
	if err != nil || len(c.Records) != 1 || c.Offset != int64(len(l1)) || c.Reset || c.Records[0].Values["reward_mean"] != 0.25 {
		t.Fatalf("first read: %+v %v", c, err)
	}
	writeFile(t, path, l1+l2)
	c, err = ReadMetricsFrom(path, c.Offset)
	if err != nil || len(c.Records) != 1 || c.Records[0].Step != 2 || c.Records[0].Time != 101 || c.Offset != int64(len(l1+l2)) {
		t.Fatalf("second read: %+v %v", c, err)
	}
	writeFile(t, path, l1)
	c, err = ReadMetricsFrom(path, c.Offset)
	if err != nil || !c.Reset || len(c.Records) != 1 || c.Offset != int64(len(l1)) {
		t.Fatalf("after a shorter rewrite: %+v %v", c, err)
	}
}

func TestFilterSamples(t *testing.T) {
	var ss []metrics.Sample
	for step := 1; step <= 3; step++ {
		ss = append(ss,
			metrics.Sample{Step: step, Kind: "rollout", Prompt: "12+30=", Response: "42", Reward: 1},
			metrics.Sample{Step: step, Kind: "rollout", Prompt: "7+8=", Response: "The answer is 15", Reward: 0.5},
			metrics.Sample{Step: step, Kind: "eval-greedy", Prompt: "1+1=", Response: "3", Reward: 0})
	}
	f := func(v float64) *float64 { return &v }
	two := 2
	cases := []struct {
		q     SampleQuery
		total int
		first string
	}{
		{SampleQuery{}, 9, "3"},
		{SampleQuery{Kind: "rollout"}, 6, "The answer is 15"},
		{SampleQuery{MinReward: f(0.5), MaxReward: f(0.9)}, 3, "The answer is 15"},
		{SampleQuery{Text: "ANSWER", Step: &two}, 1, "The answer is 15"},
		{SampleQuery{Text: "12+"}, 3, "42"},
		{SampleQuery{MinReward: f(2)}, 0, ""},
	}
	for _, c := range cases {
		a := FilterSamples(ss, c.q)
		first := ""
		if len(a.Samples) > 0 {
			first = a.Samples[0].Response
			if a.Samples[0].Step != 3 && c.q.Step == nil {
				t.Errorf("%+v: newest first, got step %d", c.q, a.Samples[0].Step)
			}
		}
		if a.Total != c.total || first != c.first || len(a.Steps) != 3 || strings.Join(a.Kinds, ",") != "eval-greedy,rollout" {
			t.Errorf("%+v: total %d first %q steps %v kinds %v; want %d %q", c.q, a.Total, first, a.Steps, a.Kinds, c.total, c.first)
		}
	}
	if a := FilterSamples(ss, SampleQuery{Limit: 2}); a.Total != 9 || len(a.Samples) != 2 {
		t.Errorf("limit: %d of %d", len(a.Samples), a.Total)
	}
}

// A compare folder: runs found two levels down, grouped by algorithm over seeds; the API answers
// metrics, config diffs, checkpoints and samples by run ID, and refuses anything else.
func TestServerAPI(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"grpo-seed1", "grpo-seed2", "dapo-seed1"} {
		dir := filepath.Join(root, "compare", name)
		algo := strings.Split(name, "-")[0]
		writeFile(t, filepath.Join(dir, "config.yaml"), "seed: "+name[len(name)-1:]+"\nalgo:\n  name: "+algo+"\n  set: {}\nsampling:\n  group_size: 8\n  stops: [a, b]\n")
		writeFile(t, filepath.Join(dir, "metrics.jsonl"), `{"step":1,"phase":"rl","values":{"reward_mean":0.5}}`+"\n")
	}
	ck := filepath.Join(root, "compare", "grpo-seed1", "checkpoints")
	writeFile(t, filepath.Join(ck, "rl-000010", "state.json"), "{}")
	writeFile(t, filepath.Join(ck, "rl-000010", "model", "model.safetensors"), strings.Repeat("x", 1000))
	writeFile(t, filepath.Join(ck, "sft-000400", "state.json"), "{}")
	writeFile(t, filepath.Join(ck, ".tmp-rl-000020", "state.json"), "{}")
	writeFile(t, filepath.Join(ck, "rl-000020", "model", "config.json"), "{}") // no state.json: incomplete
	writeFile(t, filepath.Join(ck, "latest"), "rl-000010\n")
	s, err := openSamples(t, filepath.Join(root, "compare", "grpo-seed2", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]metrics.Sample{{Step: 1, Kind: "rollout", Response: "reward hacking", Reward: 1}, {Step: 1, Kind: "rollout", Response: "honest", Reward: 0}})
	s.Close()

	srv, err := New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	get := func(path string, v any) int {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 && v != nil {
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("%s: %v: %s", path, err, body)
			}
		}
		return resp.StatusCode
	}
	var runs []Run
	get("/api/runs", &runs)
	if len(runs) != 3 {
		t.Fatalf("runs: %+v", runs)
	}
	byName := map[string]Run{}
	for _, r := range runs {
		byName[r.Name] = r
	}
	if byName["grpo-seed1"].Group != "grpo" || byName["grpo-seed2"].Group != "grpo" || byName["dapo-seed1"].Group != "dapo" ||
		byName["grpo-seed2"].Seed != "2" || byName["dapo-seed1"].Algo != "dapo" || !byName["dapo-seed1"].Live {
		t.Fatalf("grouping: %+v", runs)
	}
	id := func(name string) string { return strings.TrimSpace(jsonString(byName[name].ID)) }

	var chunk MetricsChunk
	if get("/api/metrics?run="+id("dapo-seed1"), &chunk); len(chunk.Records) != 1 || chunk.Records[0].Values["reward_mean"] != 0.5 {
		t.Fatalf("metrics: %+v", chunk)
	}
	var diff []ConfigDiff
	get("/api/diff?a="+id("grpo-seed1")+"&b="+id("dapo-seed1"), &diff)
	if jsonString(diff) != `[{"key":"algo.name","a":"grpo","b":"dapo"}]` {
		t.Fatalf("diff: %s", jsonString(diff))
	}
	get("/api/diff?a="+id("grpo-seed1")+"&b="+id("grpo-seed2"), &diff)
	if jsonString(diff) != `[{"key":"seed","a":"1","b":"2"}]` {
		t.Fatalf("diff over seeds: %s", jsonString(diff))
	}
	var cks []Checkpoint
	get("/api/checkpoints?run="+id("grpo-seed1"), &cks)
	if len(cks) != 2 || cks[0].Name != "sft-000400" || cks[1].Name != "rl-000010" || !cks[1].Latest || cks[0].Latest || cks[1].Bytes != 1002 || cks[1].Step != 10 {
		t.Fatalf("checkpoints: %+v", cks)
	}
	var ans SampleAnswer
	get("/api/samples?run="+id("grpo-seed2")+"&min=0.5", &ans)
	if ans.Total != 1 || ans.Samples[0].Response != "reward hacking" {
		t.Fatalf("samples: %+v", ans)
	}
	var cfg map[string]string
	if get("/api/config?run="+id("dapo-seed1"), &cfg); !strings.Contains(cfg["yaml"], "name: dapo") {
		t.Fatalf("config: %v", cfg)
	}
	for _, bad := range []string{"/api/metrics?run=9", "/api/metrics?run=../../etc", "/api/samples", "/api/diff?a=0&b=-1"} {
		if code := get(bad, nil); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, code)
		}
	}
	// A run started after the server appears on the next /api/runs.
	writeFile(t, filepath.Join(root, "compare", "dapo-seed2", "metrics.jsonl"), "")
	get("/api/runs", &runs)
	if len(runs) != 4 || runs[3].Name != "dapo-seed2" || runs[3].ID != 3 {
		t.Fatalf("new run: %+v", runs)
	}
	if _, err := New([]string{filepath.Join(root, "absent")}); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("absent folder: %v", err)
	}
	if _, err := New([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no run folder") {
		t.Fatalf("empty folder: %v", err)
	}
}

// The page loads nothing from elsewhere: no URL in the embedded assets but the SVG namespace.
func TestAssetsSelfContained(t *testing.T) {
	url := regexp.MustCompile(`(https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}`)
	n := 0
	fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, _ := assets.ReadFile(path)
		for _, m := range url.FindAllString(string(data), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("%d assets, want index.html, app.js, style.css", n)
	}
}

func openSamples(t *testing.T, dir string) (*metrics.SamplesLog, error) {
	t.Helper()
	return metrics.OpenSamples(dir, 0, 0)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
