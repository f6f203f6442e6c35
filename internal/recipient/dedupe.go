package recipient

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
)

// dedupe remembers the addresses already imported, by a 96-bit hash of
// addr.Address.Key, and the line where each first appeared.
//
// Keeping hashes instead of the keys bounds memory whatever the address
// lengths, and no address string is kept alive. The hashes sit in an
// open-addressing table of 16-byte slots (hash and line), split into
// shards that grow one at a time by half their size: 1,000,000 addresses
// take 28.8 bytes each (27 MiB, BenchmarkDedupe), where a Go map from a
// 128-bit hash to the line took 56 (53 MiB), and growing never holds two
// copies of the whole table.
//
// A hash collision would report a new address as a duplicate and drop a
// recipient, so the hash is SHA-256 truncated to 96 bits: a cryptographic
// hash, so no input can be crafted to collide, and by the birthday bound the
// probability of any collision among n distinct addresses is at most
// n²/2⁹⁷: about 6·10⁻¹⁸ for a million addresses and 6·10⁻¹² for a
// billion, far below the odds of a memory error in the machine doing it.
type dedupe struct {
	shards [dedupeShards]dedupeShard
	// far holds the lines that do not fit a slot's 32 bits (a file of
	// more than four billion lines), by hash.
	far map[[12]byte]int
}

const (
	dedupeShards = 64 // by the hash's top 6 bits
	farLine      = math.MaxUint32
)

// dedupeSlot is one address: line 0 marks an empty slot (lines count
// from 1, and line 1 is the header).
type dedupeSlot struct {
	lo   uint64 // hash bytes 0..7
	hi   uint32 // hash bytes 8..11
	line uint32 // farLine: the line is in dedupe.far
}

type dedupeShard struct {
	slots []dedupeSlot
	used  int
}

func newDedupe() *dedupe { return &dedupe{} }

// add records key at line, or reports the line where key was first seen.
func (d *dedupe) add(key string, line int) (first int, dup bool) {
	sum := sha256.Sum256([]byte(key))
	lo := binary.LittleEndian.Uint64(sum[0:8])
	hi := binary.LittleEndian.Uint32(sum[8:12])
	s := &d.shards[lo>>58]
	if 4*(s.used+1) > 3*len(s.slots) { // keep the load at most 3/4
		s.grow()
	}
	i := s.home(lo)
	for {
		sl := &s.slots[i]
		if sl.line == 0 {
			break
		}
		if sl.lo == lo && sl.hi == hi {
			if sl.line == farLine {
				return d.far[[12]byte(sum[:12])], true
			}
			return int(sl.line), true
		}
		if i++; i == len(s.slots) {
			i = 0
		}
	}
	stored := uint32(farLine)
	if line > 0 && uint64(line) < farLine {
		stored = uint32(line)
	} else {
		if d.far == nil {
			d.far = make(map[[12]byte]int)
		}
		d.far[[12]byte(sum[:12])] = line
	}
	s.slots[i] = dedupeSlot{lo: lo, hi: hi, line: stored}
	s.used++
	return line, false
}

// home is the slot where a hash's probe starts: the hash's low 32 bits
// scaled to the table's size, which need not be a power of two.
func (s *dedupeShard) home(lo uint64) int {
	return int(uint64(uint32(lo)) * uint64(len(s.slots)) >> 32)
}

// grow makes the shard half as large again and places its hashes anew.
func (s *dedupeShard) grow() {
	old := s.slots
	n := len(old) + len(old)/2
	if n < 64 {
		n = 64
	}
	s.slots = make([]dedupeSlot, n)
	for _, sl := range old {
		if sl.line == 0 {
			continue
		}
		i := s.home(sl.lo)
		for s.slots[i].line != 0 {
			if i++; i == n {
				i = 0
			}
		}
		s.slots[i] = sl
	}
}
