// Package engine chooses and configures the GoMLX compute backend.
//
// The pure-Go backend is the default, so a plain build needs no cgo and no
// plugin. Building with `-tags xla` (cgo) also links the XLA backend, which is
// then selected with GOMLX_BACKEND=xla:cpu or xla:/path/to/pjrt_plugin.so.
package engine

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // registers the "go" backend
)

// DefaultConfig is used when GOMLX_BACKEND is not set: the pure-Go backend running independent ops
// of a graph in parallel (each op may also split over the cores), so ops too small to split do not
// leave the other cores idle: the demo-shape RL step's training ran 10-22% faster than with
// go:ops_sequential on 2 cores (bench/results/rl-cpu.txt). Results are bit-identical to sequential
// order: no op's work split depends on how many workers are free. This scheduler used to deadlock
// (every worker slot held by a matmul waiting for a free slot); compute patch 0018 fixed that
// (third_party/README.md). GOMLX_BACKEND=go:ops_sequential runs one op at a time.
const DefaultConfig = "go:ops_parallel"

var (
	mu     sync.Mutex
	shared = map[string]compute.Backend{}
)

// Config returns the backend configuration in effect: $GOMLX_BACKEND or DefaultConfig.
func Config() string {
	if c := strings.TrimSpace(os.Getenv(compute.ConfigEnvVar)); c != "" {
		return c
	}
	return DefaultConfig
}

// Backend returns the process-wide backend for Config(), creating it on first use.
// Backends hold device state, so every model in a process shares one.
func Backend() (compute.Backend, error) {
	return BackendFor(Config())
}

// BackendFor returns the shared backend for an explicit configuration such as "go" or "xla:cuda".
func BackendFor(config string) (compute.Backend, error) {
	mu.Lock()
	defer mu.Unlock()
	if b, ok := shared[config]; ok {
		return b, nil
	}
	name, _, _ := strings.Cut(config, ":")
	if !slices.Contains(compute.List(), name) {
		hint := ""
		if name == "xla" {
			hint = " (rebuild with -tags xla to include the XLA backend)"
		}
		return nil, fmt.Errorf("backend %q is not compiled in; available: %s%s", name, strings.Join(compute.List(), ", "), hint)
	}
	b, err := newBackend(config)
	if err != nil {
		return nil, fmt.Errorf("start backend %q: %w", config, err)
	}
	shared[config] = b
	return b, nil
}

// newBackend turns the constructor's panics into errors: a bad plugin path must not crash the CLI.
func newBackend(config string) (b compute.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return compute.NewWithConfig(config)
}

// MustBackend is Backend for tests and examples.
func MustBackend() compute.Backend {
	b, err := Backend()
	if err != nil {
		panic(err)
	}
	return b
}
