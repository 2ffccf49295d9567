// Package filter parses SCIM filters and PATCH paths (RFC 7644 sections
// 3.4.2.2 and 3.5.2). It has no dependencies, so that it is fuzzed quickly.
package filter

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits on what a client may send as a filter or a PATCH path.
const (
	maxLen   = 4096
	maxDepth = 32
)

// Expr is a parsed SCIM filter (RFC 7644 section 3.4.2.2).
type Expr interface{ String() string }

// Compare is "attr op value", or "attr pr" (Value nil).
type Compare struct {
	Attr  string // lower-cased, without a schema URN, sub-attribute after a dot
	Op    string // eq ne co sw ew gt ge lt le pr, lower-cased
	Value any    // string, bool, float64 or nil
}

// Logical is "left and right" or "left or right".
type Logical struct {
	Op          string // and, or
	Left, Right Expr
}

// Not is "not (x)".
type Not struct{ X Expr }

// ValuePath is "attr[filter]": the filter applies to the sub-attributes of
// a multi-valued attribute.
type ValuePath struct {
	Attr   string
	Filter Expr
}

func (c Compare) String() string {
	if c.Op == "pr" {
		return c.Attr + " pr"
	}
	var v string
	switch x := c.Value.(type) {
	case string:
		v = strconv.Quote(x)
	case nil:
		v = "null"
	case bool:
		v = strconv.FormatBool(x)
	case float64:
		v = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return c.Attr + " " + c.Op + " " + v
}

func (l Logical) String() string {
	return "(" + l.Left.String() + " " + l.Op + " " + l.Right.String() + ")"
}
func (n Not) String() string       { return "not (" + n.X.String() + ")" }
func (v ValuePath) String() string { return v.Attr + "[" + v.Filter.String() + "]" }

// Error is a filter or path that cannot be parsed, or compared.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error.
func Errorf(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

var compareOps = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "ge": true, "lt": true, "le": true}

// token kinds
const (
	tEOF = iota
	tWord
	tString
	tLParen
	tRParen
	tLBracket
	tRBracket
)

type token struct {
	kind int
	text string
	pos  int
}

type lexer struct {
	src  string
	pos  int
	toks []token
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '.' || c == '_' || c == '-' || c == '$' || c == '+'
}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == '[':
			toks = append(toks, token{tLBracket, "[", i})
			i++
		case c == ']':
			toks = append(toks, token{tRBracket, "]", i})
			i++
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, Errorf("unterminated string at position %d", i)
			}
			s, err := strconv.Unquote(src[i : j+1])
			if err != nil {
				return nil, Errorf("invalid string at position %d", i)
			}
			toks = append(toks, token{tString, s, i})
			i = j + 1
		case isWordChar(c):
			j := i
			for j < len(src) && isWordChar(src[j]) {
				j++
			}
			toks = append(toks, token{tWord, src[i:j], i})
			i = j
		default:
			return nil, Errorf("unexpected character %q at position %d", c, i)
		}
	}
	return append(toks, token{tEOF, "", len(src)}), nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// Parse parses a SCIM filter.
func Parse(src string) (Expr, error) {
	if len(src) > maxLen {
		return nil, Errorf("the filter is longer than %d bytes", maxLen)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, Errorf("unexpected %q at position %d", t.text, t.pos)
	}
	return e, nil
}

func (p *parser) parseOr() (Expr, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tWord && strings.EqualFold(p.peek().text, "or") {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = Logical{Op: "or", Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) parseAnd() (Expr, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tWord && strings.EqualFold(p.peek().text, "and") {
		p.next()
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		left = Logical{Op: "and", Left: left, Right: right}
	}
	return left, nil
}

func (p *parser) parseUnary() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, Errorf("the filter nests deeper than %d levels", maxDepth)
	}
	t := p.next()
	switch {
	case t.kind == tLParen:
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if r := p.next(); r.kind != tRParen {
			return nil, Errorf("expected \")\" at position %d", r.pos)
		}
		return e, nil
	case t.kind == tWord && strings.EqualFold(t.text, "not") && p.peek().kind == tLParen:
		p.next()
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if r := p.next(); r.kind != tRParen {
			return nil, Errorf("expected \")\" at position %d", r.pos)
		}
		return Not{X: e}, nil
	case t.kind == tWord:
		attr, err := attrName(t)
		if err != nil {
			return nil, err
		}
		if p.peek().kind == tLBracket {
			p.next()
			inner, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			if r := p.next(); r.kind != tRBracket {
				return nil, Errorf("expected \"]\" at position %d", r.pos)
			}
			return ValuePath{Attr: attr, Filter: inner}, nil
		}
		return p.parseComparison(attr)
	default:
		return nil, Errorf("expected an attribute at position %d", t.pos)
	}
}

func (p *parser) parseComparison(attr string) (Expr, error) {
	opTok := p.next()
	op := strings.ToLower(opTok.text)
	if opTok.kind != tWord || (op != "pr" && !compareOps[op]) {
		return nil, Errorf("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after %s at position %d", attr, opTok.pos)
	}
	if op == "pr" {
		return Compare{Attr: attr, Op: op}, nil
	}
	v := p.next()
	switch {
	case v.kind == tString:
		return Compare{Attr: attr, Op: op, Value: v.text}, nil
	case v.kind == tWord:
		switch strings.ToLower(v.text) {
		case "true":
			return Compare{Attr: attr, Op: op, Value: true}, nil
		case "false":
			return Compare{Attr: attr, Op: op, Value: false}, nil
		case "null":
			return Compare{Attr: attr, Op: op, Value: nil}, nil
		}
		if f, err := strconv.ParseFloat(v.text, 64); err == nil {
			return Compare{Attr: attr, Op: op, Value: f}, nil
		}
	}
	return nil, Errorf("expected a value (a string in double quotes, true, false, null or a number) at position %d", v.pos)
}

// Schema URNs whose attributes filters and paths may name in full.
const (
	SchemaUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// attrName normalises an attribute path: lower-cased, with the core
// schema's URN removed (an extension's URN stays, so that its attributes
// are told apart).
func attrName(t token) (string, error) {
	name := t.text
	lower := strings.ToLower(name)
	for _, urn := range []string{SchemaUser, SchemaGroup} {
		if rest, ok := strings.CutPrefix(lower, strings.ToLower(urn)+":"); ok {
			lower = rest
		}
	}
	if strings.HasPrefix(lower, "urn:") {
		return lower, nil
	}
	if lower == "" || !(lower[0] >= 'a' && lower[0] <= 'z') || strings.Count(lower, ".") > 1 || strings.HasSuffix(lower, ".") ||
		strings.ContainsAny(lower, ":$+") {
		return "", Errorf("%q at position %d is not an attribute name", name, t.pos)
	}
	return lower, nil
}
