package train

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/polo-rl/polo/model"
)

// LoRAConfig is the lora: block. With enabled, the policy trains a LoRA adapter on frozen base
// weights; the KL reference is the base itself (no second copy of the weights), and checkpoints
// hold the adapter in PEFT's layout (checkpoints/<name>/model/adapter_config.json +
// adapter_model.safetensors) with its base named in base_model_name_or_path.
type LoRAConfig struct {
	Enabled       bool     `yaml:"enabled"`
	Phase         string   `yaml:"phase"` // all | rl
	R             int      `yaml:"r"`
	Alpha         float64  `yaml:"alpha"`
	Dropout       float64  `yaml:"dropout"`
	RSLoRA        bool     `yaml:"rslora"`
	TargetModules []string `yaml:"target_modules"`
}

// MemoryConfig holds memory controls of training.
type MemoryConfig struct {
	ActivationCheckpointing bool `yaml:"activation_checkpointing"`
}

func (c *Config) validateLoRA() error {
	l := c.LoRA
	if !l.Enabled {
		return nil
	}
	if l.Phase != "all" && l.Phase != "rl" {
		return fmt.Errorf("config field lora.phase: want all or rl, got %q", l.Phase)
	}
	if err := c.modelLoRA().Validate(); err != nil {
		return fmt.Errorf("config field %v", err)
	}
	return nil
}

// modelLoRA is the adapter's configuration, its seed derived from the run's.
func (c Config) modelLoRA() model.LoRAConfig {
	l := c.LoRA
	return model.LoRAConfig{Rank: l.R, Alpha: l.Alpha, Dropout: l.Dropout, RSLoRA: l.RSLoRA,
		Targets: slices.Clone(l.TargetModules), Seed: int64(seedFor(c.Seed, "lora", 0) >> 1)}
}

// startLoRA puts a fresh adapter on the policy when the run's lora.phase begins ("all": at setup;
// "rl": as RL starts, the base being the policy after SFT), first writing the base where the
// adapter's checkpoints name it, unless model.path already holds it.
func (r *runner) startLoRA(phase string) error {
	if !r.cfg.LoRA.Enabled || r.cfg.LoRA.Phase != phase || r.policy.HasAdapter() {
		return nil
	}
	if r.loraBase() != r.cfg.Model.Path {
		if err := writeFolderAtomic(r.ckptDir, "base", func(tmp string) error {
			if err := r.policy.Save(filepath.Join(tmp, "model")); err != nil {
				return err
			}
			return r.codec.save(filepath.Join(tmp, "model"))
		}); err != nil {
			return fmt.Errorf("lora base: %w", err)
		}
	}
	m, err := r.policy.AddAdapter(r.cfg.modelLoRA())
	if err != nil {
		return err
	}
	r.policy = m
	fmt.Fprintf(r.opts.Log, "lora: r=%d alpha=%g on %v: %d trainable parameters (%.2f%% of %d), base frozen\n",
		r.cfg.LoRA.R, r.cfg.LoRA.Alpha, r.cfg.LoRA.TargetModules, m.NumAdapterParams(),
		100*float64(m.NumAdapterParams())/float64(m.NumParams()), m.NumParams())
	return nil
}

// loraBase is the folder of the adapter's base model: model.path when the adapter covers the whole
// run of a loaded checkpoint, else checkpoints/base/model.
func (r *runner) loraBase() string {
	if r.cfg.LoRA.Phase == "all" && r.cfg.Model.Path != "" {
		return r.cfg.Model.Path
	}
	return filepath.Join(r.ckptDir, "base", "model")
}

// savePolicy writes the policy to dir (checkpoints/<name>/model): the adapter in PEFT's layout, or
// the whole model. An adapter names a base inside the run folder relatively
// ("../../base/model"), so that a moved or copied run folder still resumes.
func (r *runner) savePolicy(dir string) error { return r.saveModel(r.policy, dir) }

// saveModel is savePolicy for m, a model of the policy's kind (nlpo's masking policy): dir must sit
// at the same depth, checkpoints/<name>/<folder>.
func (r *runner) saveModel(m *model.Model, dir string) error {
	if m.HasAdapter() {
		base := r.loraBase()
		if base != r.cfg.Model.Path {
			base = filepath.Join("..", "..", "base", "model")
		} else if abs, err := filepath.Abs(base); err == nil {
			base = abs
		}
		return m.SaveAdapter(dir, base)
	}
	return m.Save(dir)
}

// saveMerged writes the policy as one full checkpoint (a LoRA adapter folded into its base), the form
// every inference server loads through a weight reload.
func (r *runner) saveMerged(dir string) error {
	if !r.policy.HasAdapter() {
		return r.policy.Save(dir)
	}
	m, err := r.policy.Merged()
	if err != nil {
		return err
	}
	return m.Save(dir)
}

// loadPolicy reads a checkpoint's model folder (a full model, or an adapter onto its base).
func (r *runner) loadPolicy(dir string) (*model.Model, error) {
	if model.IsAdapterDir(dir) {
		return model.LoadAdapted(dir, "", r.cfg.modelLoRA().Seed)
	}
	return model.Load(dir)
}

// newTrainer is model.NewTrainer with the run's memory options.
func (r *runner) newTrainer(phase string) (*model.Trainer, error) {
	tr, err := model.NewTrainer(r.policy, r.optimConfig(phase))
	if err != nil {
		return nil, err
	}
	tr.SetActivationCheckpointing(r.cfg.Memory.ActivationCheckpointing)
	return tr, nil
}

// logPhaseMemory reports the process's peak resident memory during a phase and starts a new peak.
func (r *runner) logPhaseMemory(phase string) {
	if peak, ok := model.PeakRSS(); ok {
		fmt.Fprintf(r.opts.Log, "memory: peak RSS %.2f GiB during %s\n", float64(peak)/(1<<30), phase)
		model.ResetPeakRSS()
	}
}
