package train

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunDirLock: while one process trains in a run folder, a second `polo train` on the same
// run_dir, a `--resume` of it and a compare into a held output folder are refused with an error
// naming the holder's pid (issue 14, item 1). The lock dies with its holder, even under SIGKILL.
func TestRunDirLock(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run")
	cfg := smallRun(t, dir, "rl.steps=100000", "sft.steps=100000", "checkpoint.every=1")
	cfgPath := filepath.Join(root, "run.yaml")
	if err := os.WriteFile(cfgPath, cfg.YAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	child := startChild(t, cfgPath, false)
	pid := strconv.Itoa(child.Process.Pid)
	// Wait until the child has checkpointed, so a resume would have something to resume.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := latestCheckpoint(filepath.Join(dir, "checkpoints")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child wrote no checkpoint in 3 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := fmt.Sprintf("run dir %s is in use by another polo process (pid %s)", dir, pid)
	before, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	cfgBefore, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err := within(time.Minute, func() error { _, err := Run(cfg, Options{}); return err }); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second run on a live run dir: err = %v, want %q", err, want)
	}
	if err := within(time.Minute, func() error { _, err := Resume(dir, Options{}); return err }); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("resume of a live run: err = %v, want %q", err, want)
	}
	// The refused attempts wrote nothing: the config is the child's, metrics only grew.
	if got, _ := os.ReadFile(filepath.Join(dir, "config.yaml")); len(got) == 0 || string(got) != string(cfgBefore) {
		t.Error("config.yaml changed")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl")); !strings.HasPrefix(string(after), string(before)) {
		t.Error("metrics.jsonl was rewritten by a refused run")
	}
	child.Process.Kill()
	child.Wait()
	l, err := lockRunDir(dir)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	l.release()

	// Compare locks its output folder too (in-process holder: the pid is ours).
	out := filepath.Join(root, "cmp")
	held, err := lockRunDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer held.release()
	err = within(time.Minute, func() error { _, err := Compare(cfg, []string{"grpo"}, 1, out, Options{}, nil); return err })
	if want := fmt.Sprintf("run dir %s is in use by another polo process (pid %d)", out, os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("compare into a held folder: err = %v, want %q", err, want)
	}
}

// within runs f and returns its error, or a "still running" error after d (a refusal is immediate;
// a run that was not refused would train for hours).
func within(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("still running after %v: it was not refused", d)
	}
}
