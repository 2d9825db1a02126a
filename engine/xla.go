//go:build xla

package engine

import _ "github.com/gomlx/go-xla/compute/xla" // registers the "xla" backend (needs cgo and a PJRT plugin at run time)
