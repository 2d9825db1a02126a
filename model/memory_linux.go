package model

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// memoryAvailable is the least of the kernel's MemAvailable, the room left under the address-space
// limit (RLIMIT_AS) and the room left in the cgroup (memory.max − memory.current); ok is false when
// none can be read.
func memoryAvailable() (bytes uint64, from string, ok bool) {
	consider := func(v uint64, what string) {
		if !ok || v < bytes {
			bytes, from, ok = v, what, true
		}
	}
	if v, found := procField("/proc/meminfo", "MemAvailable:"); found {
		consider(v, "MemAvailable")
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil && lim.Cur != ^uint64(0) {
		if vm, found := procField("/proc/self/status", "VmSize:"); found && vm < lim.Cur {
			consider(lim.Cur-vm, "address-space limit")
		} else if found {
			consider(0, "address-space limit")
		}
	}
	if max, err := readUint("/sys/fs/cgroup/memory.max"); err == nil {
		if cur, err := readUint("/sys/fs/cgroup/memory.current"); err == nil && cur < max {
			consider(max-cur, "cgroup memory.max")
		}
	}
	return bytes, from, ok
}

// procField reads a "Key: N kB" line.
func procField(path, key string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, found := strings.CutPrefix(sc.Text(), key); found {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64) // "max" fails: no limit
}

// PeakRSS is the process's peak resident memory in bytes (VmHWM) since it started or since the
// last ResetPeakRSS; ok is false where it cannot be read.
func PeakRSS() (bytes uint64, ok bool) { return procField("/proc/self/status", "VmHWM:") }

// CurrentRSS is the process's resident memory in bytes (VmRSS).
func CurrentRSS() (bytes uint64, ok bool) { return procField("/proc/self/status", "VmRSS:") }

// ResetPeakRSS starts a new peak measurement (PeakRSS then reports the peak since now), so that
// each phase of a run can report its own peak. It reports whether the kernel allowed it.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
