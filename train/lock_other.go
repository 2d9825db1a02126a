//go:build !unix

package train

import "os"

// flockExclusive: run folders are not locked on platforms without flock(2).
func flockExclusive(*os.File) error { return nil }
