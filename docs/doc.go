// Package docs holds mailout's documentation (the .md files in this folder)
// and the tests that keep it, and a few properties of the build it
// describes, true: every file docs/architecture.md names exists, every test
// docs/reliability.md cites exists in the file it names, the mailout binary
// does not link the testing package, and the campaign lock builds where
// neither flock(2) nor LockFileEx exists.
//
// It has no code of its own; nothing imports it.
package docs
