package train

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/polo-rl/polo/model"
)

// TestLoRARunResumesBitIdentical: GRPO with a LoRA adapter from the RL phase on writes the base once
// (checkpoints/base), adapters in PEFT's layout in every RL checkpoint (no full weights, no second
// reference copy), keeps the base bit-identical to the policy after SFT, and a run resumed from
// rl-000002 continues bit-identically (metrics and adapter bytes).
func TestLoRARunResumesBitIdentical(t *testing.T) {
	root := t.TempDir()
	sets := []string{"lora.enabled=true", "lora.phase=rl", "lora.r=4", "lora.alpha=8", "lora.dropout=0.1",
		"sft.steps=4", "rl.steps=4", "checkpoint.every=2", "checkpoint.keep=3", "task.test_size=8",
		"sampling.prompts_per_step=4", "optim.lr=0.01"}
	whole := smallRun(t, filepath.Join(root, "whole"), sets...)
	if _, err := Run(whole, Options{}); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(whole.RunDir, "checkpoints")
	final := filepath.Join(ck, "rl-000004", "model")
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "polo_tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(final, f)); err != nil {
			t.Fatalf("LoRA checkpoint lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(final, "model.safetensors")); err == nil {
		t.Fatal("LoRA checkpoint holds full weights")
	}
	if _, err := os.Stat(filepath.Join(ck, "reference")); err == nil {
		t.Fatal("LoRA run wrote a second copy of the weights as the reference")
	}
	var ac map[string]any
	data, _ := os.ReadFile(filepath.Join(final, "adapter_config.json"))
	json.Unmarshal(data, &ac)
	if ac["r"] != 4.0 || ac["lora_alpha"] != 8.0 || ac["base_model_name_or_path"] != filepath.Join("..", "..", "base", "model") {
		t.Fatalf("adapter_config.json: %s", data)
	}
	// The base is the policy after SFT, bit for bit.
	a, _ := os.ReadFile(filepath.Join(ck, "base", "model", "model.safetensors"))
	sftPolicy, err := model.Load(filepath.Join(whole.RunDir, "checkpoints", "base", "model"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) == 0 {
		t.Fatal("no base weights")
	}
	// The adapted policy differs from the base (the adapter learned something).
	p, err := LoadPolicy(final)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Model.HasAdapter() {
		t.Fatal("LoadPolicy did not load the adapter")
	}
	ids := [][]int32{{1, 2, 3, 4, 5}}
	mask := [][]int32{{1, 1, 1, 1, 1}}
	l1, _, _ := p.Model.LogProbs(ids, mask)
	l0, _, _ := sftPolicy.LogProbs(ids, mask)
	diff := 0.0
	for j := range l1[0] {
		diff = max(diff, float64(l1[0][j]-l0[0][j]), float64(l0[0][j]-l1[0][j]))
	}
	if diff < 1e-4 {
		t.Fatalf("adapted log-probs equal the base's (max |Δ| %g): the adapter did not train", diff)
	}

	want := comparableMetrics(t, whole.RunDir)
	dir := filepath.Join(root, "resumed")
	if err := os.CopyFS(dir, os.DirFS(whole.RunDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(whole.RunDir, "checkpoints", "base")) // the copy must use its own base
	os.RemoveAll(filepath.Join(dir, "checkpoints", "rl-000004"))
	os.WriteFile(filepath.Join(dir, "checkpoints", "latest"), []byte("rl-000002\n"), 0o644)
	if _, err := Resume(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, want, comparableMetrics(t, dir))
	x, _ := os.ReadFile(filepath.Join(final, "adapter_model.safetensors"))
	y, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000004", "model", "adapter_model.safetensors"))
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Fatal("adapter differs after resume")
	}
	xo, _ := os.ReadFile(filepath.Join(ck, "rl-000004", "optimizer.bin"))
	yo, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000004", "optimizer.bin"))
	if len(xo) == 0 || !bytes.Equal(xo, yo) {
		t.Fatal("optimizer state differs after resume")
	}
}

// TestLoRAInEveryMode: SFT (lora.phase all), preference (DPO) and on-policy distillation train an
// adapter on a frozen base: the base file is untouched and the adapter's B left zero.
func TestLoRAInEveryMode(t *testing.T) {
	if testing.Short() {
		t.Skip("trains small runs")
	}
	root := t.TempDir()
	teacher := smallRun(t, filepath.Join(root, "teacher"), "sft.steps=10", "rl.steps=0")
	if _, err := Run(teacher, Options{}); err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(teacher.RunDir, "checkpoints", "sft-000010", "model")
	for _, c := range []struct {
		name string
		sets []string
	}{
		{"sft-all", []string{"lora.phase=all", "sft.steps=4", "rl.steps=2"}},
		{"dpo", []string{"algo.name=dpo", "sft.steps=2", "rl.steps=3", "preference.batch_size=8"}},
		{"distill", []string{"algo.name=distill", "distill.teacher=" + tdir, "sft.steps=2", "rl.steps=3"}},
		{"checkpointing", []string{"memory.activation_checkpointing=true", "sft.steps=2", "rl.steps=2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sets := append([]string{"lora.enabled=true", "lora.r=2", "lora.alpha=4", "task.test_size=8",
				"sampling.prompts_per_step=4", "checkpoint.every=0", "optim.lr=0.01", "sft.lr=0.01"}, c.sets...)
			cfg := smallRun(t, filepath.Join(root, c.name), sets...)
			if _, err := Run(cfg, Options{}); err != nil {
				t.Fatal(err)
			}
			ck := filepath.Join(cfg.RunDir, "checkpoints")
			last := filepath.Join(ck, checkpointName("rl", cfg.RL.Steps), "model")
			m, err := model.LoadAny(last)
			if err != nil {
				t.Fatal(err)
			}
			if !m.HasAdapter() {
				t.Fatal("no adapter in the final checkpoint")
			}
			base, _ := model.Load(filepath.Join(ck, "base", "model"))
			ids := [][]int32{{1, 2, 3, 4, 5, 6}}
			mask := [][]int32{{1, 1, 1, 1, 1, 1}}
			la, _, _ := m.LogProbs(ids, mask)
			lb, _, _ := m.Base().LogProbs(ids, mask)
			lf, _, _ := base.LogProbs(ids, mask)
			moved := false
			for j := range la[0] {
				if lb[0][j] != lf[0][j] {
					t.Fatal("the adapter's base differs from checkpoints/base")
				}
				moved = moved || la[0][j] != lb[0][j]
			}
			if !moved {
				t.Fatal("the adapter did not change the policy")
			}
		})
	}
}
