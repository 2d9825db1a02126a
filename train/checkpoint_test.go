package train

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckpointAtomicAndPruned(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) error {
		return writeCheckpoint(dir, name, func(tmp string) error {
			return writeJSONFile(filepath.Join(tmp, "state.json"), runState{Phase: "rl", Step: len(name)})
		})
	}
	for _, n := range []string{checkpointName("sft", 10), checkpointName("rl", 5), checkpointName("rl", 10)} {
		if err := write(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := pruneCheckpoints(dir, 2); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*-*"))
	if len(got) != 2 || !strings.HasSuffix(got[0], "rl-000005") || !strings.HasSuffix(got[1], "rl-000010") {
		t.Fatalf("after prune: %v", got)
	}
	latest, err := latestCheckpoint(dir)
	if err != nil || filepath.Base(latest) != "rl-000010" {
		t.Fatalf("latest %q %v", latest, err)
	}
	// A failing writer leaves the previous checkpoint and the pointer untouched, and no temp folder.
	err = writeCheckpoint(dir, checkpointName("rl", 15), func(string) error { return errors.New("disk full") })
	if err == nil {
		t.Fatal("want error")
	}
	latest, _ = latestCheckpoint(dir)
	tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if filepath.Base(latest) != "rl-000010" || len(tmps) != 0 {
		t.Fatalf("failed write changed state: latest %s, temps %v", latest, tmps)
	}
}

func TestLatestCheckpointErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := latestCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Fatalf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, latestFile), []byte("rl-000001\n"), 0o644)
	if _, err := latestCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("dangling pointer: %v", err)
	}
}
