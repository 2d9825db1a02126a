//go:build !linux

package model

// memoryAvailable is unknown off Linux; only the context-length bound applies there.
func memoryAvailable() (uint64, string, bool) { return 0, "", false }
