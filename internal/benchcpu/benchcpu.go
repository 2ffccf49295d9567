// Package benchcpu measures CPU time for benchmarks: a machine busy with
// other jobs stretches wall time far more than the CPU time a piece of
// work takes. Linux only (getrusage and /proc).
package benchcpu

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Self is the CPU time this process has used, in user and system mode.
func Self(tb testing.TB) time.Duration {
	tb.Helper()
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// Process is the CPU time process pid of this machine has run: the sum,
// over its threads, of /proc/<pid>/task/<tid>/schedstat, in nanoseconds
// (/proc/<pid>/stat counts clock ticks of 10 ms, too coarse for one
// report; /proc/<pid>/schedstat counts the first thread only). Threads
// that have ended are not counted; Go keeps its threads.
func Process(pid int) (time.Duration, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		ran, err := schedstat(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			return 0, err
		}
		total += ran
	}
	return total, nil
}

// schedstat is the time on the CPU that a schedstat file counts, zero when
// its thread or process has ended.
func schedstat(path string) (time.Duration, error) {
	stat, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.Fields(string(stat))[0], 10, 64)
	return time.Duration(ns), err
}

// Named is the CPU time that the processes of this machine named name
// (their comm, as ps shows it: "postgres") have run, from each one's
// /proc/<pid>/schedstat: for servers of one thread a process, such as
// PostgreSQL's backends. Processes that have ended are not counted.
func Named(name string) (time.Duration, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue // not it, or ended meanwhile
		}
		ran, err := schedstat("/proc/" + p.Name() + "/schedstat")
		if err != nil {
			return 0, err
		}
		total += ran
	}
	return total, nil
}
