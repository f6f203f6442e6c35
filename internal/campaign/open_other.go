//go:build !unix

package campaign

// nonBlock is not needed where opening a file never waits for a writer.
const nonBlock = 0
