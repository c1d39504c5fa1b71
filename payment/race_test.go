//go:build race

package payment

// raceEnabled: the race detector makes sync.Pool drop items, so the
// allocation tests do not hold.
const raceEnabled = true
