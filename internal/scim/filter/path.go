package filter

import "strings"

// Path is a parsed PATCH path (RFC 7644 section 3.5.2): an attribute,
// optionally narrowed by a value filter and followed by a sub-attribute,
// such as members[value eq "..."] or emails[type eq "work"].value.
type Path struct {
	Attr   string // lower-cased, without the core schema's URN
	Filter Expr   // nil without a value filter
	Sub    string // lower-cased sub-attribute after a value filter
}

func (p Path) String() string {
	s := p.Attr
	if p.Filter != nil {
		s += "[" + p.Filter.String() + "]"
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// ParsePath parses a PATCH path.
func ParsePath(src string) (Path, error) {
	if len(src) > maxLen {
		return Path{}, Errorf("the path is longer than %d bytes", maxLen)
	}
	toks, err := lex(src)
	if err != nil {
		return Path{}, err
	}
	p := &parser{toks: toks}
	t := p.next()
	if t.kind != tWord {
		return Path{}, Errorf("the path must start with an attribute name")
	}
	attr, err := attrName(t)
	if err != nil {
		return Path{}, err
	}
	out := Path{Attr: attr}
	if p.peek().kind == tLBracket {
		p.next()
		if out.Filter, err = p.parseOr(); err != nil {
			return Path{}, err
		}
		if r := p.next(); r.kind != tRBracket {
			return Path{}, Errorf("expected \"]\" at position %d", r.pos)
		}
		if p.peek().kind == tWord {
			sub := p.next()
			name, ok := strings.CutPrefix(sub.text, ".")
			if !ok || name == "" || strings.ContainsAny(name, ".:") {
				return Path{}, Errorf("expected \".subAttribute\" at position %d", sub.pos)
			}
			out.Sub = strings.ToLower(name)
		}
	}
	if t := p.peek(); t.kind != tEOF {
		return Path{}, Errorf("unexpected %q at position %d", t.text, t.pos)
	}
	return out, nil
}
