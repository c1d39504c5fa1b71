package lightning

// generations is a map bounded by keeping two generations: when the recent
// one holds half the limit, it becomes the older one and the previous older
// one is dropped. Lookups see both. It is not safe for concurrent use; its
// owner locks.
type generations[K comparable, V any] struct {
	half          int
	recent, older map[K]V
}

func newGenerations[K comparable, V any](limit int) *generations[K, V] {
	return &generations[K, V]{half: limit / 2, recent: make(map[K]V)}
}

func (g *generations[K, V]) get(k K) (V, bool) {
	if v, ok := g.recent[k]; ok {
		return v, true
	}
	v, ok := g.older[k]
	return v, ok
}

func (g *generations[K, V]) put(k K, v V) {
	if len(g.recent) >= g.half {
		g.older, g.recent = g.recent, make(map[K]V, g.half)
	}
	g.recent[k] = v
}

// promote returns the value of k, moving it into the recent generation if
// it was in the older one, so an entry in use survives the next turnover.
func (g *generations[K, V]) promote(k K) (V, bool) {
	if v, ok := g.recent[k]; ok {
		return v, true
	}
	v, ok := g.older[k]
	if ok {
		delete(g.older, k)
		g.put(k, v)
	}
	return v, ok
}

// take returns and removes the value of k.
func (g *generations[K, V]) take(k K) (V, bool) {
	v, ok := g.get(k)
	delete(g.recent, k)
	delete(g.older, k)
	return v, ok
}

func (g *generations[K, V]) len() int { return len(g.recent) + len(g.older) }
