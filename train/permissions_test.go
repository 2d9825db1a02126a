package train

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCheckpointPermissions: checkpoint folders are 0755 and their files (and config.yaml) 0644
// under the usual umask, like any model download, not 0700/0600 (issue 14, minor item).
func TestCheckpointPermissions(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	err := writeCheckpoint(dir, "sft-000001", func(tmp string) error {
		return writeFileAtomic(filepath.Join(tmp, "state.json"), []byte("{}"))
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "sft-000001"):               0o755 | os.ModeDir,
		filepath.Join(dir, "sft-000001", "state.json"): 0o644,
		filepath.Join(dir, latestFile):                 0o644,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
	}
}
