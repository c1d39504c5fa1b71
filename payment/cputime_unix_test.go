//go:build unix

package payment

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU reports the process CPU time (user+system, GC included) per
// operation as cpu-ns/op: on a shared machine it is a steadier figure than
// the wall time of ns/op. Call it with the start from cpuTime after b.Loop.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
