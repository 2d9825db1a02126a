package train

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
)

// Config is one run, read from a single YAML file. Every field has a default (see DefaultConfig and
// the embedded demo.yaml); unknown fields are an error naming the field.
type Config struct {
	Seed   int64  `yaml:"seed"`    // every random draw of the run derives from it
	RunDir string `yaml:"run_dir"` // where config, metrics, plots and checkpoints go

	Model      ModelConfig      `yaml:"model"`
	Tokenizer  TokenizerConfig  `yaml:"tokenizer"`
	Task       TaskConfig       `yaml:"task"`
	Reward     RewardConfig     `yaml:"reward"`
	Algo       AlgoConfig       `yaml:"algo"`
	Sampling   SamplingConfig   `yaml:"sampling"`
	SFT        SFTConfig        `yaml:"sft"`
	RL         RLConfig         `yaml:"rl"`
	Optim      OptimConfig      `yaml:"optim"`
	Preference PreferenceConfig `yaml:"preference"`
	Distill    DistillConfig    `yaml:"distill"`
	Hybrid     HybridConfig     `yaml:"hybrid"`
	Eval       EvalConfig       `yaml:"eval"`
	Ckpt       CheckpointCfg    `yaml:"checkpoint"`
	Log        LogConfig        `yaml:"log"`

	// LoRA adapters and memory controls (issue 18; types in lora.go).
	LoRA   LoRAConfig   `yaml:"lora"`
	Memory MemoryConfig `yaml:"memory"`

	// Rollout engine (issue 17: sampling on remote OpenAI-compatible servers; remote.go).
	Rollout RolloutConfig `yaml:"rollout"`
	// Agent: multi-turn tool-using rollouts (agent.go, docs/agents.md).
	Agent AgentConfig `yaml:"agent"`
}

// ModelConfig picks the policy: a from-scratch preset or a Hugging Face checkpoint folder.
type ModelConfig struct {
	Preset string `yaml:"preset"` // e.g. "tiny" (used when path is empty)
	Path   string `yaml:"path"`   // HF folder with config.json + model.safetensors
	// Compute: dtype float32 (default) or bf16 (matmuls in bfloat16 inside the graphs, float32 master
	// weights and optimizer state; for GPUs), flash (fused attention; cuDNN flash with bf16 on XLA CUDA),
	// buckets_per_octave (coarse shape buckets: fewer compiled graphs, more padding; for GPUs).
	Compute model.ComputeOptions `yaml:"compute"`
}

// TokenizerConfig picks the tokenizer: "char" (alphabet from the synthetic task) or "hf" (a folder).
type TokenizerConfig struct {
	Kind string `yaml:"kind"` // char | hf
	Path string `yaml:"path"` // HF folder with tokenizer.json (kind hf); defaults to model.path
}

// TaskConfig picks the prompts: a synthetic generator or a dataset file.
type TaskConfig struct {
	Name        string            `yaml:"name"`         // generator name (addition, countdown, …) or "dataset"
	Options     map[string]string `yaml:"options"`      // generator options, e.g. digits: "3"
	Path        string            `yaml:"path"`         // dataset file (.jsonl or .parquet) when name is "dataset"
	PromptField string            `yaml:"prompt_field"` // dataset field holding the prompt
	AnswerField string            `yaml:"answer_field"` // dataset field holding the reference answer
	AnswerStyle string            `yaml:"answer_style"` // "" (as is) | gsm8k (text after ####) | boxed (last \boxed{})
	OnError     string            `yaml:"on_error"`     // a malformed dataset row: stop (an error naming it) | skip (dropped, with a notice)
	TestSize    int               `yaml:"test_size"`    // held-out examples for evaluation
}

// RewardConfig picks the verifier and its options.
type RewardConfig struct {
	Verifier string            `yaml:"verifier"` // task | exact | numeric | math | format | code
	Options  map[string]string `yaml:"options"`
	Timeout  float64           `yaml:"timeout"` // seconds per response before a verifier is abandoned (zero reward)
	Weight   float64           `yaml:"weight"`  // weight of the verifier's score ("verifier" component) in the reward
	// Extra are further reward components, each a verifier scored separately and logged under its name;
	// the reward the objective sees is the weighted sum of all components.
	Extra []ExtraReward `yaml:"extra"`
	HAPO  HAPOReward    `yaml:"hapo"`
	// Shaping as config (issue 16, methods): DRPO's decoupled length weights and AutoRule's rule
	// reward, each a named component (train/shaping.go).
	DRPO     DRPOReward     `yaml:"drpo"`
	AutoRule AutoRuleReward `yaml:"autorule"`
	// Tool-use shaping (agent mode; train/agent.go): OTC's tool-efficiency reward (component "otc")
	// and ASPO's advantage shaping for early tool calls. agent.otc and agent.aspo are deprecated
	// aliases, moved here when the config is validated.
	OTC  OTCShaping  `yaml:"otc"`
	ASPO ASPOShaping `yaml:"aspo"`
	// DPOModel is a DPO-trained model folder whose log-probs against the reference give RTO's dense
	// token rewards (token_rewards; train/rto.go).
	DPOModel string `yaml:"dpo_model"`
	// DPOSteps > 0 trains RTO's DPO model in the same run instead: that many DPO steps (the
	// preference section's pairs) on a copy of the policy as RL starts, against that policy as the
	// reference, before the first RL step (train/rto.go).
	DPOSteps int `yaml:"dpo_steps"`
}

// DRPOReward is DRPO's decoupled length signal as a reward component ("drpo"): among the correct
// responses of a group, |P|·w_i − 1 with w = softmax((1 − L/max_len)/lambda) over them (shorter is
// higher, the values sum to 0 over the group's correct responses); 0 for incorrect responses.
type DRPOReward struct {
	Weight float64 `yaml:"weight"`  // weight of the component (0 = off); ≤ 1 keeps every correct reward ≥ an incorrect one
	Lambda float64 `yaml:"lambda"`  // length-weight temperature (DRPO's tau2)
	MaxLen int     `yaml:"max_len"` // C in 1 − L/C; 0 = sampling.max_new_tokens
}

// AutoRuleReward is AutoRule's rule reward (component "autorule"): the fraction of rules a response
// satisfies, each rule a verifier whose Correct verdict is the rule's yes/no.
type AutoRuleReward struct {
	Weight float64      `yaml:"weight"` // weight of the component (0 = off)
	Rules  []RuleConfig `yaml:"rules"`
}

// RuleConfig is one AutoRule rule: a name and a verifier.
type RuleConfig struct {
	Name    string            `yaml:"name"`
	Kind    string            `yaml:"kind"` // a verifier kind, as reward.verifier
	Options map[string]string `yaml:"options"`
}

// ExtraReward is one more named reward component computed by a verifier.
type ExtraReward struct {
	Name    string            `yaml:"name"`
	Kind    string            `yaml:"kind"` // a verifier kind, as reward.verifier
	Options map[string]string `yaml:"options"`
	Weight  float64           `yaml:"weight"`
}

// HAPOReward is HAPO's history-aware length reward (component "hapo"): correct responses shorter than
// the shortest (or mean) correct length seen for their prompt earn up to +w_lr, longer ones less; the
// per-prompt history is saved in checkpoints.
type HAPOReward struct {
	Weight float64 `yaml:"weight"` // weight of the component in the reward (0 = off)
	WLR    float64 `yaml:"w_lr"`   // HAPO's w_lr in [0,1]
	Type   string  `yaml:"type"`   // cosine | linear
	Mode   string  `yaml:"mode"`   // history aggregate: min | mean
}

// AlgoConfig picks the objective preset and overrides its parameters (names as in `polo objective`).
type AlgoConfig struct {
	Name string            `yaml:"name"`
	Set  map[string]string `yaml:"set"`
}

// SamplingConfig controls rollouts.
type SamplingConfig struct {
	PromptsPerStep int     `yaml:"prompts_per_step"`
	GroupSize      int     `yaml:"group_size"` // G responses per prompt
	Temperature    float64 `yaml:"temperature"`
	TopK           int     `yaml:"top_k"`
	TopP           float64 `yaml:"top_p"`
	MinP           float64 `yaml:"min_p"`
	MaxNewTokens   int     `yaml:"max_new_tokens"`
}

// SFTConfig is the supervised warm-up on reference answers before RL (steps 0 = none).
type SFTConfig struct {
	Steps     int     `yaml:"steps"`
	BatchSize int     `yaml:"batch_size"`
	LR        float64 `yaml:"lr"`
	// OTR (issue 16, methods): One-Token Rollout replaces the cross-entropy when otr.k > 0 (train/otr.go).
	OTR OTRConfig `yaml:"otr"`
	// Source of the SFT targets: reference (the task's answers) or best_of_n_q (Digi-Q's Best-of-N
	// policy extraction: imitate the value critic's pick of n policy samples; train/bestofn.go).
	Source  string        `yaml:"source"`
	BestOfN BestOfNConfig `yaml:"best_of_n"`
}

// OTRConfig is One-Token Rollout: at every answer position, k tokens drawn from the policy at
// temperature earn 1 if they are the reference token and beta otherwise; the loss is the policy
// gradient −mean R·log π over them.
type OTRConfig struct {
	K           int     `yaml:"k"` // candidates per position; 0 = plain cross-entropy
	Temperature float64 `yaml:"temperature"`
	Beta        float64 `yaml:"beta"` // reward of a candidate that is not the reference token (< 1)
}

// RLConfig is the RL loop.
type RLConfig struct {
	Steps          int `yaml:"steps"`
	Epochs         int `yaml:"epochs"`           // PPO epochs over each rollout batch
	MiniBatches    int `yaml:"mini_batches"`     // optimizer steps per epoch
	MicroBatchSize int `yaml:"micro_batch_size"` // rows per forward/backward (gradient accumulation); 0 = whole mini-batch
	// DynamicSampling refills groups dropped by the preset's filters with fresh prompts, up to this many
	// extra sampling rounds per step (0 = keep the filtered batch as it is).
	MaxRefills int `yaml:"max_refills"`
	// CriticModel (issue 16, methods; train/critic.go): a model folder whose trunk carries the critic's
	// value head instead of the policy's (a separate value model, trained beside the policy). "" = share.
	CriticModel string `yaml:"critic_model"`
	// OfflinePath (train/offline.go): a JSONL of response groups with rewards ({"prompt",
	// "responses", "rewards"}, or pairs {"prompt", "chosen", "rejected"}) that RL trains on instead
	// of sampling: off-policy data, for objectives without old_logp (copg). "" = sample.
	OfflinePath string `yaml:"offline_path"`
}

// PreferenceConfig is the preference mode, used when algo.name is a pair loss (dpo, ipo, rdpo).
type PreferenceConfig struct {
	Path      string `yaml:"path"`       // JSONL of {"prompt", "chosen", "rejected"}; empty = synthetic pairs from the task
	BatchSize int    `yaml:"batch_size"` // pairs per optimizer step
	// SFTWeight adds this times the mean negative log-likelihood of the chosen tokens to the pair loss
	// (TRL's rpo_alpha); it counters DPO's tendency to lower the chosen log-probs too. 0 = pure loss.
	SFTWeight float64 `yaml:"sft_weight"`
}

// DistillConfig is on-policy distillation (algo.name distill): the teacher's log-probs of the
// student's samples take the place of the reference model's.
type DistillConfig struct {
	Teacher string `yaml:"teacher"` // HF folder of the teacher (same tokenizer as the student)
	// Top-k distributions (issue 16, methods; train/topk.go): with top_k > 0 every optimizer step also
	// minimises top_k_coef × KL(teacher's top-k distribution ‖ student) at each response position;
	// a top_k of the vocabulary's size or more is the full-distribution KL.
	TopK     int     `yaml:"top_k"`
	TopKCoef float64 `yaml:"top_k_coef"`
}

// HybridConfig mixes expert demonstrations into RL (CHORD, algo.name chord).
type HybridConfig struct {
	// ExpertRows is the number of expert rows (a prompt of the step with its reference answer) added to
	// every mini-batch; CHORD's μ(step) schedule weighs their SFT loss against the RL loss. 0 = none.
	ExpertRows int `yaml:"expert_rows"`
}

// OptimConfig is AdamW with warm-up, cosine decay and global-norm clipping.
type OptimConfig struct {
	LR          float64 `yaml:"lr"`
	Beta1       float64 `yaml:"beta1"`
	Beta2       float64 `yaml:"beta2"`
	Eps         float64 `yaml:"eps"`
	WeightDecay float64 `yaml:"weight_decay"`
	ClipNorm    float64 `yaml:"clip_norm"`
	WarmupSteps int     `yaml:"warmup_steps"`
	Schedule    string  `yaml:"schedule"`     // constant | cosine
	MinLRRatio  float64 `yaml:"min_lr_ratio"` // cosine floor as a fraction of lr
	// OnNonFinite is what a NaN/Inf loss, gradient or update does: stop (an error; the last
	// checkpoint stays the newest) or skip (drop that optimizer step; stops after 10 in a row).
	OnNonFinite string `yaml:"on_nonfinite"`
}

// EvalConfig is the periodic held-out evaluation (greedy decoding).
type EvalConfig struct {
	Every int `yaml:"every"` // RL steps between evaluations (0 = only before and after RL)
}

// CheckpointCfg controls checkpoints in RUN_DIR/checkpoints.
type CheckpointCfg struct {
	Every int `yaml:"every"` // steps between checkpoints (0 = only at the end of each phase)
	Keep  int `yaml:"keep"`  // most recent checkpoints kept (older ones are deleted)
}

// LogConfig controls console output and plots.
type LogConfig struct {
	Progress bool `yaml:"progress"` // progress bar on stderr
	Plots    bool `yaml:"plots"`    // PNG plots at the end

	// Dashboard logs (polo dash, TensorBoard; docs/dashboard.md).
	TensorBoard  bool `yaml:"tensorboard"`   // RUN_DIR/tb/ event files with every metric
	Samples      int  `yaml:"samples"`       // rollouts per RL step, and held-out answers per evaluation, kept in RUN_DIR/samples/ (0 = none)
	SampleTokens bool `yaml:"sample_tokens"` // … with per-token text, log-prob, entropy and advantage
}

//go:embed demo.yaml
var demoYAML []byte

// DemoYAML is the built-in demo's configuration (what `polo train` runs with no argument).
func DemoYAML() []byte { return bytes.Clone(demoYAML) }

// DefaultConfig returns the built-in demo configuration; a config file overrides any part of it.
func DefaultConfig() Config {
	var c Config
	if err := strictDecode(demoYAML, &c); err != nil {
		panic("train: embedded demo.yaml is invalid: " + err.Error())
	}
	return c
}

// LoadConfig reads a YAML file (empty path = the demo) over the defaults, then applies key=value
// overrides (dotted keys, e.g. algo.name=dapo or algo.set.eps_high=0.28), and validates the result.
func LoadConfig(path string, overrides []string) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(demoYAML, &doc); err != nil {
		return Config{}, fmt.Errorf("embedded demo.yaml: %w", err)
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		var user yaml.Node
		if err := yaml.Unmarshal(data, &user); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		if err := checkDuplicateKeys(&user, ""); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		// Decode the file alone first, so that type errors and unknown fields are reported at the
		// file's own line numbers, not those of the merge with the defaults.
		if err := strictDecode(data, &Config{}); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		if len(user.Content) > 0 {
			if err := mergeNode(doc.Content[0], user.Content[0], ""); err != nil {
				return Config{}, fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	for _, kv := range overrides {
		if err := setNode(doc.Content[0], kv); err != nil {
			return Config{}, err
		}
	}
	if err := checkIntegers(doc.Content[0]); err != nil {
		return Config{}, err
	}
	merged, err := yaml.Marshal(&doc)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := strictDecode(merged, &c); err != nil {
		where := "config"
		if path != "" {
			where = "config " + path
		}
		return Config{}, fmt.Errorf("%s: %w", where, err)
	}
	return c, c.Validate()
}

func strictDecode(data []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// mergeNode overlays src onto dst (both mappings): scalars and sequences replace, mappings merge.
// freeForm lists the maps of free-form options: a config file's value replaces the demo's whole map
// (the demo's task.options digits would be an unknown option of another task).
var freeForm = map[string]bool{"task.options": true, "reward.options": true, "algo.set": true}

func mergeNode(dst, src *yaml.Node, prefix string) error {
	if src.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: expected a mapping of keys", orTop(prefix))
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		key, val := src.Content[i], src.Content[i+1]
		existing := lookup(dst, key.Value)
		switch {
		case existing == nil:
			dst.Content = append(dst.Content, key, val)
		case existing.Kind == yaml.MappingNode && val.Kind == yaml.MappingNode && !freeForm[prefix+key.Value]:
			if err := mergeNode(existing, val, prefix+key.Value+"."); err != nil {
				return err
			}
		default:
			*existing = *val
		}
	}
	return nil
}

func orTop(p string) string {
	if p == "" {
		return "top level"
	}
	return strings.TrimSuffix(p, ".")
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setNode applies one "dotted.key=value" override, creating maps as needed (unknown leaf names are
// caught by the strict decode that follows).
func setNode(root *yaml.Node, kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	if !ok || key == "" {
		return fmt.Errorf("--set %q: want key=value, e.g. algo.name=dapo", kv)
	}
	if value == "" {
		return fmt.Errorf("--set %s=: empty value; give one, or '\"\"' for an empty text", key)
	}
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(value), &val); err != nil || len(val.Content) == 0 {
		val = yaml.Node{Kind: yaml.ScalarNode, Value: value}
	} else {
		val = *val.Content[0]
	}
	node := root
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("--set %s: %s is not a section", key, strings.Join(parts[:i], "."))
		}
		next := lookup(node, p)
		if i == len(parts)-1 {
			if next == nil {
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, &val)
			} else {
				*next = val
			}
			return nil
		}
		if next == nil || (next.Kind == yaml.ScalarNode && next.Tag == "!!null") {
			m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			if next == nil {
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, m)
			} else {
				*next = *m
				m = next
			}
			next = m
		}
		node = next
	}
	return nil
}

// Validate checks ranges and combinations, naming the offending field.
func (c *Config) Validate() error {
	c.moveShapingAliases()
	if err := c.Reward.validateToolShaping(c.Agent.Enabled); err != nil {
		return err
	}
	type check struct {
		bad   bool
		field string
		want  string
	}
	checks := []check{
		{c.Model.Preset == "" && c.Model.Path == "", "model", "a preset (e.g. tiny) or a path to a Hugging Face folder"},
		{!slices.Contains([]string{"", "f32", "float32", "bf16", "bfloat16"}, strings.ToLower(c.Model.Compute.DType)), "model.compute.dtype", "float32 or bf16"},
		{c.Model.Compute.BucketsPerOctave < 0 || c.Model.Compute.BucketsPerOctave > 64, "model.compute.buckets_per_octave", "0 (fine CPU buckets) to 64"},
		{c.Tokenizer.Kind != "char" && c.Tokenizer.Kind != "hf", "tokenizer.kind", "char or hf"},
		{c.Task.Name == "", "task.name", "a generator name or dataset"},
		{c.Task.OnError != "stop" && c.Task.OnError != "skip", "task.on_error", "stop or skip"},
		{c.Task.TestSize < 1 || c.Task.TestSize > maxTestSize, "task.test_size", "in [1, 1000000] held-out prompts"},
		{c.Sampling.PromptsPerStep < 1, "sampling.prompts_per_step", ">= 1"},
		{c.Sampling.GroupSize < 1, "sampling.group_size", ">= 1"},
		{c.Sampling.MaxNewTokens < 1, "sampling.max_new_tokens", ">= 1"},
		{c.Sampling.Temperature < 0, "sampling.temperature", ">= 0"},
		{c.SFT.Steps < 0, "sft.steps", ">= 0"},
		{c.SFT.Steps > 0 && c.SFT.BatchSize < 1, "sft.batch_size", ">= 1"},
		{c.SFT.Steps > 0 && c.SFT.LR <= 0, "sft.lr", "> 0"},
		{c.RL.Steps < 0, "rl.steps", ">= 0"},
		{c.RL.Epochs < 1, "rl.epochs", ">= 1"},
		{c.RL.MiniBatches < 1, "rl.mini_batches", ">= 1"},
		{c.RL.MicroBatchSize < 0, "rl.micro_batch_size", ">= 0"},
		{c.RL.MaxRefills < 0, "rl.max_refills", ">= 0"},
		{c.Optim.LR <= 0, "optim.lr", "> 0"},
		{c.Optim.Beta1 < 0 || c.Optim.Beta1 >= 1, "optim.beta1", "in [0,1)"},
		{c.Optim.Beta2 < 0 || c.Optim.Beta2 >= 1, "optim.beta2", "in [0,1)"},
		{c.Optim.Eps <= 0, "optim.eps", "> 0"},
		{c.Optim.Schedule != "constant" && c.Optim.Schedule != "cosine", "optim.schedule", "constant or cosine"},
		{c.Optim.MinLRRatio < 0 || c.Optim.MinLRRatio > 1, "optim.min_lr_ratio", "in [0,1]"},
		{c.Optim.OnNonFinite != "stop" && c.Optim.OnNonFinite != "skip", "optim.on_nonfinite", "stop or skip"},
		{!(c.Optim.ClipNorm >= 0), "optim.clip_norm", ">= 0 (0 = no clipping)"},
		{c.Optim.WarmupSteps < 0, "optim.warmup_steps", ">= 0"},
		{!(c.Optim.WeightDecay >= 0), "optim.weight_decay", ">= 0"},
		{!(c.SFT.LR >= 0), "sft.lr", ">= 0"},
		{!(c.Sampling.TopP > 0 && c.Sampling.TopP <= 1), "sampling.top_p", "in (0, 1]"},
		{c.Sampling.TopK < 0, "sampling.top_k", ">= 0 (0 = off)"},
		{!(c.Sampling.MinP >= 0 && c.Sampling.MinP < 1), "sampling.min_p", "in [0, 1)"},
		{c.Eval.Every < 0, "eval.every", ">= 0"},
		{c.Ckpt.Every < 0, "checkpoint.every", ">= 0"},
		{c.Ckpt.Keep < 1, "checkpoint.keep", ">= 1"},
		{c.Log.Samples < 0, "log.samples", ">= 0 (0 = no samples log)"},
		{c.Reward.Timeout <= 0, "reward.timeout", "> 0 seconds"},
		{c.RunDir == "", "run_dir", "a directory"},
		{c.Preference.BatchSize < 1, "preference.batch_size", ">= 1"},
		{c.Preference.SFTWeight < 0, "preference.sft_weight", ">= 0"},
		{c.Hybrid.ExpertRows < 0, "hybrid.expert_rows", ">= 0"},
		{c.Hybrid.ExpertRows > 0 && !mixesExperts(*c), "hybrid.expert_rows", "0 unless the objective mixes expert rows (chord)"},
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("config field %s: want %s", ch.field, ch.want)
		}
	}
	if err := c.checkSFTSource(); err != nil { // sft.source best_of_n_q (bestofn.go)
		return err
	}
	if err := c.validateLoRA(); err != nil { // LoRA and memory (issue 18)
		return err
	}
	if err := c.Rollout.check(); err != nil { // rollout engine (issue 17)
		return err
	}
	if err := c.checkLoRASync(); err != nil { // rollout.lora_sync (remote.go)
		return err
	}
	if c.Task.Path != "" && c.Task.Name != "dataset" {
		return fmt.Errorf("config field task.path is set (%s) but task.name is %s, which ignores it; set task.name: dataset to train on the file, or remove task.path", c.Task.Path, c.Task.Name)
	}
	if rows := c.Sampling.PromptsPerStep * c.Sampling.GroupSize; c.RL.MiniBatches > rows {
		return fmt.Errorf("config field rl.mini_batches: %d is more than the %d responses per step", c.RL.MiniBatches, rows)
	}
	if c.Agent.Enabled && c.Rollout.Engine == "remote" {
		return fmt.Errorf("config field rollout.engine: agent mode samples its multi-turn trajectories on the local engine; remote is not supported with agent.enabled yet")
	}
	return c.Agent.validate() // agent mode (agent.go)
}

// mixesExperts reports whether algo.name builds an objective that takes expert rows; an objective
// that does not build is reported by Check.
func mixesExperts(c Config) bool {
	o, err := objective.New(c.Algo.Name, c.Algo.Set)
	if err != nil {
		return true
	}
	_, ok := o.(objective.ExpertMixer)
	return ok
}

// YAML renders the resolved configuration (written to RUN_DIR/config.yaml).
func (c Config) YAML() []byte {
	out, err := yaml.Marshal(c)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return out
}

// seedFor derives an independent, reproducible seed for one purpose at one step, so that a resumed run
// draws exactly what an uninterrupted one would.
func seedFor(seed int64, purpose string, step int) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range []byte(purpose + "/" + strconv.FormatInt(seed, 10) + "/" + strconv.Itoa(step)) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	// splitmix64 finaliser spreads nearby inputs.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
