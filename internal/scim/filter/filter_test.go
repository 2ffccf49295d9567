package filter

import (
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`userName eq "bjensen"`, `username eq "bjensen"`},
		{`userName Eq "a" AND (title pr or emails.value co "@x")`, `(username eq "a" and (title pr or emails.value co "@x"))`},
		{`a eq 1 or b eq 2 and c eq 3`, `(a eq 1 or (b eq 2 and c eq 3))`},
		{`not (active eq false)`, `not (active eq false)`},
		{`emails[type eq "work" and value co "@example.com"]`, `emails[(type eq "work" and value co "@example.com")]`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `username sw "J"`},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, `meta.lastmodified gt "2011-05-13T04:42:34Z"`},
		{`externalId eq null`, `externalid eq null`},
		{`displayName eq "quote \" inside"`, `displayname eq "quote \" inside"`},
	} {
		e, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if e.String() != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.in, e, tc.want)
		}
	}
	for _, bad := range []string{``, `userName`, `userName eq`, `userName eq bjensen`, `userName zz "a"`, `(userName pr`, `userName pr)`,
		`emails[type eq "work"`, `"a" eq "b"`, `userName eq "unterminated`, `a eq "x" and`, `1abc pr`, `a..b pr`, strings.Repeat("(", 40) + "a pr" + strings.Repeat(")", 40)} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted a bad filter", bad)
		}
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`members`, `members`},
		{`members[value eq "2819c223"]`, `members[value eq "2819c223"]`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{`name.givenName`, `name.givenname`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:active`, `active`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager`},
	} {
		p, err := ParsePath(tc.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.in, err)
			continue
		}
		if p.String() != tc.want {
			t.Errorf("ParsePath(%q) = %s, want %s", tc.in, p, tc.want)
		}
	}
	for _, bad := range []string{``, `[value eq "x"]`, `members[value eq "x"`, `members[value eq "x"].`, `members[value eq "x"]x`, `members extra`, `emails[type eq "work"].a.b`} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted a bad path", bad)
		}
	}
}

// FuzzParseFilter checks that no input panics or hangs the parser, and that
// what it accepts prints as a filter that parses to the same thing.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`userName eq "bjensen"`, `a eq 1 or b eq 2 and c eq 3`, `not (a pr)`, `emails[type eq "work" and value co "x"]`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `externalId eq null`, `members.value eq "x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := Parse(in)
		if err != nil {
			return
		}
		again, err := Parse(e.String())
		if err != nil {
			t.Fatalf("%q parsed as %s, which does not parse: %v", in, e, err)
		}
		if again.String() != e.String() {
			t.Fatalf("%q: %s reparses as %s", in, e, again)
		}
	})
}

// FuzzParsePath does the same for PATCH paths.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{`members`, `members[value eq "2819c223"]`, `emails[type eq "work"].value`, `name.givenName`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePath(in)
		if err != nil {
			return
		}
		again, err := ParsePath(p.String())
		if err != nil {
			t.Fatalf("%q parsed as %s, which does not parse: %v", in, p, err)
		}
		if again.String() != p.String() {
			t.Fatalf("%q: %s reparses as %s", in, p, again)
		}
	})
}
