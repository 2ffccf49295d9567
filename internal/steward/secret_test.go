package steward

import "testing"

func TestHashToken(t *testing.T) {
	// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken(abc) = %s", got)
	}
}
