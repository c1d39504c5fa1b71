package ledgertest

import (
	"syscall"
	"testing"
	"time"
)

// Bench runs a benchmark's body with the timer reset and reports, beside
// the wall time, the CPU time the whole process spent per operation
// (cpu-ns/op: every goroutine, the flusher and the garbage collector
// included). On a shared machine the wall time also counts waiting for a
// core; the CPU time does not.
func Bench(b *testing.B, body func()) {
	b.ReportAllocs()
	start := cpuTime(b)
	b.ResetTimer()
	body()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user and system time of this process.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
