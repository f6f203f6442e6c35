package campaign

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked is returned when another process is running the campaign.
var ErrLocked = errors.New("the campaign is being sent by another mailout process")

// FileLock takes an exclusive, non-blocking lock on path (created if
// needed). The kernel drops it when the process dies, even by SIGKILL, so a
// runner that holds it knows that every row still "sending" is an orphan of
// a dead run. Unlock with the returned function.
func FileLock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("campaign lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("campaign lock %s: %w", path, err)
	}
	return func() {
		_ = unlockFile(f)
		f.Close()
	}, nil
}

// Runner reports whether a process holds the lock at path: false means no
// mailout process is sending the campaign, so a campaign stored as running
// was interrupted (killed, or the machine stopped) and rows left
// "sending" may have been sent. A missing lock file means no runner.
func Runner(path string) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	unlock, err := FileLock(path)
	if errors.Is(err, ErrLocked) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	unlock()
	return false, nil
}
