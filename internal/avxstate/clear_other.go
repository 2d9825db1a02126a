//go:build !(goexperiment.simd && amd64)

package avxstate

// Clear executes VZEROUPPER, so that the legacy SSE code that follows runs without AVX/SSE
// transition penalties. Call it once before a long scalar float loop, not inside it.
//
// Without GOEXPERIMENT=simd the runtime's preemption handler saves and restores only the SSE
// registers, and other architectures have no such state, so Clear does nothing.
func Clear() {}

// clears reports whether Clear executes VZEROUPPER in this build.
const clears = false
