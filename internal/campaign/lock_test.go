package campaign

import (
	"errors"
	"path/filepath"
	"testing"
)

// One runner per campaign: a second lock on the same file is refused until
// the first is released.
func TestFileLockIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.lock")
	unlock, err := FileLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FileLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := FileLock(path)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}
