package keys

// Size returns how many secrets the checker holds: each live key's, and
// the rotated-out secrets still in their grace period.
func (c *Checker) Size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byHash)
}
