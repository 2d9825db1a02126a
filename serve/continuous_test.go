package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/train"
)

// sampled is one choice of a completion: token ids and their log-probs.
type sampled struct {
	ids []int32
	lps []float64
}

func complete(t *testing.T, c openai.Client, modelName, prompt string, n int, temp float64, seed, maxTokens int) ([]sampled, error) {
	t.Helper()
	resp, err := c.Completions.New(context.Background(), openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(modelName),
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)}, N: openai.Int(int64(n)),
		MaxTokens: openai.Int(int64(maxTokens)), Temperature: openai.Float(temp), Seed: openai.Int(int64(seed)), Logprobs: openai.Int(0)},
		option.WithJSONSet("return_token_ids", true), option.WithJSONSet("ignore_eos", true))
	if err != nil {
		return nil, err
	}
	out := make([]sampled, len(resp.Choices))
	for _, ch := range resp.Choices {
		out[ch.Index] = sampled{ids: extraIDs(t, ch.RawJSON(), "token_ids"), lps: ch.Logprobs.TokenLogprobs}
	}
	return out, nil
}

func sameSamples(a, b []sampled) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i].ids, b[i].ids) || len(a[i].lps) != len(b[i].lps) {
			return false
		}
		for k := range a[i].lps {
			if math.Abs(a[i].lps[k]-b[i].lps[k]) > 1e-4 {
				return false
			}
		}
	}
	return true
}

// TestContinuousBatching: a request that arrives while long requests are decoding joins their
// running batch and is answered while they still run (with dynamic batching it would wait for
// them to end), and a seeded request samples the same tokens and log-probs alone as when it shares
// the batch with others.
func TestContinuousBatching(t *testing.T) {
	s := startServer(t, charDir, "--max-batch", "64")
	c := s.client()
	alone, err := complete(t, c, "m", "7+8=", 2, 0.8, 5, 8)
	if err != nil {
		t.Fatal(err)
	}

	const long = 6
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var finished atomic.Int32
	started := make(chan struct{}, long)
	var wg sync.WaitGroup
	for i := range long {
		wg.Go(func() {
			st := c.Completions.NewStreaming(ctx, openai.CompletionNewParams{Model: "m",
				Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String(fmt.Sprintf("%d+", i))},
				MaxTokens: openai.Int(1500), Temperature: openai.Float(1), Seed: openai.Int(int64(i))}, option.WithJSONSet("ignore_eos", true))
			first := true
			for st.Next() {
				if first {
					started <- struct{}{}
					first = false
				}
			}
			if st.Err() == nil {
				finished.Add(1)
			} else if first {
				started <- struct{}{}
			}
		})
	}
	for range long {
		<-started
	}
	shared, err := complete(t, c, "m", "7+8=", 2, 0.8, 5, 8)
	if err != nil {
		t.Fatal(err)
	}
	if n := finished.Load(); n > 0 {
		t.Errorf("the short request was answered after %d of the %d long ones finished; want it to join their batch", n, long)
	}
	cancel()
	wg.Wait()
	if !sameSamples(alone, shared) {
		t.Errorf("seed 5 alone: %v\nsharing the batch: %v", alone, shared)
	}
}

// loraAdapter trains a rank-4 adapter on the char checkpoint for a few steps (so that it changes
// the model) and saves it in PEFT's layout; it returns the folder and the adapted model.
func loraAdapter(t *testing.T, base *model.Model, seed int64) (string, *model.Model) {
	t.Helper()
	m, err := base.AddAdapter(model.LoRAConfig{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj", "up_proj", "down_proj"}, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := model.NewTrainer(m, model.OptimConfig{LR: 0.05, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, ClipNorm: 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	V := base.Config().VocabSize
	ids, mask, coef := make([][]int32, 4), make([][]int32, 4), make([][]float32, 4)
	for i := range ids {
		ids[i], mask[i], coef[i] = make([]int32, 10), make([]int32, 10), make([]float32, 9)
		for j := range ids[i] {
			ids[i][j], mask[i][j] = int32(rng.IntN(V)), 1
		}
		for j := range coef[i] {
			coef[i][j] = -1
		}
	}
	for range 4 {
		if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Step(0.05); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := m.SaveAdapter(dir, charDir); err != nil {
		t.Fatal(err)
	}
	back, err := model.LoadAdapted(dir, charDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return dir, back
}

func postJSON(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestLoRAAdapters: adapters given with --lora and loaded at runtime with vLLM's
// /v1/load_lora_adapter are chosen by the request's model name; their log-probs equal the adapted
// model's forward pass (and differ from the base's); /v1/models lists them; an unknown name or an
// unloaded adapter is a 404 in OpenAI's error shape; base and adapter requests run side by side.
func TestLoRAAdapters(t *testing.T) {
	pol, err := train.LoadPolicy(charDir)
	if err != nil {
		t.Fatal(err)
	}
	dirA, adA := loraAdapter(t, pol.Model, 1)
	dirB, adB := loraAdapter(t, pol.Model, 2)
	s := startServer(t, charDir, "--lora", "sql="+dirA)
	c := s.client()
	prompt, _ := pol.Prompt(task.Example{Prompt: "4+4="})

	check := func(name string, m *model.Model, seed int) []sampled {
		t.Helper()
		got, err := complete(t, c, name, "4+4=", 2, 1, seed, 6)
		if err != nil {
			t.Fatalf("model %s: %v", name, err)
		}
		for i, g := range got {
			if k, ok := closeTo(g.lps, forwardLogProbs(t, m, prompt, g.ids), 1e-4); !ok {
				t.Errorf("model %s choice %d: log-probs differ from the forward pass at %d", name, i, k)
			}
		}
		return got
	}
	a := check("sql", adA, 3)
	if k, ok := closeTo(a[0].lps, forwardLogProbs(t, pol.Model, prompt, a[0].ids), 1e-3); ok {
		t.Errorf("the adapter's log-probs equal the base model's (to 1e-3, first at %d): the adapter had no effect", k)
	}
	check("m", pol.Model, 3)

	var models struct {
		Data []struct {
			ID     string  `json:"id"`
			Root   string  `json:"root"`
			Parent *string `json:"parent"`
		} `json:"data"`
	}
	listModels := func() []string {
		resp, err := http.Get(s.url + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		models.Data = nil
		json.NewDecoder(resp.Body).Decode(&models)
		var ids []string
		for _, d := range models.Data {
			ids = append(ids, d.ID)
		}
		return ids
	}
	if ids := listModels(); !slices.Equal(ids, []string{"m", "sql"}) || models.Data[1].Root != dirA || models.Data[1].Parent == nil || *models.Data[1].Parent != "m" {
		t.Errorf("/v1/models: %+v, want m then sql (root %s, parent m)", models.Data, dirA)
	}

	// unknown adapter: 404 in OpenAI's shape, which the SDK parses
	_, err = complete(t, c, "nope", "4+4=", 1, 1, 3, 2)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Type != "invalid_request_error" || apiErr.Code != "model_not_found" {
		t.Errorf("unknown model: %v; want 404 invalid_request_error model_not_found", err)
	}

	// runtime load, then base and both adapters side by side
	if code, body := postJSON(t, s.url+"/v1/load_lora_adapter", fmt.Sprintf(`{"lora_name": "math", "lora_path": %q}`, dirB)); code != 200 {
		t.Fatalf("load_lora_adapter: %d %s", code, body)
	}
	if code, body := postJSON(t, s.url+"/v1/load_lora_adapter", fmt.Sprintf(`{"lora_name": "math", "lora_path": %q}`, dirB)); code != 400 {
		t.Errorf("loading the name twice: %d %s, want 400", code, body)
	}
	if code, body := postJSON(t, s.url+"/v1/load_lora_adapter", `{"lora_name": "bad", "lora_path": "/nonexistent/adapter"}`); code != 400 || !strings.Contains(body, "nonexistent") {
		t.Errorf("loading a missing folder: %d %s, want 400 naming it", code, body)
	}
	if ids := listModels(); !slices.Equal(ids, []string{"m", "math", "sql"}) {
		t.Errorf("/v1/models after loading math: %v", ids)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { check("m", pol.Model, 4) })
		wg.Go(func() { check("sql", adA, 4) })
		wg.Go(func() { check("math", adB, 4) })
	}
	wg.Wait()

	// unload
	if code, body := postJSON(t, s.url+"/v1/unload_lora_adapter", `{"lora_name": "math"}`); code != 200 {
		t.Fatalf("unload_lora_adapter: %d %s", code, body)
	}
	if code, body := postJSON(t, s.url+"/v1/unload_lora_adapter", `{"lora_name": "math"}`); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unloading twice: %d %s, want 404 in the error shape", code, body)
	}
	if _, err := complete(t, c, "math", "4+4=", 1, 1, 3, 2); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("request for an unloaded adapter: %v, want 404", err)
	}
	check("sql", adA, 5)

	// weight reload keeps the adapter, now on the new base weights
	if code, body := postJSON(t, s.url+"/update_weights_from_disk", fmt.Sprintf(`{"model_path": %q}`, char2)); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	onNew, err := model.LoadAdapted(dirA, char2, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("sql", onNew, 6)
}

// TestServeAdapterFolder: --model may be a PEFT adapter folder; it is served on the base model its
// adapter_config.json names, with the base's tokenizer.
func TestServeAdapterFolder(t *testing.T) {
	pol, err := train.LoadPolicy(charDir)
	if err != nil {
		t.Fatal(err)
	}
	dir, ad := loraAdapter(t, pol.Model, 3)
	if _, err := os.Stat(filepath.Join(dir, "polo_tokenizer.json")); err == nil {
		t.Fatal("the adapter folder unexpectedly holds a tokenizer")
	}
	s := startServer(t, dir)
	prompt, _ := pol.Prompt(task.Example{Prompt: "1+1="})
	got, err := complete(t, s.client(), "m", "1+1=", 1, 1, 7, 6)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := closeTo(got[0].lps, forwardLogProbs(t, ad, prompt, got[0].ids), 1e-4); !ok {
		t.Errorf("log-probs differ from the adapted model's forward pass at %d", k)
	}
}
