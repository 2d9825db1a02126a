package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrainCLI(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"train", "--print-config", "--set", "algo.name=dapo"}, nil, &out, &errb); code != 0 {
		t.Fatalf("--print-config: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "name: dapo") || !strings.Contains(out.String(), "group_size: 8") {
		t.Fatalf("--print-config output lacks the resolved fields:\n%s", out.String())
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sampling:\n  group_sise: 4\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"train", bad}, "group_sise"},
		{[]string{"train", "--set", "algo.name=nope"}, `unknown objective "nope"`},
		{[]string{"train", "--resume", filepath.Join(dir, "absent")}, "absent"},
		{[]string{"train", "--resume", dir, "--set", "seed=2"}, "--resume takes no"},
		{[]string{"compare", "--algos", "grpo,nope", "--seeds", "1"}, `unknown objective "nope"`},
		{[]string{"compare", "--seeds", "0"}, "--seeds"},
	}
	for _, c := range cases {
		out.Reset()
		errb.Reset()
		code := run(c.args, nil, &out, &errb)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != 2 || !strings.Contains(lines[len(lines)-1], c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errb.String(), c.want)
		}
	}

	// A tiny real run through the CLI, then its summary.
	runDir := filepath.Join(dir, "run")
	args := []string{"train", "--quiet", "--set", "run_dir=" + runDir, "--set", "model.preset=tiny", "--set", "task.options.digits=1",
		"--set", "task.test_size=8", "--set", "sft.steps=2", "--set", "rl.steps=1", "--set", "log.plots=false",
		"--set", "sampling.prompts_per_step=2", "--set", "sampling.group_size=2"}
	out.Reset()
	errb.Reset()
	if code := run(args, nil, &out, &errb); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"accuracy, greedy", "seconds per RL step"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, "checkpoints", "rl-000001", "model", "model.safetensors")); err != nil {
		t.Fatal(err)
	}
}
