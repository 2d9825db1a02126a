//go:build !amd64

package avxstate

// Dirty reports whether the upper halves of the AVX registers are in use. known is false where
// the CPU cannot report it, as on every architecture but amd64.
func Dirty() (dirty, known bool) { return false, false }

// MakeDirty leaves the upper halves of the AVX registers in use, as a preemption does. It exists
// for tests and diagnostics and does nothing on architectures without AVX.
func MakeDirty() {}

// hasAVX reports whether MakeDirty can dirty the state.
const hasAVX = false
