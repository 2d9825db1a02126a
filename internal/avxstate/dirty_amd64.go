package avxstate

// Feature bits, read once.
var (
	// hasXINUSE reports whether XGETBV with ECX=1 returns the XINUSE bitmap: OSXSAVE
	// (CPUID.1:ECX bit 27) and CPUID.(EAX=0DH,ECX=1):EAX bit 2.
	hasXINUSE bool
	// hasAVX reports whether the CPU and the OS support 256-bit AVX registers: AVX
	// (CPUID.1:ECX bit 28), OSXSAVE, and XCR0 bits 1 and 2 (SSE and AVX state enabled).
	hasAVX bool
)

func init() {
	maxLeaf, _, _, _ := cpuid(0, 0)
	_, _, ecx1, _ := cpuid(1, 0)
	osxsave := ecx1&(1<<27) != 0
	if !osxsave {
		return
	}
	xcr0 := xgetbv(0)
	hasAVX = ecx1&(1<<28) != 0 && xcr0&6 == 6
	if maxLeaf >= 0xd {
		eax, _, _, _ := cpuid(0xd, 1)
		hasXINUSE = eax&(1<<2) != 0
	}
}

// XINUSE bits of the state that legacy SSE code pays for: the upper halves of YMM0–15
// (component 2) and of ZMM0–15 (component 6, ZMM_Hi256).
const upperState = 1<<2 | 1<<6

// Dirty reports whether the upper halves of the AVX registers are in use, as the XINUSE bitmap
// (XGETBV with ECX=1) says. known is false where the CPU cannot report it.
func Dirty() (dirty, known bool) {
	if !hasXINUSE {
		return false, false
	}
	return xgetbv(1)&upperState != 0, true
}

// MakeDirty puts a non-zero value in the upper half of Y0, leaving the state dirty, as a preemption
// does; it does nothing on CPUs without AVX. It exists for tests and diagnostics.
func MakeDirty() {
	if hasAVX {
		dirtyUpper()
	}
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv returns the low 32 bits of extended control register ecx (0: XCR0, 1: XINUSE).
func xgetbv(ecx uint32) uint32

// dirtyUpper sets Y0 to all ones with a VEX-encoded 256-bit instruction.
func dirtyUpper()
