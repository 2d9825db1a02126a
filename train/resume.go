package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// resumeCandidates lists the checkpoints a resume may start from, best first: the one "latest"
// names, then every other step checkpoint, newest first. A resume takes the first that loads, so a
// corrupt latest checkpoint (or a kill between renaming a checkpoint and updating "latest") falls
// back to the previous complete one instead of stopping the run for good.
func resumeCandidates(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no checkpoint in %s (the run stopped before its first checkpoint; start it again)", dir)
	}
	if err != nil {
		return nil, err
	}
	var steps []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() && (strings.HasPrefix(n, "sft-") || strings.HasPrefix(n, "rl-")) {
			steps = append(steps, n)
		}
	}
	sort.Slice(steps, func(i, j int) bool { // newest first: RL after SFT, then by step
		pi, pj := strings.HasPrefix(steps[i], "rl-"), strings.HasPrefix(steps[j], "rl-")
		if pi != pj {
			return pi
		}
		return steps[i] > steps[j]
	})
	var out []string
	if data, err := os.ReadFile(filepath.Join(dir, latestFile)); err == nil {
		name := strings.TrimSpace(string(data))
		for i, s := range steps { // only a step folder of this run counts; "latest" may not point elsewhere
			if s == name {
				out = append(out, filepath.Join(dir, s))
				steps = append(steps[:i:i], steps[i+1:]...)
				break
			}
		}
	}
	for _, s := range steps {
		out = append(out, filepath.Join(dir, s))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no checkpoint in %s (the run stopped before its first checkpoint; start it again)", dir)
	}
	return out, nil
}

// removeTemporaries deletes the .tmp-* leftovers of writes a killed run never finished.
func removeTemporaries(dirs ...string) {
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
}
