package keys

import (
	"hash/crc32"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/steward"
)

func TestNewKeysAreWellFormedAndDistinct(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   steward.CredentialKind
	}{
		{PrefixAdmin, steward.CredentialAdminAPIKey},
		{PrefixWorkspace, steward.CredentialWorkspaceAPIKey},
		{PrefixBackoffice, steward.CredentialBackofficeKey},
	} {
		seen := map[string]bool{}
		for range 1000 {
			k := New(tc.prefix)
			if seen[k] {
				t.Fatalf("New(%q) repeated %q", tc.prefix, k)
			}
			seen[k] = true
			got, ok := KindOf(k)
			if !ok || got != tc.want {
				t.Fatalf("KindOf(%q) = %v, %v; want %v, true", k, got, ok, tc.want)
			}
			if !strings.HasPrefix(k, tc.prefix+"_") || len(k) != Len {
				t.Fatalf("New(%q) = %q: wrong shape", tc.prefix, k)
			}
		}
	}
}

func TestKindOfRejectsMalformedKeys(t *testing.T) {
	good := New(PrefixAdmin)
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, token := range map[string]string{
		"empty":           "",
		"short":           good[:Len-1],
		"long":            good + "x",
		"unknown prefix":  "stwz" + good[4:],
		"no underscore":   good[:4] + "-" + good[5:],
		"typo in secret":  flip(10),
		"typo in sum":     flip(Len - 1),
		"bad character":   good[:8] + "!" + good[9:],
		"mistral-looking": "sk-0123456789abcdef0123456789abcd",
	} {
		if kind, ok := KindOf(token); ok {
			t.Errorf("%s: KindOf(%q) = %v, true; want refusal", name, token, kind)
		}
	}
}

func TestHint(t *testing.T) {
	k := New(PrefixAdmin)
	hint := Hint(k)
	if !strings.HasPrefix(hint, k[:9]) || !strings.HasSuffix(hint, k[Len-4:]) || strings.Contains(hint, k[9:Len-4]) {
		t.Fatalf("Hint(%q) = %q", k, hint)
	}
}

func FuzzKindOf(f *testing.F) {
	f.Add(New(PrefixAdmin))
	f.Add("stwa_")
	f.Fuzz(func(t *testing.T, token string) {
		kind, ok := KindOf(token)
		if ok && (len(token) != Len || kind == steward.CredentialNone) {
			t.Fatalf("KindOf(%q) accepted a malformed key", token)
		}
	})
}

func BenchmarkKindOf(b *testing.B) {
	k := New(PrefixWorkspace)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := KindOf(k); !ok {
			b.Fatal("refused")
		}
	}
}

func TestChecksumIsCRC32(t *testing.T) {
	for _, s := range []string{"", "stwa_", "stwa_0123456789ABCDEFabcdef"} {
		if got, want := checksum(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("checksum(%q) = %d, want %d", s, got, want)
		}
	}
}
