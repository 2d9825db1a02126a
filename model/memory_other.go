//go:build !linux

package model

// memoryAvailable is unknown off Linux; only the context-length bound applies there.
func memoryAvailable() (uint64, string, bool) { return 0, "", false }

// PeakRSS is unknown off Linux.
func PeakRSS() (uint64, bool) { return 0, false }

// CurrentRSS is unknown off Linux.
func CurrentRSS() (uint64, bool) { return 0, false }

// ResetPeakRSS does nothing off Linux.
func ResetPeakRSS() bool { return false }
