package steward

import "testing"

func TestInvalids(t *testing.T) {
	if err := Invalids(nil); err != nil {
		t.Fatalf("no problems gave %v", err)
	}
	a, b := Invalid([]string{"body", "a"}, "a is required"), Invalid([]string{"body", "b"}, "b is required")
	err := Invalids([]*Error{a, b})
	if err != a || len(a.Also) != 1 || a.Also[0] != b {
		t.Fatalf("Invalids = %v with %v, want a with b in Also", err, a.Also)
	}
}
