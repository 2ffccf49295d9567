package directory

// Size returns how many Organizations' access graphs the cache holds.
func (a *Access) Size() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.orgs)
}
