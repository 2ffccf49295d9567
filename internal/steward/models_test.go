package steward

import (
	"slices"
	"testing"
)

func TestModelAllowList(t *testing.T) {
	var every *ModelAllowList
	none := NewModelAllowList(nil)
	ab := NewModelAllowList([]string{"b", "a", "b"})
	bc := NewModelAllowList([]string{"c", "b"})

	if !every.Allows("anything") || none.Allows("a") || !ab.Allows("a") || ab.Allows("c") || ab.Allows("") {
		t.Fatal("Allows: no list allows every model, an empty one none, a list its names")
	}
	if every.Names() != nil || none.Names() == nil || len(none.Names()) != 0 || !slices.Equal(ab.Names(), []string{"a", "b"}) {
		t.Fatalf("Names: %v %v %v; want nil, [], [a b]", every.Names(), none.Names(), ab.Names())
	}
	names := ab.Names()
	names[0] = "changed"
	if !ab.Allows("a") {
		t.Fatal("changing what Names returned changed the list")
	}
	for _, c := range []struct {
		a, b *ModelAllowList
		want *ModelAllowList
	}{
		{every, every, nil},
		{every, ab, ab},
		{ab, every, ab},
		{ab, bc, NewModelAllowList([]string{"b"})},
		{ab, none, none},
		{NewModelAllowList([]string{"a"}), NewModelAllowList([]string{"c"}), none},
	} {
		if got := IntersectModels(c.a, c.b); !got.Equal(c.want) {
			t.Errorf("IntersectModels(%v, %v) = %v, want %v", c.a.Names(), c.b.Names(), got.Names(), c.want.Names())
		}
	}
	if every.Equal(none) || none.Equal(every) || !every.Equal(nil) || !none.Equal(NewModelAllowList([]string{})) || ab.Equal(bc) {
		t.Fatal("Equal: no list differs from an empty one; lists are equal by their names")
	}
	p := Principal{Kind: CredentialWorkspaceAPIKey}
	if !p.MayUse("a") {
		t.Fatal("a principal without a list may not use a model")
	}
	p.Models = ab
	if !p.MayUse("b") || p.MayUse("c") {
		t.Fatal("MayUse does not follow the principal's list")
	}
}
