package model

import (
	"syscall"
	"testing"
)

// TestPeakRSS: touching 64 MiB of fresh pages raises the peak by that much after a reset. The pages
// come from mmap, not the Go heap, which may reuse memory that is already resident.
func TestPeakRSS(t *testing.T) {
	if !ResetPeakRSS() {
		t.Skip("kernel does not allow resetting VmHWM")
	}
	p0, ok := PeakRSS()
	if !ok {
		t.Fatal("no VmHWM in /proc/self/status")
	}
	buf, err := syscall.Mmap(-1, 0, 64<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(buf)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	p1, _ := PeakRSS()
	if p1 < p0+60<<20 {
		t.Fatalf("peak RSS went from %d to %d after touching 64 MiB", p0, p1)
	}
}
