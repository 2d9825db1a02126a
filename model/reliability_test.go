package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/internal/memlimit"
)

// fixtureWith copies testdata/models/llama into a temporary folder with config.json fields
// replaced (nil deletes a field) and generation_config.json replaced when gen is not "".
func fixtureWith(t testing.TB, dir string, fields map[string]any, gen string) string {
	src := filepath.Join("..", "testdata", "models", "llama")
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	out, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644)
	st, _ := os.ReadFile(filepath.Join(src, "model.safetensors"))
	os.WriteFile(filepath.Join(dir, "model.safetensors"), st, 0o644)
	if gen == "" {
		g, _ := os.ReadFile(filepath.Join(src, "generation_config.json"))
		gen = string(g)
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(gen), 0o644)
	return dir
}

// TestHugeLayerCount: num_hidden_layers = 1e12 is refused before anything is sized by it, under a
// memory limit (it used to build a 1e12-entry layout and hang at 5 GB; issue 14, item 6).
func TestHugeLayerCount(t *testing.T) {
	if memlimit.InChild() {
		dir, err := os.MkdirTemp("", "polo-model-")
		if err != nil {
			memlimit.Report(err)
		}
		defer os.RemoveAll(dir)
		fixtureWith(t, dir, map[string]any{"num_hidden_layers": int64(1e12)}, "")
		_, err = Load(dir)
		if err == nil {
			err = errors.New("Load succeeded")
		}
		os.RemoveAll(dir)
		memlimit.Report(err)
	}
	memlimit.Run(t, "TestHugeLayerCount", 512).Expect(t, "config num_hidden_layers = 1000000000000 is past the sane maximum 1024")
}

// TestModelConfigAgainstWeights: config fields that disagree with the weights, or are impossible,
// are one-line errors naming the field (issue 14, item 6 and minor items).
func TestModelConfigAgainstWeights(t *testing.T) {
	cases := []struct {
		name   string
		fields map[string]any
		gen    string
		want   string
	}{
		{"more layers than weights", map[string]any{"num_hidden_layers": 3}, "", "config.json says num_hidden_layers = 3, but the weights hold 2 decoder layers"},
		{"fewer layers than weights", map[string]any{"num_hidden_layers": 1}, "", "config.json says num_hidden_layers = 1, but the weights hold 2 decoder layers"},
		{"huge hidden size", map[string]any{"hidden_size": 1 << 40}, "", "config hidden_size = 1099511627776 is past the sane maximum"},
		{"huge vocab", map[string]any{"vocab_size": 1 << 31}, "", "config vocab_size = 2147483648 is past the sane maximum"},
		{"zero context", map[string]any{"max_position_embeddings": 0}, "", "config max_position_embeddings must be positive"},
		{"negative context", map[string]any{"max_position_embeddings": -5}, "", "config max_position_embeddings must be positive"},
		{"malformed generation config", nil, `{"eos_token_id": [2,`, "generation_config.json: malformed JSON"},
		{"bad eos in generation config", nil, `{"eos_token_id": "two"}`, "generation_config.json: eos_token_id: want an integer or a list of integers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := fixtureWith(t, t.TempDir(), c.fields, c.gen)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Load: %v, want one line containing %q", err, c.want)
			}
		})
	}
	// The unchanged fixture loads; without max_position_embeddings, transformers' default applies.
	if _, err := Load(fixtureWith(t, t.TempDir(), nil, "")); err != nil {
		t.Fatal(err)
	}
	m, err := Load(fixtureWith(t, t.TempDir(), map[string]any{"max_position_embeddings": nil}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Config().MaxPositionEmbeddings; got != 2048 {
		t.Fatalf("llama without max_position_embeddings: context %d, want transformers' default 2048", got)
	}
}
