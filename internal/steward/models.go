package steward

import "slices"

// ModelAllowList is a list of the models that may be called: a Workspace's,
// a key's own, or what a key may call (the intersection of both). A nil
// *ModelAllowList is no list: every model is allowed. An empty one allows
// no model. Once made it never changes, so that one value is shared by
// every principal it applies to.
type ModelAllowList struct {
	names []string // sorted, each once
}

// NewModelAllowList returns the list of names, sorted and each once; nil
// names make an empty list, not a nil one.
func NewModelAllowList(names []string) *ModelAllowList {
	s := slices.Clone(names)
	slices.Sort(s)
	return &ModelAllowList{names: slices.Compact(s)}
}

// Allows reports whether model may be called under l.
func (l *ModelAllowList) Allows(model string) bool {
	if l == nil {
		return true
	}
	_, ok := slices.BinarySearch(l.names, model)
	return ok
}

// Names returns the models of l, sorted; nil for no list, an empty slice for
// a list that allows nothing.
func (l *ModelAllowList) Names() []string {
	if l == nil {
		return nil
	}
	return append([]string{}, l.names...)
}

// Equal reports whether l and o allow the same models (two nil lists are
// equal; a nil list and an empty one are not).
func (l *ModelAllowList) Equal(o *ModelAllowList) bool {
	if l == nil || o == nil {
		return l == o
	}
	return slices.Equal(l.names, o.names)
}

// IntersectModels returns the models both a and b allow: nil when both
// allow every model, the other one when one does.
func IntersectModels(a, b *ModelAllowList) *ModelAllowList {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	both := []string{}
	for _, n := range a.names {
		if b.Allows(n) {
			both = append(both, n)
		}
	}
	return &ModelAllowList{names: both}
}
