package analytics

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
)

// A Sketch counts distinct members (users, agents, conversations) so that
// the counts of two buckets can be merged, which sums cannot do. It is
// exact up to exactMax members: a sorted set of 64-bit hashes. Beyond, it
// becomes a HyperLogLog of 2^precision registers, whose standard error is
// 1.04/sqrt(1024), about 3.3%. Both forms encode to at most 1 KiB + 1.
type Sketch struct {
	set   []uint64 // sorted, distinct; used while regs is nil
	spare []uint64 // mergeSet's buffer of missing members
	regs  []uint8
}

const (
	precision = 10
	registers = 1 << precision
	exactMax  = registers / 8
	kindSet   = 0
	kindHLL   = 1
)

// hashMember maps a member id to 64 well-mixed bits, the same in every
// process: FNV-1a, then the splitmix64 finalizer.
func hashMember(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Add counts id.
func (s *Sketch) Add(id string) { s.addHash(hashMember(id)) }

func (s *Sketch) addHash(h uint64) {
	if s.regs != nil {
		s.addRegister(h)
		return
	}
	i, found := slices.BinarySearch(s.set, h)
	if found {
		return
	}
	s.set = slices.Insert(s.set, i, h)
	if len(s.set) > exactMax {
		s.toHLL()
	}
}

func (s *Sketch) addRegister(h uint64) {
	idx := h >> (64 - precision)
	rank := uint8(bits.LeadingZeros64(h<<precision|1<<(precision-1)) + 1)
	if rank > s.regs[idx] {
		s.regs[idx] = rank
	}
}

func (s *Sketch) toHLL() {
	s.regs = make([]uint8, registers)
	for _, h := range s.set {
		s.addRegister(h)
	}
	s.set, s.spare = nil, nil
}

// inversePowers[r] is 2^-r, for every rank a register can hold.
var inversePowers = func() (p [65]float64) {
	for r := range p {
		p[r] = math.Ldexp(1, -r)
	}
	return p
}()

// Count returns the number of distinct members: exact for a set, an
// estimate (with the small-range correction) for registers.
func (s *Sketch) Count() int64 {
	if s.regs == nil {
		return int64(len(s.set))
	}
	sum, zeros := 0.0, 0
	for _, r := range s.regs {
		sum += inversePowers[r]
		if r == 0 {
			zeros++
		}
	}
	m := float64(registers)
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros))
	}
	return int64(math.Round(est))
}

// Encode returns the sketch's stored form.
func (s *Sketch) Encode() []byte {
	if s.regs != nil {
		return append([]byte{kindHLL}, s.regs...)
	}
	b := make([]byte, 1, 1+8*len(s.set))
	b[0] = kindSet
	for _, h := range s.set {
		b = binary.BigEndian.AppendUint64(b, h)
	}
	return b
}

// mergeEncoded merges a stored sketch into s without keeping a copy.
func (s *Sketch) mergeEncoded(b []byte) {
	switch {
	case len(b) == 1+registers && b[0] == kindHLL:
		if s.regs == nil {
			s.toHLL()
		}
		maxRegisters(s.regs[:registers], b[1:1+registers])
	case len(b) > 0 && b[0] == kindSet && (len(b)-1)%8 == 0:
		if s.regs != nil {
			for i := 1; i < len(b); i += 8 {
				s.addRegister(binary.BigEndian.Uint64(b[i:]))
			}
			return
		}
		s.mergeSet(b[1:])
	}
}

// maxRegisters keeps in dst the larger of each pair of registers, eight at
// a time: a rank is at most 64-precision+1, below 128, so the high bit of
// each byte of (x|high) - (y&^high) says whether x's byte is at least y's,
// and no byte borrows from the next.
func maxRegisters(dst, src []uint8) {
	const high = 0x8080808080808080
	for i := 0; i+8 <= len(dst) && i+8 <= len(src); i += 8 {
		x, y := binary.LittleEndian.Uint64(dst[i:]), binary.LittleEndian.Uint64(src[i:])
		keep := ((x | high) - (y &^ high)) & high >> 7 * 0xff
		binary.LittleEndian.PutUint64(dst[i:], x&keep|y&^keep)
	}
}

// mergeSet merges an encoded sorted set into s's set. Many sets a report
// merges add few members or none (a user's agents are the same few every
// day), so it first looks for the missing members, writing nothing: by
// binary search when the set is much smaller than s's, else walking both.
// Then it merges only those, in place from the end, or adds them to
// registers when the set would grow past exactMax.
func (s *Sketch) mergeSet(b []byte) {
	if len(s.set) == 0 {
		s.set = slices.Grow(s.set, len(b)/8)
		for j := 0; j+8 <= len(b); j += 8 {
			s.set = append(s.set, binary.BigEndian.Uint64(b[j:]))
		}
		if len(s.set) > exactMax {
			s.toHLL()
		}
		return
	}
	missing := s.spare[:0]
	rest := s.set
	search := len(b)/8*8 < len(s.set)
	for j := 0; j+8 <= len(b); j += 8 {
		h := binary.BigEndian.Uint64(b[j:])
		i := 0
		if search {
			i, _ = slices.BinarySearch(rest, h)
		} else {
			for i < len(rest) && rest[i] < h {
				i++
			}
		}
		rest = rest[i:]
		if len(rest) == 0 || rest[0] != h {
			missing = append(missing, h)
		}
	}
	s.spare = missing
	switch {
	case len(missing) == 0:
		return
	case len(s.set)+len(missing) > exactMax:
		s.toHLL()
		for _, h := range missing {
			s.addRegister(h)
		}
		return
	}
	i := len(s.set) - 1
	s.set = append(s.set, missing...)
	for k, j := len(s.set)-1, len(missing)-1; j >= 0; k-- {
		if i >= 0 && s.set[i] > missing[j] {
			s.set[k] = s.set[i]
			i--
		} else {
			s.set[k] = missing[j]
			j--
		}
	}
}
