//go:build !unix

package peertest

import (
	"context"
	"time"
)

// lockFile is a no-op where flock(2) does not exist: the peers run only on
// Linux, so there is nothing to share.
func lockFile(context.Context, string, time.Duration) (func(), error) {
	return func() {}, nil
}
