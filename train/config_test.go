package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoConfigIsValid(t *testing.T) {
	c, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Algo.Name != "grpo" || c.Sampling.GroupSize != 8 || c.Task.Options["digits"] != "2" {
		t.Fatalf("unexpected demo defaults: %+v", c)
	}
}

func TestConfigOverrides(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("algo:\n  name: dapo\nsampling:\n  group_size: 4\n"), 0o644)
	c, err := LoadConfig(path, []string{"algo.set.eps_high=0.28", "optim.lr=1e-3", "task.options.digits=2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Algo.Name != "dapo" || c.Sampling.GroupSize != 4 || c.Sampling.PromptsPerStep != 16 {
		t.Fatalf("file did not merge over defaults: %+v", c.Sampling)
	}
	if c.Algo.Set["eps_high"] != "0.28" || c.Optim.LR != 1e-3 || c.Task.Options["digits"] != "2" {
		t.Fatalf("overrides not applied: %+v %v %v", c.Algo.Set, c.Optim.LR, c.Task.Options)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file string
		sets       []string
		want       string
	}{
		{"unknown field", "sampling:\n  groupsize: 4\n", nil, "groupsize"},
		// Line numbers are the user's file's, not those of the merge with the defaults.
		{"line of an unknown field", "seed: 2\nrl:\n  steps: 10\n  stepz: 5\n", nil, "line 4: field stepz not found"},
		{"line of a type error", "seed: 2\nrl:\n  steps: abc\n", nil, "line 3: cannot unmarshal"},
		{"unknown section", "optimiser:\n  lr: 1\n", nil, "optimiser"},
		{"bad type", "sampling:\n  group_size: many\n", nil, "many"},
		{"bad range", "", []string{"sampling.group_size=0"}, "sampling.group_size"},
		{"bad schedule", "", []string{"optim.schedule=linear"}, "optim.schedule"},
		{"bad set syntax", "", []string{"algo.name"}, "key=value"},
		{"unknown set key", "", []string{"rl.stepz=3"}, "stepz"},
		{"not a mapping", "- 1\n- 2\n", nil, "mapping"},
		{"agent on remote servers", "", []string{"agent.enabled=true", "rollout.engine=remote", "rollout.servers=[http://127.0.0.1:1]"}, "agent mode samples"},
		{"lora_sync value", "", []string{"rollout.lora_sync=delta"}, "rollout.lora_sync: want merged or adapter"},
		{"lora_sync adapter without lora", "", []string{"rollout.lora_sync=adapter", "rollout.engine=remote", "rollout.servers=[http://127.0.0.1:1]"}, "rollout.lora_sync: adapter needs lora.enabled"},
		{"lora_sync adapter on the local engine", "", []string{"rollout.lora_sync=adapter", "lora.enabled=true"}, "rollout.lora_sync: adapter publishes LoRA adapters to remote servers"},
		{"lora_sync adapter with a model name", "", []string{"rollout.lora_sync=adapter", "lora.enabled=true", "rollout.engine=remote", "rollout.servers=[http://127.0.0.1:1]", "rollout.model=policy"}, "rollout.model"},
		{"task.path without dataset", "task:\n  path: gsm8k.jsonl\n", nil, "task.path is set (gsm8k.jsonl) but task.name is addition"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
				os.WriteFile(path, []byte(tc.file), 0o644)
			}
			_, err := LoadConfig(path, tc.sets)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("want one-line error mentioning %q, got %v", tc.want, err)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestResolvedConfigRoundTrips(t *testing.T) {
	c, _ := LoadConfig("", []string{"algo.set.beta=0.01"})
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, c.YAML(), 0o644)
	c2, err := LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(c2.YAML()) != string(c.YAML()) {
		t.Fatalf("round trip differs:\n%s\nvs\n%s", c.YAML(), c2.YAML())
	}
}

func TestSeedForIsStableAndDistinct(t *testing.T) {
	a, b, c := seedFor(1, "rollout", 3), seedFor(1, "rollout", 4), seedFor(2, "rollout", 3)
	if a != seedFor(1, "rollout", 3) || a == b || a == c || a == seedFor(1, "prompts", 3) {
		t.Fatalf("seeds not stable/distinct: %d %d %d", a, b, c)
	}
}

// TestConfigCharTokenizerModelVocab: the char tokenizer with a Hugging Face model.path of another
// vocabulary is refused by Check and by Run before the run folder is created (issue 14 minor).
func TestConfigCharTokenizerModelVocab(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	c, err := LoadConfig("", []string{"model.path=../testdata/models/llama", "run_dir=" + runDir})
	if err != nil {
		t.Fatal(err)
	}
	want := "has vocab_size 320, but tokenizer.kind char has 15 tokens"
	if err := Check(c); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Check: %v, want ~%q", err, want)
	}
	if _, err := Run(c, Options{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run: %v, want ~%q", err, want)
	}
	if _, err := os.Stat(filepath.Join(runDir, "config.yaml")); !os.IsNotExist(err) {
		t.Fatalf("the refused run wrote its config.yaml (%v)", err)
	}
}

// TestConfigDatasetOnError: a malformed dataset row stops the load with a hint naming the config
// field that skips it (task.on_error), and task.on_error: skip drops the row (issue 14 minor).
func TestConfigDatasetOnError(t *testing.T) {
	sets := []string{"task.name=dataset", "task.path=../testdata/task/malformed.jsonl", "tokenizer.kind=hf", "task.test_size=1"}
	c, err := LoadConfig("", sets)
	if err != nil {
		t.Fatal(err)
	}
	want := "malformed.jsonl line 3: not a JSON object: invalid character 'h' in literal true (expecting 'r') (fix the row, or set task.on_error: skip to drop malformed rows)"
	if _, err := HeldOut(c); err == nil || err.Error() != "../testdata/task/"+want {
		t.Fatalf("stop: %v, want %q", err, want)
	}
	c, err = LoadConfig("", append(sets, "task.on_error=skip"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := newPromptSource(c)
	if err != nil || len(ps.test) != 1 || len(ps.data) == 0 || len(ps.skipped) == 0 {
		t.Fatalf("skip: %v (test %d, train %d, skipped %d)", err, len(ps.test), len(ps.data), len(ps.skipped))
	}
}
