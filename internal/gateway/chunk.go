package gateway

import (
	"bytes"
	"encoding/json"
)

// readChunk decodes data, the JSON of one stream event, into c exactly as
// json.Unmarshal(data, c) would (c is zeroed first, its Choices' array
// reused), and reports whether json.Unmarshal would have succeeded. A
// stream relays thousands of chunks a second, and reflection made
// json.Unmarshal most of a stream's cost: readChunk reads the fields the
// gateway counts in one validating pass, without reflection, and leaves
// any input it cannot decode as json.Unmarshal would (a field of another
// type, a repeated or escaped field name, a name in other case, nesting
// deeper than its stack) to json.Unmarshal itself. FuzzReadChunk checks
// the two agree.
func readChunk(data []byte, c *wireAnswer) bool {
	*c = wireAnswer{Choices: c.Choices[:0]}
	s := chunkScanner{b: data}
	ok := s.answer(c)
	if !s.unsure {
		return ok
	}
	*c = wireAnswer{}
	return json.Unmarshal(data, c) == nil
}

// chunkScanner reads JSON from b at i. Its methods report whether what
// they read is valid JSON of the expected shape; when it is valid JSON
// that they do not decode as json.Unmarshal would, they set unsure.
type chunkScanner struct {
	b      []byte
	i      int
	depth  int
	unsure bool
}

// maxChunkDepth bounds the nesting readChunk follows; deeper input goes to
// json.Unmarshal, which has its own bound.
const maxChunkDepth = 64

func (s *chunkScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *chunkScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// doubt marks the input as one json.Unmarshal must decode, and stops the
// scan.
func (s *chunkScanner) doubt() bool {
	s.unsure = true
	return false
}

// answer reads a whole chunk: an object (or null) and nothing after it.
func (s *chunkScanner) answer(c *wireAnswer) bool {
	s.space()
	var seen [2]bool
	switch s.peek() {
	case '{':
		if !s.object(func(key []byte) bool {
			switch {
			case !plainName(key):
				return s.doubt()
			case string(key) == "usage":
				return once(&seen[0], s) && s.usage(c)
			case string(key) == "choices":
				return once(&seen[1], s) && s.choices(c)
			}
			return s.skip()
		}) {
			return false
		}
	case 'n':
		if !s.literal("null") {
			return false
		}
	default:
		return s.doubt()
	}
	s.space()
	return s.i == len(s.b)
}

// once marks a field seen, doubting a field named twice: json.Unmarshal
// merges repeated objects into one.
func once(seen *bool, s *chunkScanner) bool {
	if *seen {
		return s.doubt()
	}
	*seen = true
	return true
}

// plainName reports whether a field name can only match a field spelled
// exactly like it: no escape, no upper case, nothing but ASCII
// (json.Unmarshal matches names without regard to case, Unicode's
// included).
func plainName(key []byte) bool {
	for _, b := range key {
		if b == '\\' || b >= 0x80 || (b >= 'A' && b <= 'Z') {
			return false
		}
	}
	return true
}

func (s *chunkScanner) usage(c *wireAnswer) bool {
	start := s.i
	if !s.skip() {
		return false
	}
	raw := s.b[start:s.i]
	if string(raw) == "null" {
		return true
	}
	u := new(wireUsage)
	if json.Unmarshal(raw, u) != nil {
		return s.doubt()
	}
	c.Usage = u
	return true
}

func (s *chunkScanner) choices(c *wireAnswer) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '[':
	default:
		return s.doubt()
	}
	return s.array(func() bool {
		c.Choices = append(c.Choices, wireChoice{})
		switch s.peek() {
		case 'n':
			return s.literal("null")
		case '{':
			return s.choice(&c.Choices[len(c.Choices)-1])
		}
		return s.doubt()
	})
}

func (s *chunkScanner) choice(ch *wireChoice) bool {
	var seen [5]bool
	return s.object(func(key []byte) bool {
		switch {
		case !plainName(key):
			return s.doubt()
		case string(key) == "index":
			return once(&seen[0], s) && s.index(&ch.Index)
		case string(key) == "finish_reason":
			return once(&seen[1], s) && s.finishReason(ch)
		case string(key) == "message":
			return once(&seen[2], s) && s.output(&ch.Message)
		case string(key) == "delta":
			return once(&seen[3], s) && s.output(&ch.Delta)
		case string(key) == "text":
			return once(&seen[4], s) && s.raw(&ch.Text)
		}
		return s.skip()
	})
}

// index reads an integer; any other number is left to json.Unmarshal.
func (s *chunkScanner) index(n *int64) bool {
	switch c := s.peek(); {
	case c == 'n':
		return s.literal("null")
	case c != '-' && (c < '0' || c > '9'):
		return s.doubt()
	}
	start := s.i
	if !s.number() {
		return false
	}
	digits := s.b[start:s.i]
	negative := digits[0] == '-'
	if negative {
		digits = digits[1:]
	}
	if len(digits) > 18 || bytes.ContainsAny(digits, ".eE") {
		return s.doubt()
	}
	var v int64
	for _, d := range digits {
		v = v*10 + int64(d-'0')
	}
	if negative {
		v = -v
	}
	*n = v
	return true
}

func (s *chunkScanner) finishReason(ch *wireChoice) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '"':
	default:
		return s.doubt()
	}
	start := s.i
	text, escaped, ok := s.str()
	switch {
	case !ok:
		return false
	case escaped:
		var v string
		if json.Unmarshal(s.b[start:s.i], &v) != nil {
			return s.doubt()
		}
		ch.FinishReason = &v
	default:
		v := string(text)
		ch.FinishReason = &v
	}
	return true
}

func (s *chunkScanner) output(o **wireOutput) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '{':
	default:
		return s.doubt()
	}
	out := new(wireOutput)
	*o = out
	var seen [2]bool
	return s.object(func(key []byte) bool {
		switch {
		case !plainName(key):
			return s.doubt()
		case string(key) == "content":
			return once(&seen[0], s) && s.raw(&out.Content)
		case string(key) == "tool_calls":
			return once(&seen[1], s) && s.raw(&out.ToolCalls)
		}
		return s.skip()
	})
}

// raw keeps the next value as it is, as a json.RawMessage field does.
func (s *chunkScanner) raw(m *json.RawMessage) bool {
	start := s.i
	if !s.skip() {
		return false
	}
	*m = s.b[start:s.i]
	return true
}

// object reads an object, calling field with each name once the scanner
// is at its value; field reads the value.
func (s *chunkScanner) object(field func(key []byte) bool) bool {
	if s.depth++; s.depth > maxChunkDepth {
		return s.doubt()
	}
	s.i++
	s.space()
	if s.peek() == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.space()
		if s.peek() != '"' {
			return false
		}
		key, _, ok := s.str()
		if !ok {
			return false
		}
		s.space()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.space()
		if !field(key) {
			return false
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// array reads an array, calling elem at each element's value.
func (s *chunkScanner) array(elem func() bool) bool {
	if s.depth++; s.depth > maxChunkDepth {
		return s.doubt()
	}
	s.i++
	s.space()
	if s.peek() == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.space()
		if !elem() {
			return false
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// skip reads any value.
func (s *chunkScanner) skip() bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) bool { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

func (s *chunkScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// str reads a string, returning its bytes between the quotes and whether
// they hold an escape.
func (s *chunkScanner) str() (text []byte, escaped, ok bool) {
	s.i++
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], escaped, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			if !s.escape() {
				return nil, false, false
			}
		default:
			s.i++
		}
	}
	return nil, false, false
}

// escape reads one escape sequence, its backslash included.
func (s *chunkScanner) escape() bool {
	s.i++
	switch s.peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return true
	case 'u':
		if s.i+5 > len(s.b) {
			return false
		}
		for _, h := range s.b[s.i+1 : s.i+5] {
			if !(h >= '0' && h <= '9' || h|0x20 >= 'a' && h|0x20 <= 'f') {
				return false
			}
		}
		s.i += 5
		return true
	}
	return false
}

// number reads a number in JSON's grammar.
func (s *chunkScanner) number() bool {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (s *chunkScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
