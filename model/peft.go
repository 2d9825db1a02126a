package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// PEFT's adapter layout (https://huggingface.co/docs/peft): a folder with adapter_config.json and
// adapter_model.safetensors whose keys are
// base_model.model.model.layers.N.{self_attn,mlp}.MODULE.lora_{A,B}.weight, A of shape [r, in] and
// B of shape [out, r]. transformers' PeftAdapterMixin, peft.PeftModel.from_pretrained and vLLM's
// LoRA loader read this layout.

// AdapterConfigFile and AdapterWeightsFile are the file names of a PEFT adapter folder.
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
)

// peftConfig is adapter_config.json: the fields PEFT writes for a plain LoRA adapter.
type peftConfig struct {
	AlphaPattern          map[string]any `json:"alpha_pattern"`
	AutoMapping           any            `json:"auto_mapping"`
	BaseModelNameOrPath   string         `json:"base_model_name_or_path"`
	Bias                  string         `json:"bias"`
	FanInFanOut           bool           `json:"fan_in_fan_out"`
	InferenceMode         bool           `json:"inference_mode"`
	InitLoraWeights       any            `json:"init_lora_weights"`
	LayersPattern         any            `json:"layers_pattern"`
	LayersToTransform     any            `json:"layers_to_transform"`
	LoraAlpha             float64        `json:"lora_alpha"`
	LoraDropout           float64        `json:"lora_dropout"`
	ModulesToSave         any            `json:"modules_to_save"`
	PeftType              string         `json:"peft_type"`
	R                     int            `json:"r"`
	RankPattern           map[string]any `json:"rank_pattern"`
	Revision              any            `json:"revision"`
	TargetModules         any            `json:"target_modules"` // a list of names (PEFT also allows a regex string)
	TaskType              string         `json:"task_type"`
	UseDora               bool           `json:"use_dora"`
	UseRslora             bool           `json:"use_rslora"`
	LayerReplication      any            `json:"layer_replication,omitempty"`
	Megatron              any            `json:"megatron_config,omitempty"`
	LoftqConfig           map[string]any `json:"loftq_config,omitempty"`
	ExcludeModules        any            `json:"exclude_modules,omitempty"`
	TrainableTokenIndices any            `json:"trainable_token_indices,omitempty"`
}

// SaveAdapter writes the model's adapter to dir in PEFT's layout (float32 weights); base names the
// base model (base_model_name_or_path, e.g. a hub id or a folder). Files are written atomically.
func (m *Model) SaveAdapter(dir, base string) error {
	if m.lora == nil {
		return errors.New("save adapter: the model carries no adapter")
	}
	host, err := m.adapterHost()
	if err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	al := m.lora.lay
	if err := checkWeightsFinite(al.names, host); err != nil {
		return fmt.Errorf("save adapter: %w; refusing to save them", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	ts := make(map[string]hostTensor, len(host))
	for i, w := range host {
		ts[al.names[i]] = hostTensor{Shape: al.shapes[i], F32: w}
	}
	if err := writeSafetensors(filepath.Join(dir, AdapterWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	c := al.cfg
	targets := []string{}
	for _, t := range LoRAModules { // canonical order
		if slices.Contains(c.Targets, t) {
			targets = append(targets, t)
		}
	}
	pc := peftConfig{
		AlphaPattern: map[string]any{}, RankPattern: map[string]any{},
		BaseModelNameOrPath: base, Bias: "none", InferenceMode: true, InitLoraWeights: true,
		LoraAlpha: c.Alpha, LoraDropout: c.Dropout, PeftType: "LORA", R: c.Rank,
		TargetModules: targets, TaskType: "CAUSAL_LM", UseRslora: c.RSLoRA,
	}
	var layers []int
	for l, at := range al.at {
		if slices.ContainsFunc(at[:], func(i int) bool { return i >= 0 }) {
			layers = append(layers, l)
		}
	}
	if len(layers) != len(al.at) {
		pc.LayersToTransform = layers
	}
	data, err := json.MarshalIndent(pc, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, AdapterConfigFile), append(data, '\n')); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	return nil
}

// ReadAdapterConfig reads dir/adapter_config.json and returns the adapter's configuration, refusing
// PEFT features polo does not implement (DoRA, biases, rank/alpha patterns, modules_to_save,
// fan_in_fan_out, regex target_modules) with one line naming the field.
func ReadAdapterConfig(dir string) (LoRAConfig, error) {
	c, _, err := readAdapterConfig(dir)
	return c, err
}

// readAdapterConfig is ReadAdapterConfig that also returns base_model_name_or_path.
func readAdapterConfig(dir string) (LoRAConfig, string, error) {
	var pc peftConfig
	c, err := decodeAdapterConfig(dir, &pc)
	return c, pc.BaseModelNameOrPath, err
}

func decodeAdapterConfig(dir string, out *peftConfig) (LoRAConfig, error) {
	path := filepath.Join(dir, AdapterConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return LoRAConfig{}, fmt.Errorf("load adapter: %w (a PEFT adapter folder holds %s and %s)", err, AdapterConfigFile, AdapterWeightsFile)
	}
	pc := out
	if err := json.Unmarshal(data, pc); err != nil {
		return LoRAConfig{}, fmt.Errorf("load adapter: %s: malformed JSON: %v", path, err)
	}
	bad := func(format string, a ...any) (LoRAConfig, error) {
		return LoRAConfig{}, fmt.Errorf("load adapter: %s: "+format, append([]any{path}, a...)...)
	}
	switch {
	case pc.PeftType != "LORA":
		return bad("peft_type is %q; only LORA adapters are supported", pc.PeftType)
	case pc.TaskType != "" && pc.TaskType != "CAUSAL_LM":
		return bad("task_type is %q; only CAUSAL_LM adapters are supported", pc.TaskType)
	case pc.Bias != "" && pc.Bias != "none":
		return bad("bias is %q; only \"none\" is supported", pc.Bias)
	case pc.FanInFanOut:
		return bad("fan_in_fan_out is true; Llama/Qwen linear layers need false")
	case pc.UseDora:
		return bad("use_dora is true; DoRA adapters are not supported")
	case len(pc.RankPattern) > 0 || len(pc.AlphaPattern) > 0:
		return bad("rank_pattern/alpha_pattern are not supported (one r and lora_alpha for every module)")
	case pc.ModulesToSave != nil && !isEmptyList(pc.ModulesToSave):
		return bad("modules_to_save is set; adapters that carry full modules are not supported")
	}
	var targets []string
	switch t := pc.TargetModules.(type) {
	case string:
		if !slices.Contains(LoRAModules, t) {
			return bad("target_modules is the pattern %q; give a list of module names (%s)", t, strings.Join(LoRAModules, ", "))
		}
		targets = []string{t}
	case []any:
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return bad("target_modules holds a non-string %v", x)
			}
			targets = append(targets, s)
		}
	default:
		return bad("target_modules is missing")
	}
	c := LoRAConfig{Rank: pc.R, Alpha: pc.LoraAlpha, Dropout: pc.LoraDropout, RSLoRA: pc.UseRslora, Targets: targets}
	if err := c.Validate(); err != nil {
		return bad("%v", err)
	}
	return c, nil
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) == 0
}

// peftKey parses PEFT's key names (with or without the adapter name "default" that PEFT strips on
// save).
var peftKey = regexp.MustCompile(`^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])(?:\.default)?\.weight$`)

// LoadAdapter returns a model that shares m's weights (no copy) and carries the PEFT adapter in
// dir. The adapter's shapes must fit m (same architecture as its base model); seed seeds its
// dropout masks should it be trained further.
func (m *Model) LoadAdapter(dir string, seed int64) (*Model, error) {
	if m.lora != nil {
		return nil, errors.New("load adapter: the model already carries an adapter (load onto its Base)")
	}
	c, err := ReadAdapterConfig(dir)
	if err != nil {
		return nil, err
	}
	c.Seed = seed
	path := filepath.Join(dir, AdapterWeightsFile)
	if _, err := os.Stat(path); err != nil {
		if _, e2 := os.Stat(filepath.Join(dir, "adapter_model.bin")); e2 == nil {
			return nil, fmt.Errorf("load adapter: %s holds adapter_model.bin (pickle); convert it to %s", dir, AdapterWeightsFile)
		}
		return nil, fmt.Errorf("load adapter: %w", err)
	}
	ts, err := readSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("load adapter: %w", err)
	}
	present := map[[2]int]int{} // (layer, module) → count of A and B seen
	for name := range ts {
		k := peftKey.FindStringSubmatch(name)
		if k == nil {
			return nil, fmt.Errorf("load adapter: %s: unexpected tensor %q (want base_model.model.model.layers.N.self_attn|mlp.MODULE.lora_A|lora_B.weight)", path, name)
		}
		layer, _ := strconv.Atoi(k[1])
		mod := slices.Index(LoRAModules, k[3])
		wantBlock := "self_attn"
		if mod >= modGate {
			wantBlock = "mlp"
		}
		switch {
		case mod < 0 || k[2] != wantBlock:
			return nil, fmt.Errorf("load adapter: %s: tensor %q is on an unsupported module", path, name)
		case !slices.Contains(c.Targets, k[3]):
			return nil, fmt.Errorf("load adapter: %s: tensor %q is on %s, which target_modules does not list", path, name, k[3])
		case layer >= m.cfg.NumLayers:
			return nil, fmt.Errorf("load adapter: %s: tensor %q is for layer %d; the model has %d layers", path, name, layer, m.cfg.NumLayers)
		}
		present[[2]int{layer, mod}]++
	}
	if len(present) == 0 {
		return nil, fmt.Errorf("load adapter: %s holds no LoRA tensors", path)
	}
	al := newLoRALayout(m.lay, c, func(layer, mod int) bool { return present[[2]int{layer, mod}] > 0 })
	host := make([][]float32, len(al.names))
	for i, name := range al.names {
		t, ok := ts[name]
		if !ok {
			t, ok = ts[strings.TrimSuffix(name, ".weight")+".default.weight"]
		}
		if !ok {
			return nil, fmt.Errorf("load adapter: %s lacks %q (each adapted module needs lora_A and lora_B)", path, name)
		}
		if t.F32 == nil || !equalInts(t.Shape, al.shapes[i]) {
			return nil, fmt.Errorf("load adapter: %s: tensor %q has shape %v, want %v (r=%d on this model; adapter of another base?)", path, name, t.Shape, al.shapes[i], c.Rank)
		}
		host[i] = t.F32
	}
	if err := checkWeightsFinite(al.names, host); err != nil {
		return nil, fmt.Errorf("load adapter: %s: %w", path, err)
	}
	return m.withAdapter(al, host), nil
}

// IsAdapterDir reports whether dir holds a PEFT adapter (adapter_config.json).
func IsAdapterDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, AdapterConfigFile))
	return err == nil
}

// LoadAdapted loads the base checkpoint in baseDir and the PEFT adapter in adapterDir onto it. An
// empty baseDir means the adapter's base_model_name_or_path, which must then be a local folder
// (relative paths are tried from the adapter's folder, then from the working directory).
func LoadAdapted(adapterDir, baseDir string, seed int64) (*Model, error) {
	if baseDir == "" {
		_, base, err := readAdapterConfig(adapterDir)
		if err != nil {
			return nil, err
		}
		if baseDir, err = resolveBase(adapterDir, base); err != nil {
			return nil, err
		}
	}
	base, err := Load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("load adapter's base model: %w", err)
	}
	return base.LoadAdapter(adapterDir, seed)
}

// AdapterBase is the local folder of the base model the adapter in dir names
// (base_model_name_or_path, tried from the adapter's folder, then from the working directory).
func AdapterBase(dir string) (string, error) {
	_, base, err := readAdapterConfig(dir)
	if err != nil {
		return "", err
	}
	return resolveBase(dir, base)
}

func resolveBase(adapterDir, base string) (string, error) {
	if base == "" {
		return "", fmt.Errorf("load adapter: %s has no base_model_name_or_path; give the base model's folder", filepath.Join(adapterDir, AdapterConfigFile))
	}
	cands := []string{base}
	if !filepath.IsAbs(base) {
		cands = []string{filepath.Join(adapterDir, base), base}
	}
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "config.json")); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("load adapter: base_model_name_or_path %q of %s is not a local model folder; give the base model's folder (no hub downloads)", base, adapterDir)
}

// LoadAny loads a full checkpoint folder, or a PEFT adapter folder together with the local base
// model it names.
func LoadAny(dir string) (*Model, error) {
	if IsAdapterDir(dir) {
		return LoadAdapted(dir, "", 0)
	}
	return Load(dir)
}
