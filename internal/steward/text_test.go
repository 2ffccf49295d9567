package steward

import (
	"fmt"
	"strings"
	"testing"
)

func TestTextProblem(t *testing.T) {
	for _, tc := range []struct {
		s    string
		rule TextRule
		want string
	}{
		{"Research & Développement 研究 👩🏽‍💻", OneLine, ""},
		{"\uFFFD is a character like any other", OneLine, ""},
		{"zero\u200dwidth joiners\u200c stay: scripts and emoji need them", OneLine, ""},
		{"abc\x00", OneLine, "must not contain control characters (U+0000 at byte 3)"},
		{"a\tb", OneLine, "must not contain control characters (U+0009 at byte 1)"},
		{"a\nb", OneLine, "must not contain control characters (U+000A at byte 1)"},
		{"del\x7f", OneLine, "must not contain control characters (U+007F at byte 3)"},
		{"next\u0085line", OneLine, "must not contain control characters (U+0085 at byte 4)"},
		{"é\u009b", OneLine, "must not contain control characters (U+009B at byte 2)"},
		{"a\u2028b", OneLine, "must not contain line breaks (U+2028 at byte 1)"},
		{"admin\u202Egpj.exe", OneLine, "must not contain bidirectional text controls (U+202E at byte 5)"},
		{"\u202Aa", OneLine, "must not contain bidirectional text controls (U+202A at byte 0)"},
		{"a\u2066b", OneLine, "must not contain bidirectional text controls (U+2066 at byte 1)"},
		{"a\u2069", OneLine, "must not contain bidirectional text controls (U+2069 at byte 1)"},
		{"a\u200Eb", OneLine, "must not contain bidirectional text controls (U+200E at byte 1)"},
		{"a\u200F", OneLine, "must not contain bidirectional text controls (U+200F at byte 1)"},
		{"\u061C", OneLine, "must not contain bidirectional text controls (U+061C at byte 0)"},
		{"ab\xff", OneLine, "must be valid UTF-8 (0xFF at byte 2)"},
		{"\xed\xa0\x80", OneLine, "must be valid UTF-8 (0xED at byte 0)"},
		{"line one\r\n\tline two\u2029", Lines, ""},
		{"line\x00", Lines, "must not contain control characters (U+0000 at byte 4)"},
		{"line\v", Lines, "must not contain control characters (U+000B at byte 4)"},
		{"line\u202E", Lines, "must not contain bidirectional text controls (U+202E at byte 4)"},
		{"p\x00ss\tw\u202Erd\x1b", Secret, ""},
		{"p\xffss", Secret, "must be valid UTF-8 (0xFF at byte 1)"},
	} {
		if got := TextProblem(tc.s, tc.rule); got != tc.want {
			t.Errorf("TextProblem(%q, %d) = %q, want %q", tc.s, tc.rule, got, tc.want)
		}
	}
}

func TestFieldRule(t *testing.T) {
	for name, want := range map[string]TextRule{
		"name": OneLine, "first_name": OneLine, "token": OneLine, "userName": OneLine,
		"description": Lines, "email": Lines, "emails": Lines, "idp_metadata_xml": Lines, "SAMLResponse": Lines,
		"password": Secret, "Password": Secret, "password_confirm": Secret, "current": Secret,
	} {
		if got := FieldRule(name); got != want {
			t.Errorf("FieldRule(%q) = %d, want %d", name, got, want)
		}
	}
}

// invalidAt checks that err is one KindInvalid error at loc whose message
// is msg.
func invalidAt(t *testing.T, err error, loc, msg string) {
	t.Helper()
	e, ok := err.(*Error)
	if msg == "" {
		if err != nil {
			t.Errorf("got %v, want no error", err)
		}
		return
	}
	if !ok || e.Kind != KindInvalid || strings.Join(e.Field, ".") != loc || e.Message != msg || len(e.Also) != 0 {
		t.Errorf("got %#v, want one invalid error at %s: %q", err, loc, msg)
	}
}

func TestCheckJSONText(t *testing.T) {
	for _, tc := range []struct {
		doc, loc, msg string
	}{
		{`{"name":"Research","description":"two\nlines","members":[{"email":"a@example.com"}],"password":"\u0000"}`, "", ""},
		{`{"name":"a\u0000b"}`, "body.name", "name must not contain control characters (U+0000 at byte 1)"},
		{`{"name":"ok","description":"\u202Egnp.exe"}`, "body.description", "description must not contain bidirectional text controls (U+202E at byte 0)"},
		{`{"users":[{"email":"a@example.com"},{"first_name":"\u001b[31m"}]}`, "body.users.1.first_name", "users.1.first_name must not contain control characters (U+001B at byte 0)"},
		{`{"tags":["fine","bad\u2066"]}`, "body.tags.1", "tags.1 must not contain bidirectional text controls (U+2066 at byte 3)"},
		{`{"limits":{"model\u0000":1}}`, "body.limits", "limits: a key must not contain control characters (U+0000 at byte 5)"},
		{`{"\u0000":1}`, "body", "body: a key must not contain control characters (U+0000 at byte 0)"},
		{"{\"name\":\"caf\xe9\"}", "body", "body must be valid UTF-8 (0xE9 at byte 12)"},
		{`"\u0085"`, "body", "body must not contain control characters (U+0085 at byte 0)"},
		{`{"z":"\u0000","b":{"y":"\u0000","c":"\u202E"},"d":"\u0000"}`, "body.b.c", "b.c must not contain bidirectional text controls (U+202E at byte 0)"},
		{`{"n":1e400,"b":true,"x":null}`, "", ""},
		{`{"name":`, "", ""},
	} {
		invalidAt(t, CheckJSONText([]string{"body"}, []byte(tc.doc)), tc.loc, tc.msg)
	}
}

func TestCheckRequestText(t *testing.T) {
	pattern := func() string { return "GET /v1/admin/custom-roles/{role_uuid}" }
	for _, tc := range []struct {
		path        string
		pattern     func() string
		query, form map[string][]string
		loc, msg    string
	}{
		{path: "/v1/admin/custom-roles/abc", query: map[string][]string{"email": {"a@example.com"}}, form: map[string][]string{"description": {"a\nb"}, "password": {"\x00"}}},
		{path: "/v1/admin/custom-roles/\x00", pattern: pattern, loc: "path.role_uuid", msg: "role_uuid must not contain control characters (U+0000 at byte 0)"},
		{path: "/v1/admin/custom-roles/\xff", pattern: pattern, loc: "path.role_uuid", msg: "role_uuid must be valid UTF-8 (0xFF at byte 0)"},
		{path: "/v1/admin/\u202Ecustom-roles/x", pattern: pattern, loc: "path", msg: "path must not contain bidirectional text controls (U+202E at byte 10)"},
		{path: "/nowhere/\x00", pattern: func() string { return "" }, loc: "path", msg: "path must not contain control characters (U+0000 at byte 9)"},
		{path: "/scim/v2/Users/a\x00", pattern: func() string { return "/scim/v2/Users/{id}" }, loc: "path.id", msg: "id must not contain control characters (U+0000 at byte 1)"},
		{path: "/x", query: map[string][]string{"email": {"ok", "\x00"}}, loc: "query.email", msg: "email must not contain control characters (U+0000 at byte 0)"},
		{path: "/x", query: map[string][]string{"a\u202E": {"x"}}, loc: "query", msg: "query: a parameter's name must not contain bidirectional text controls (U+202E at byte 1)"},
		{path: "/x", query: map[string][]string{"z": {"\x00"}, "b": {"ok", "\u2066"}, "c\x00": {"x"}}, loc: "query.b",
			msg: "b must not contain bidirectional text controls (U+2066 at byte 0)"},
		{path: "/x", form: map[string][]string{"name": {"x\u200F"}}, loc: "body.name", msg: "name must not contain bidirectional text controls (U+200F at byte 1)"},
		{path: "/x", form: map[string][]string{"password": {"\xff"}}, loc: "body.password", msg: "password must be valid UTF-8 (0xFF at byte 0)"},
	} {
		if tc.pattern == nil {
			tc.pattern = func() string { t.Fatalf("%q: the pattern was asked for a clean path", tc.path); return "" }
		}
		invalidAt(t, CheckRequestText(tc.path, tc.pattern, tc.query, tc.form), tc.loc, tc.msg)
	}
}

// BenchmarkCheckJSONText measures the check of a body of 1,000 users (76
// kB), as POST /v1/admin/users takes: plain, and with every name's é
// escaped (as Python's json.dumps writes it), which must be decoded.
//
//	go test ./internal/steward -run '^$' -bench CheckJSONText
func BenchmarkCheckJSONText(b *testing.B) {
	for _, tc := range []struct{ name, e string }{{"plain", "é"}, {"escaped", `\u00e9`}} {
		var body strings.Builder
		body.WriteString("[")
		for i := range 1000 {
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `{"email":"bulk%08d@example.com","first_name":"Bulk%s","last_name":"User"}`, i, tc.e)
		}
		body.WriteString("]")
		doc := []byte(body.String())
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if err := CheckJSONText([]string{"body"}, doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
