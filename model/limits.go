package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Sane maxima for config.json fields, far above any released model (the largest have ~128k
// hidden-size products, 262k vocabularies, 126 layers and 10M positions). A value past them is a typo
// or a hostile file; refusing it keeps every size computed from the config (the parameter layout,
// buffers, KV caches) small enough to allocate and far from integer overflow.
var configMaxima = []struct {
	name string
	max  int
	get  func(Config) int
}{
	{"vocab_size", 1 << 23, func(c Config) int { return c.VocabSize }},
	{"hidden_size", 1 << 16, func(c Config) int { return c.HiddenSize }},
	{"num_hidden_layers", 1024, func(c Config) int { return c.NumLayers }},
	{"num_attention_heads", 1024, func(c Config) int { return c.NumHeads }},
	{"num_key_value_heads", 1024, func(c Config) int { return c.NumKVHeads }},
	{"head_dim", 4096, func(c Config) int { return c.HeadDim }},
	{"intermediate_size", 1 << 20, func(c Config) int { return c.IntermediateSize }},
	{"max_position_embeddings", 1 << 25, func(c Config) int { return c.MaxPositionEmbeddings }},
}

// checkMaxima refuses sizes past configMaxima and a missing or zero context length.
func checkMaxima(c Config) error {
	if c.MaxPositionEmbeddings <= 0 {
		return fmt.Errorf("config max_position_embeddings must be positive (the model's context length), got %d", c.MaxPositionEmbeddings)
	}
	for _, m := range configMaxima {
		if v := m.get(c); v > m.max {
			return fmt.Errorf("config %s = %d is past the sane maximum %d; the file is damaged or not a real model's", m.name, v, m.max)
		}
	}
	return nil
}

// checkLayersPresent compares num_hidden_layers with the decoder layers the weights hold, before
// anything is sized by the config.
func checkLayersPresent(dir string, c Config, tensors map[string]hostTensor) error {
	present := map[int]bool{}
	for name := range tensors {
		rest, ok := strings.CutPrefix(name, "model.layers.")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(idx); err == nil && i >= 0 {
			present[i] = true
		}
	}
	if len(present) != c.NumLayers {
		return fmt.Errorf("load %s: config.json says num_hidden_layers = %d, but the weights hold %d decoder layers", dir, c.NumLayers, len(present))
	}
	return nil
}

// defaultContext is max_position_embeddings, or transformers' default for the model type when the
// field is absent (LlamaConfig 2048, Qwen2Config and Qwen3Config 32768).
func defaultContext(modelType string, v *int) int {
	switch {
	case v != nil:
		return *v
	case modelType == "llama":
		return 2048
	}
	return 32768
}
