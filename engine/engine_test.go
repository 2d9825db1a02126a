package engine

import (
	"strings"
	"testing"
)

func TestDefaultIsPureGo(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	if got := Config(); got != "go:ops_parallel" {
		t.Fatalf("Config() = %q, want go:ops_parallel", got)
	}
	b, err := Backend()
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() == "" {
		t.Fatal("backend has no name")
	}
}

func TestUnknownBackendIsAnError(t *testing.T) {
	_, err := BackendFor("nosuch:thing")
	if err == nil || !strings.Contains(err.Error(), "not compiled in") {
		t.Fatalf("want a not-compiled-in error, got %v", err)
	}
}
