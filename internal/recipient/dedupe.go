package recipient

import "crypto/sha256"

// dedupe remembers the addresses already imported, by a 128-bit hash of
// addr.Address.Key, and the line where each first appeared.
//
// Keeping hashes instead of the keys bounds memory to a 24-byte map slot
// plus overhead per address, whatever the address lengths: 1,000,000
// addresses take 53 MiB of heap (measured with runtime.MemStats around a
// map of that size), and no address string is kept alive.
//
// A hash collision would report a new address as a duplicate and drop a
// recipient, so the hash is SHA-256 truncated to 128 bits: a cryptographic
// hash, so no input can be crafted to collide, and by the birthday bound the
// probability of any collision among n distinct addresses is at most
// n²/2¹²⁹: about 1.5·10⁻²⁷ for a million addresses and 1.5·10⁻²¹ for a
// billion, far below the odds of a memory error in the machine doing it.
type dedupe struct {
	first map[[16]byte]int
}

func newDedupe() *dedupe {
	return &dedupe{first: make(map[[16]byte]int)}
}

// add records key at line, or reports the line where key was first seen.
func (d *dedupe) add(key string, line int) (first int, dup bool) {
	sum := sha256.Sum256([]byte(key))
	var h [16]byte
	copy(h[:], sum[:16])
	if l, ok := d.first[h]; ok {
		return l, true
	}
	d.first[h] = line
	return line, false
}
