package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the advisory lock of a run folder, held for the life of a run (`polo train`,
// `--resume`, each run of `polo compare`, and compare's output folder). A second process that
// tries the same folder gets an error naming the holder's pid instead of interleaving metrics and
// checkpoints. The lock is an flock(2) on RUN_DIR/.lock, so the kernel releases it when the holder
// exits, however it exits (SIGKILL included); the pid written in the file is only for the message.
const lockFile = ".lock"

// runLock is a held run-folder lock; release it when the run ends.
type runLock struct {
	dir string
	f   *os.File
}

// lockRunDir creates dir if needed and takes its lock, or says who holds it.
func lockRunDir(dir string) (*runLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run dir %s: lock: %w", dir, err)
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			holder := "unknown pid"
			if data, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); perr == nil {
					holder = "pid " + strconv.Itoa(pid)
				}
			}
			return nil, fmt.Errorf("run dir %s is in use by another polo process (%s); wait for it to finish or stop it, or use another run_dir", dir, holder)
		}
		return nil, fmt.Errorf("run dir %s: lock: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &runLock{dir: dir, f: f}, nil
}

// release drops the lock. A folder that holds nothing but the lock file (a run refused before it
// wrote anything) is removed again.
func (l *runLock) release() {
	if l == nil || l.f == nil {
		return
	}
	entries, err := os.ReadDir(l.dir)
	if err == nil && len(entries) == 1 && entries[0].Name() == lockFile {
		os.Remove(filepath.Join(l.dir, lockFile))
		os.Remove(l.dir)
	}
	l.f.Close()
	l.f = nil
}

var errLocked = errors.New("locked")
