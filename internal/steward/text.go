package steward

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TextRule says which characters a text value may hold. Every surface
// (the Admin API, the Backoffice API, SCIM, the web pages) applies the same
// rules at its edge, before a value reaches a handler or the database:
// PostgreSQL refuses NUL and invalid UTF-8 (which would be a 500), and
// control and bidirectional characters let a name spoof another in the
// audit log and the Admin Panel.
type TextRule int

const (
	// OneLine is for names, identifiers, addresses, path and query values:
	// UTF-8 without control characters (C0, DEL, C1), line or paragraph
	// separators (U+2028, U+2029) or bidirectional controls (Unicode's
	// Bidi_Control: U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
	// U+2069).
	OneLine TextRule = iota
	// Lines is OneLine that also allows tabs, new lines and carriage
	// returns, and the line and paragraph separators: for descriptions and
	// lists of addresses.
	Lines
	// Secret is any UTF-8: passwords are only hashed, never stored or
	// shown, and may hold whatever their owner typed.
	Secret
)

// FieldRule returns the rule of a field by its name (a JSON key, a form
// field or a query parameter, compared without case), wherever it appears.
func FieldRule(name string) TextRule {
	switch strings.ToLower(name) {
	case "description",
		// An invitation's addresses, split on white space and new lines.
		"email", "emails",
		// A SAML identity provider's metadata (XML, on many lines), and
		// the base64 response it posts, which some wrap into lines.
		"idp_metadata_xml", "samlresponse":
		return Lines
	case "password", "password_confirm",
		// The Admin Panel's current password, asked for to change it.
		"current":
		return Secret
	}
	return OneLine
}

// TextProblem returns "" when s keeps rule, and otherwise what is wrong
// with it, naming the first offending character (or byte) and its byte
// offset, e.g. "must not contain control characters (U+0000 at byte 3)".
func TextProblem(s string, rule TextRule) string {
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return fmt.Sprintf("must be valid UTF-8 (0x%02X at byte %d)", s[i], i)
		}
		if what := refused(r, rule); what != "" {
			return fmt.Sprintf("must not contain %s (%U at byte %d)", what, r, i)
		}
	}
	return ""
}

// refused names the class of r when rule refuses it, and is "" otherwise.
func refused(r rune, rule TextRule) string {
	switch {
	case rule == Secret:
		return ""
	case rule == Lines && (r == '\t' || r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029'):
		return ""
	case ' ' <= r && r < 0x7f:
		return "" // printable ASCII, most of any text
	case unicode.IsControl(r):
		return "control characters"
	case r == '\u2028' || r == '\u2029':
		return "line breaks"
	case unicode.Is(unicode.Bidi_Control, r):
		return "bidirectional text controls"
	}
	return ""
}

// textError is the KindInvalid error of a value at loc that breaks rule,
// or nil. The error holds a copy of loc, which callers reuse.
func textError(loc []string, s string, rule TextRule) *Error {
	if p := TextProblem(s, rule); p != "" {
		return Invalid(slices.Clone(loc), "%s %s", locName(loc), p)
	}
	return nil
}

// keyError is the KindInvalid error of a name (a JSON key, a parameter's
// name) under loc that is not one line of text, or nil. The error holds a
// copy of loc.
func keyError(loc []string, what, name string) *Error {
	if p := TextProblem(name, OneLine); p != "" {
		return Invalid(slices.Clone(loc), "%s: %s %s", locName(loc), what, p)
	}
	return nil
}

// locName names the input at loc in a message: its location after "body",
// "query" or "path" ("name", "members.0.email"), or that word alone.
func locName(loc []string) string {
	if len(loc) > 1 {
		return strings.Join(loc[1:], ".")
	}
	return strings.Join(loc, ".")
}

// CheckJSONText checks a JSON document located at loc (["body"]): it must
// be UTF-8, and every string in it, object keys included, must keep the
// rule of the field that holds it (FieldRule of the nearest key; OneLine
// for keys). It returns a KindInvalid error naming the first string that
// does not (in the order of sorted keys), and nil for a document that is
// not JSON, whose decoding reports that.
func CheckJSONText(loc []string, doc []byte) error {
	if !utf8.Valid(doc) {
		return Invalid(loc, "%s %s", locName(loc), TextProblem(string(doc), Secret))
	}
	if plainJSON(doc) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	if e := jsonText(slices.Clip(loc), OneLine, v); e != nil {
		return e
	}
	return nil
}

// plainJSON reports whether doc, which is UTF-8, holds no escape and no
// character that OneLine refuses but JSON's white space (which a string
// cannot hold unescaped): then none of its strings breaks a rule, and it
// need not be decoded to tell. Most bodies are plain.
func plainJSON(doc []byte) bool {
	for i := 0; i < len(doc); {
		r, size := rune(doc[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(doc[i:])
		}
		if r == '\\' || (r != '\t' && r != '\n' && r != '\r' && refused(r, OneLine) != "") {
			return false
		}
		i += size
	}
	return true
}

// jsonText returns the error of the first string of v, at loc, that breaks
// its rule. loc is grown and shrunk in place, and copied only into an
// error.
func jsonText(loc []string, rule TextRule, v any) *Error {
	switch v := v.(type) {
	case string:
		return textError(loc, v, rule)
	case []any:
		for i, item := range v {
			if e := jsonText(append(loc, strconv.Itoa(i)), rule, item); e != nil {
				return e
			}
		}
	case map[string]any:
		// The first of the keys in sorted order, without sorting them.
		var first *Error
		var firstKey string
		for k, item := range v {
			if first != nil && k > firstKey {
				continue
			}
			e := keyError(loc, "a key", k)
			if e == nil {
				e = jsonText(append(loc, k), FieldRule(k), item)
			}
			if e != nil {
				first, firstKey = e, k
			}
		}
		return first
	}
	return nil
}

// CheckRequestText checks a request's unescaped path, its query values
// and its form values (nil when it has none), each value by the rule of
// its name, and every path segment and parameter name as OneLine. It
// returns a KindInvalid error naming the first that breaks its rule: a
// path segment by the wildcard at its place in the pattern it was routed
// by, which pattern returns (with or without its method) and is asked for
// only then.
func CheckRequestText(path string, pattern func() string, query, form map[string][]string) error {
	if e := pathText(path, pattern); e != nil {
		return e
	}
	if err := CheckValuesText("query", query); err != nil {
		return err
	}
	return CheckValuesText("body", form)
}

// pathText is the error of the first segment of path that is not one
// line of text, named by the wildcard at its place in pattern, or of the
// whole path when no wildcard is there.
func pathText(path string, pattern func() string) *Error {
	if TextProblem(path, OneLine) == "" {
		return nil
	}
	p := pattern()
	if _, rest, ok := strings.Cut(p, " "); ok {
		p = rest
	}
	wildcards := strings.Split(p, "/")
	for i, seg := range strings.Split(path, "/") {
		if i < len(wildcards) && strings.HasPrefix(wildcards[i], "{") {
			if e := textError([]string{"path", strings.Trim(wildcards[i], "{.}")}, seg, OneLine); e != nil {
				return e
			}
		}
	}
	return textError([]string{"path"}, path, OneLine)
}

// CheckValuesText checks the values of a query or a form, located at at
// ("query" or "body"), each by the rule of its name, and their names as
// OneLine. It returns a KindInvalid error naming the first that breaks its
// rule, in the order of sorted names.
func CheckValuesText(at string, values map[string][]string) error {
	var first *Error
	var firstName string
	for name, vs := range values {
		if first != nil && name > firstName {
			continue
		}
		e := keyError([]string{at}, "a parameter's name", name)
		for i := 0; e == nil && i < len(vs); i++ {
			e = textError([]string{at, name}, vs[i], FieldRule(name))
		}
		if e != nil {
			first, firstName = e, name
		}
	}
	if first != nil {
		return first
	}
	return nil
}

// Truncate cuts s to at most n bytes without splitting a character.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
