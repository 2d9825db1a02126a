package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A checkpoint is a folder RUN_DIR/checkpoints/<phase>-<step> holding model/ (HF safetensors +
// config.json), optimizer.bin and state.json. It is written under a temporary name and renamed when
// complete; the file "latest" (also replaced by rename) names the newest complete one. A run killed at
// any moment therefore leaves the previous checkpoint intact and "latest" pointing at a whole folder.

const latestFile = "latest"

// runState is everything besides weights and optimizer moments that a resumed run needs.
type runState struct {
	Phase          string            `json:"phase"` // "sft" or "rl": the phase the step belongs to
	Step           int               `json:"step"`  // last completed step of that phase
	ObjectiveState []byte            `json:"objective_state,omitempty"`
	Extra          map[string][]byte `json:"extra,omitempty"` // other stateful parts (reward shaping history)
}

func checkpointName(phase string, step int) string { return fmt.Sprintf("%s-%06d", phase, step) }

// writeCheckpoint creates dir/name atomically and then points "latest" at it.
func writeCheckpoint(dir, name string, fill func(tmp string) error) error {
	if err := writeFolderAtomic(dir, name, fill); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, latestFile), []byte(name+"\n"))
}

// writeFolderAtomic creates dir/name atomically: fill writes the contents into a temporary folder
// that is renamed once complete.
func writeFolderAtomic(dir, name string, fill func(tmp string) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes 0700; a checkpoint is shared like any model folder
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	if err := fill(tmp); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return nil
}

// latestCheckpoint returns the path of the newest complete checkpoint in dir.
func latestCheckpoint(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, latestFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no checkpoint in %s (the run stopped before its first checkpoint; start it again)", dir)
	}
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(data))
	path := filepath.Join(dir, name)
	if _, err := os.Stat(filepath.Join(path, "state.json")); err != nil {
		return "", fmt.Errorf("checkpoint %s named by %s/latest is incomplete: %w", name, dir, err)
	}
	return path, nil
}

// pruneCheckpoints deletes all but the newest keep step checkpoints (names "<phase>-<step>"); other
// folders (the reference model) are left alone, and so is the one "latest" names.
func pruneCheckpoints(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	latest, _ := os.ReadFile(filepath.Join(dir, latestFile))
	var steps []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() && (strings.HasPrefix(n, "sft-") || strings.HasPrefix(n, "rl-")) {
			steps = append(steps, n)
		}
	}
	// Alphabetically "rl-" would sort before "sft-"; order by phase (SFT, then RL), then step.
	sort.Slice(steps, func(i, j int) bool {
		pi, pj := strings.HasPrefix(steps[i], "rl-"), strings.HasPrefix(steps[j], "rl-")
		if pi != pj {
			return !pi
		}
		return steps[i] < steps[j]
	})
	for len(steps) > keep {
		if steps[0] != strings.TrimSpace(string(latest)) {
			if err := os.RemoveAll(filepath.Join(dir, steps[0])); err != nil {
				return err
			}
		}
		steps = steps[1:]
	}
	return nil
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

func readJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in the same folder, syncs it, and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes 0600
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func syncDir(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
