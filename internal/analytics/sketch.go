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
	spare []uint64 // mergeSet's output buffer, swapped with set
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
		regs := s.regs[:registers]
		for i, r := range b[1 : 1+registers] {
			regs[i] = max(regs[i], r)
		}
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

// mergeSet merges an encoded sorted set into s's set in one pass, into
// the spare buffer, which then becomes the set.
func (s *Sketch) mergeSet(b []byte) {
	n := len(b) / 8
	if n == 0 {
		return
	}
	out := slices.Grow(s.spare[:0], len(s.set)+n)
	i, j := 0, 0
	for i < len(s.set) || j < n {
		switch {
		case j == n:
			out = append(out, s.set[i])
			i++
		case i == len(s.set):
			out = append(out, binary.BigEndian.Uint64(b[8*j:]))
			j++
		default:
			a, c := s.set[i], binary.BigEndian.Uint64(b[8*j:])
			switch {
			case a < c:
				out = append(out, a)
				i++
			case c < a:
				out = append(out, c)
				j++
			default:
				out = append(out, a)
				i++
				j++
			}
		}
	}
	s.set, s.spare = out, s.set
	if len(s.set) > exactMax {
		s.toHLL()
	}
}
