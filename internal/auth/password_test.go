package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/steward"
)

func TestPasswordHashes(t *testing.T) {
	ctx := context.Background()
	h1, err := HashPassword(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword(ctx, "correct horse battery")
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=3,p=2$") || h1 == h2 {
		t.Fatalf("hashes %q and %q: want PHC argon2id strings with the default parameters and distinct salts", h1, h2)
	}
	tampered := strings.Replace(h1, "m=65536", "m=4194304", 1)
	for _, tc := range []struct {
		name, hash, pw string
		want           bool
	}{
		{"right password", h1, "correct horse battery", true},
		{"wrong password", h1, "correct horse battery!", false},
		{"dummy hash", dummyHash, "anything at all", false},
		{"memory beyond the bound", tampered, "correct horse battery", false},
		{"not a hash", "plain text", "plain text", false},
		{"another algorithm", strings.Replace(h1, "argon2id", "argon2i", 1), "correct horse battery", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := verifyPassword(ctx, tc.hash, tc.pw)
			if err != nil || got != tc.want {
				t.Errorf("verifyPassword = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, _, _, ok := parseHash(dummyHash); !ok {
		t.Error("the dummy hash does not parse, so unknown addresses would answer faster than wrong passwords")
	}
}

func TestHashNewPassword(t *testing.T) {
	for _, tc := range []struct {
		pw, confirm, want string
	}{
		{"short", "short", "at least 12 characters"},
		{"            ", "            ", "only spaces"},
		{strings.Repeat("x", 257), strings.Repeat("x", 257), "at most 256 bytes"},
		{"long enough password", "long enough passwort", "differ"},
		{"long enough password", "long enough password", ""},
		{"ééééééééééé", "ééééééééééé", "at least 12 characters"},
	} {
		hash, err := HashNewPassword(context.Background(), tc.pw, tc.confirm)
		switch {
		case tc.want == "" && (err != nil || !strings.HasPrefix(hash, "$argon2id$")):
			t.Errorf("HashNewPassword(%q) = %q, %v, want an argon2id hash", tc.pw, hash, err)
		case tc.want != "" && (hash != "" || !steward.IsKind(err, steward.KindInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("HashNewPassword(%q) = %q, %v, want no hash and an invalid error saying %q", tc.pw, hash, err, tc.want)
		}
	}
}

// BenchmarkHashPassword measures one argon2id hash with DefaultParams: the
// cost of a sign-in, an invitation accepted or a password reset.
func BenchmarkHashPassword(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := HashPassword(ctx, "correct horse battery"); err != nil {
			b.Fatal(err)
		}
	}
}
