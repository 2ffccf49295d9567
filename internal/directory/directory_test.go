package directory

import "testing"

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct {
		in, display, normalized string
		ok                      bool
	}{
		{"alice@example.com", "alice@example.com", "alice@example.com", true},
		{"  Alice.Martin@Example.COM ", "Alice.Martin@Example.COM", "alice.martin@example.com", true},
		{"", "", "", false},
		{"alice", "", "", false},
		{"Alice <alice@example.com>", "", "", false},
		{"a@b@c", "", "", false},
		{"alice@", "", "", false},
	} {
		display, normalized, err := NormalizeEmail([]string{"body", "email"}, tc.in)
		if (err == nil) != tc.ok || display != tc.display || normalized != tc.normalized {
			t.Errorf("NormalizeEmail(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, display, normalized, err, tc.display, tc.normalized, tc.ok)
		}
	}
}
