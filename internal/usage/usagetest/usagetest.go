// Package usagetest holds what the benchmarks of usage and of its callers
// share: recording from many goroutines at once, and measuring it.
package usagetest

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/benchcpu"
	"github.com/stewardhq/steward/internal/usage"
)

// RecordParallel runs rec, calls record b.N times from about callers
// goroutines at once (each call's n is its sequence number, from 1), and
// reports events/s, the process's CPU time per event (cpu-µs/event: the
// CPU time, the callers' included, tells runs apart even on a machine busy
// with other jobs) and the events a batch held.
func RecordParallel(b *testing.B, rec *usage.Recorder, callers int, record func(n int64) error) {
	b.Helper()
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(context.Background()) }()
	defer func() { _ = rec.Close(); <-done }()
	var seq atomic.Int64
	b.SetParallelism(max(callers/runtime.GOMAXPROCS(0), 1))
	cpu := benchcpu.Self(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := record(seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((benchcpu.Self(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/event")
	st := rec.Stats()
	b.ReportMetric(float64(st.Events)/float64(st.Batches), "events/batch")
}
