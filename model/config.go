// Package model implements decoder-only transformers (Llama, Qwen2, Qwen3 families) on GoMLX:
// Hugging Face checkpoint I/O, per-token log-probabilities and entropies, training with AdamW, and
// KV-cache decoding.
//
// Weights live in GoMLX tensors and are passed to compiled graphs as inputs, so several models
// (a policy and its frozen reference clone) share the same compiled executables.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Config is the subset of a Hugging Face config.json that polo supports.
type Config struct {
	ModelType             string // "llama", "qwen2" or "qwen3"
	VocabSize             int
	HiddenSize            int
	NumLayers             int // num_hidden_layers
	NumHeads              int // num_attention_heads
	NumKVHeads            int // num_key_value_heads (grouped-query attention); defaults to NumHeads
	HeadDim               int // head_dim; defaults to HiddenSize/NumHeads
	IntermediateSize      int
	RMSNormEps            float64
	RopeTheta             float64
	RopeScaling           *RopeScaling // nil: plain RoPE
	TieWordEmbeddings     bool         // lm_head shares model.embed_tokens.weight
	AttentionBias         bool         // q/k/v projections have biases (always true for qwen2)
	OutputBias            bool         // o_proj has a bias (llama/qwen3 with attention_bias=true)
	MaxPositionEmbeddings int
	BOS                   int   // bos_token_id, -1 if absent
	EOS                   []int // eos_token_id (config.json and generation_config.json), may be empty
	Pad                   int   // pad_token_id, -1 if absent
}

// RopeScaling is the "llama3" frequency scaling of Llama 3.1+ (the only scaling type supported).
type RopeScaling struct {
	Type                          string // "llama3"
	Factor                        float64
	LowFreqFactor                 float64
	HighFreqFactor                float64
	OriginalMaxPositionEmbeddings int
}

// hfConfig mirrors config.json; pointer fields distinguish "absent" from zero.
type hfConfig struct {
	ModelType             string          `json:"model_type"`
	VocabSize             int             `json:"vocab_size"`
	HiddenSize            int             `json:"hidden_size"`
	NumLayers             int             `json:"num_hidden_layers"`
	NumHeads              int             `json:"num_attention_heads"`
	NumKVHeads            *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	IntermediateSize      int             `json:"intermediate_size"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           map[string]any  `json:"rope_scaling"`
	RopeParameters        map[string]any  `json:"rope_parameters"` // transformers ≥ 5
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
	HiddenAct             *string         `json:"hidden_act"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	BOS                   json.RawMessage `json:"bos_token_id"`
	EOS                   json.RawMessage `json:"eos_token_id"`
	Pad                   json.RawMessage `json:"pad_token_id"`
}

// LoadConfig reads dir/config.json (and the EOS ids of dir/generation_config.json when present).
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read model config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	genPath := filepath.Join(dir, "generation_config.json")
	if gen, err := os.ReadFile(genPath); err == nil {
		var g struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if err := json.Unmarshal(gen, &g); err != nil {
			return Config{}, fmt.Errorf("%s: malformed JSON (it names the EOS ids): %v", genPath, err)
		}
		ids, err := parseIDs(g.EOS)
		if err != nil {
			return Config{}, fmt.Errorf("%s: eos_token_id: %v", genPath, err)
		}
		for _, id := range ids {
			if !containsInt(cfg.EOS, id) {
				cfg.EOS = append(cfg.EOS, id)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("read %s: %w", genPath, err)
	}
	return cfg, nil
}

// ParseConfig parses the contents of a config.json.
func ParseConfig(data []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("malformed config.json: %v", err)
	}
	switch h.ModelType {
	case "llama", "qwen2", "qwen3":
	case "":
		return Config{}, errors.New(`config.json has no "model_type"; supported: llama, qwen2, qwen3`)
	default:
		return Config{}, fmt.Errorf("unsupported model_type %q; supported: llama, qwen2, qwen3", h.ModelType)
	}
	if h.HiddenAct != nil && *h.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("unsupported hidden_act %q; only silu (SwiGLU) is implemented", *h.HiddenAct)
	}
	if h.MLPBias != nil && *h.MLPBias {
		return Config{}, errors.New("mlp_bias=true is not supported")
	}
	if h.UseSlidingWindow != nil && *h.UseSlidingWindow {
		return Config{}, errors.New("use_sliding_window=true is not supported")
	}
	c := Config{
		ModelType:             h.ModelType,
		VocabSize:             h.VocabSize,
		HiddenSize:            h.HiddenSize,
		NumLayers:             h.NumLayers,
		NumHeads:              h.NumHeads,
		IntermediateSize:      h.IntermediateSize,
		RMSNormEps:            1e-6,
		RopeTheta:             10000,
		MaxPositionEmbeddings: defaultContext(h.ModelType, h.MaxPositionEmbeddings),
		BOS:                   -1,
		Pad:                   -1,
	}
	c.NumKVHeads = c.NumHeads
	if h.NumKVHeads != nil {
		c.NumKVHeads = *h.NumKVHeads
	}
	if h.HeadDim != nil {
		c.HeadDim = *h.HeadDim
	} else if c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if h.RMSNormEps != nil {
		c.RMSNormEps = *h.RMSNormEps
	}
	if h.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *h.TieWordEmbeddings
	}
	bias := h.AttentionBias != nil && *h.AttentionBias
	switch h.ModelType {
	case "qwen2": // q/k/v always biased, o_proj never
		c.AttentionBias = true
	default:
		c.AttentionBias, c.OutputBias = bias, bias
	}
	// RoPE: transformers < 5 writes rope_theta + rope_scaling; ≥ 5 writes rope_parameters.
	rope := h.RopeScaling
	if rope == nil {
		rope = h.RopeParameters
	}
	if h.RopeTheta != nil {
		c.RopeTheta = *h.RopeTheta
	}
	if t, ok := rope["rope_theta"].(float64); ok {
		c.RopeTheta = t
	}
	if rope != nil {
		rs, err := parseRopeScaling(rope)
		if err != nil {
			return Config{}, err
		}
		c.RopeScaling = rs
	}
	var err error
	if c.BOS, err = parseOneID(h.BOS, "bos_token_id"); err != nil {
		return Config{}, err
	}
	if c.Pad, err = parseOneID(h.Pad, "pad_token_id"); err != nil {
		return Config{}, err
	}
	if c.EOS, err = parseIDs(h.EOS); err != nil {
		return Config{}, fmt.Errorf("eos_token_id: %v", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func parseRopeScaling(m map[string]any) (*RopeScaling, error) {
	typ, _ := m["rope_type"].(string)
	if typ == "" {
		typ, _ = m["type"].(string)
	}
	switch typ {
	case "", "default":
		return nil, nil
	case "llama3":
	default:
		return nil, fmt.Errorf("unsupported rope scaling type %q; supported: default, llama3", typ)
	}
	num := func(key string) (float64, error) {
		v, ok := m[key].(float64)
		if !ok {
			return 0, fmt.Errorf("llama3 rope scaling needs a numeric %q", key)
		}
		return v, nil
	}
	var rs RopeScaling
	rs.Type = typ
	var err error
	if rs.Factor, err = num("factor"); err != nil {
		return nil, err
	}
	if rs.LowFreqFactor, err = num("low_freq_factor"); err != nil {
		return nil, err
	}
	if rs.HighFreqFactor, err = num("high_freq_factor"); err != nil {
		return nil, err
	}
	orig, err := num("original_max_position_embeddings")
	if err != nil {
		return nil, err
	}
	rs.OriginalMaxPositionEmbeddings = int(orig)
	return &rs, nil
}

func parseOneID(raw json.RawMessage, name string) (int, error) {
	ids, err := parseIDs(raw)
	if err != nil {
		return -1, fmt.Errorf("%s: %v", name, err)
	}
	if len(ids) == 0 {
		return -1, nil
	}
	return ids[0], nil
}

// parseIDs accepts null, an integer or a list of integers.
func parseIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want an integer or a list of integers, got %s", raw)
	}
	return many, nil
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Validate checks that the dimensions are positive and consistent.
func (c Config) Validate() error {
	pos := []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumLayers},
		{"num_attention_heads", c.NumHeads}, {"num_key_value_heads", c.NumKVHeads}, {"head_dim", c.HeadDim},
		{"intermediate_size", c.IntermediateSize},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("config %s must be positive, got %d", p.name, p.v)
		}
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("config num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("config head_dim must be even for RoPE, got %d", c.HeadDim)
	}
	if !(c.RMSNormEps > 0) || !(c.RopeTheta > 0) {
		return fmt.Errorf("config rms_norm_eps (%g) and rope_theta (%g) must be positive", c.RMSNormEps, c.RopeTheta)
	}
	if rs := c.RopeScaling; rs != nil {
		if rs.Type != "llama3" {
			return fmt.Errorf("unsupported rope scaling type %q", rs.Type)
		}
		if !(rs.Factor > 0) || !(rs.HighFreqFactor > rs.LowFreqFactor) || rs.OriginalMaxPositionEmbeddings <= 0 {
			return fmt.Errorf("llama3 rope scaling needs factor>0, high_freq_factor>low_freq_factor and original_max_position_embeddings>0")
		}
	}
	return checkMaxima(c) // limits.go
}

// toJSON renders the config as a Hugging Face config.json (transformers 4 style keys, which
// transformers 5 also reads).
func (c Config) toJSON() map[string]any {
	arch := map[string]string{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[c.ModelType]
	m := map[string]any{
		"architectures":           []string{arch},
		"model_type":              c.ModelType,
		"vocab_size":              c.VocabSize,
		"hidden_size":             c.HiddenSize,
		"num_hidden_layers":       c.NumLayers,
		"num_attention_heads":     c.NumHeads,
		"num_key_value_heads":     c.NumKVHeads,
		"head_dim":                c.HeadDim,
		"intermediate_size":       c.IntermediateSize,
		"hidden_act":              "silu",
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"max_position_embeddings": c.MaxPositionEmbeddings,
		"torch_dtype":             "float32",
		"use_cache":               true,
	}
	if c.ModelType != "qwen2" {
		m["attention_bias"] = c.AttentionBias
	}
	if rs := c.RopeScaling; rs != nil {
		m["rope_scaling"] = map[string]any{
			"rope_type": rs.Type, "factor": rs.Factor, "low_freq_factor": rs.LowFreqFactor,
			"high_freq_factor": rs.HighFreqFactor, "original_max_position_embeddings": rs.OriginalMaxPositionEmbeddings,
		}
	}
	if c.BOS >= 0 {
		m["bos_token_id"] = c.BOS
	}
	if c.Pad >= 0 {
		m["pad_token_id"] = c.Pad
	}
	switch len(c.EOS) {
	case 0:
	case 1:
		m["eos_token_id"] = c.EOS[0]
	default:
		m["eos_token_id"] = c.EOS
	}
	return m
}

// Preset returns a from-scratch configuration by name:
//   - "tiny": 2 layers, d=64, 4 heads (2 KV), MLP 192, tied embeddings — synthetic tasks on CPU.
//   - "small": 4 layers, d=128, 4 heads (2 KV), MLP 384, tied embeddings.
//   - "bench": the reference benchmark shape of the engine notes: 4 layers, d=256, 4 heads, MLP 1024,
//     untied head (vocab 256 when vocabSize is 0).
//
// vocabSize is the tokenizer's vocabulary size (required except for "bench").
func Preset(name string, vocabSize int) (Config, error) {
	base := Config{
		ModelType: "llama", RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositionEmbeddings: 2048,
		BOS: -1, Pad: -1, VocabSize: vocabSize, TieWordEmbeddings: true,
	}
	switch name {
	case "tiny":
		base.HiddenSize, base.NumLayers, base.NumHeads, base.NumKVHeads, base.IntermediateSize = 64, 2, 4, 2, 192
	case "small":
		base.HiddenSize, base.NumLayers, base.NumHeads, base.NumKVHeads, base.IntermediateSize = 128, 4, 4, 2, 384
	case "bench":
		if base.VocabSize == 0 {
			base.VocabSize = 256
		}
		base.HiddenSize, base.NumLayers, base.NumHeads, base.NumKVHeads, base.IntermediateSize = 256, 4, 4, 4, 1024
		base.TieWordEmbeddings = false
	default:
		return Config{}, fmt.Errorf("unknown model preset %q; known: tiny, small, bench", name)
	}
	base.HeadDim = base.HiddenSize / base.NumHeads
	if err := base.Validate(); err != nil {
		return Config{}, fmt.Errorf("preset %q: %w", name, err)
	}
	return base, nil
}

// InvFreq returns the RoPE inverse frequencies (HeadDim/2 values) exactly as transformers computes
// them, including the "llama3" scaling of _compute_llama3_parameters.
func (c Config) InvFreq() []float64 {
	half := c.HeadDim / 2
	inv := make([]float64, half)
	for i := range inv {
		// transformers: 1 / base ** (arange(0, dim, 2).float() / dim)
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	rs := c.RopeScaling
	if rs == nil {
		return inv
	}
	lowFreqWavelen := float64(rs.OriginalMaxPositionEmbeddings) / rs.LowFreqFactor
	highFreqWavelen := float64(rs.OriginalMaxPositionEmbeddings) / rs.HighFreqFactor
	for i, f := range inv {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen > lowFreqWavelen: // long wavelengths: fully interpolated
			inv[i] = f / rs.Factor
		case wavelen < highFreqWavelen: // short wavelengths: unchanged
		default: // in between: smooth blend
			smooth := (float64(rs.OriginalMaxPositionEmbeddings)/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
			inv[i] = (1-smooth)*f/rs.Factor + smooth*f
		}
	}
	return inv
}
