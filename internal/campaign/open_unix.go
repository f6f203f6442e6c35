//go:build unix

package campaign

import "syscall"

// nonBlock makes opening a named pipe return at once instead of waiting
// for a writer (open(2) O_NONBLOCK); regular files read as usual.
const nonBlock = syscall.O_NONBLOCK
