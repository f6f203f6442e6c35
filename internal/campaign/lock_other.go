//go:build !unix && !windows

package campaign

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errWouldBlock is never returned here: lockFile cannot tell a held lock
// from a free one on this platform.
var errWouldBlock = errors.New("campaign lock held")

// lockFile refuses: without flock(2) or LockFileEx there is no lock that
// the operating system drops when its process dies, and a lock file that
// outlived a crash would keep the campaign locked for ever. Refusing is the
// honest answer; the error wraps errors.ErrUnsupported.
func lockFile(*os.File) error {
	return fmt.Errorf("campaign locking is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func unlockFile(*os.File) error { return nil }
