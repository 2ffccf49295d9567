package directory

// Size returns how many Organizations' access graphs the cache holds.
func (a *Access) Size() int { return a.orgs.Len() }
