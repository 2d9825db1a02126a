package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the run folder that the eval and sample tests train once and share.
func TestMain(m *testing.M) {
	code := m.Run()
	if ckptDir != "" {
		os.RemoveAll(filepath.Dir(filepath.Dir(filepath.Dir(ckptDir)))) // RUN_DIR of RUN_DIR/checkpoints/<name>/model
	}
	os.Exit(code)
}
