package benchcpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// CPU burnt on one thread shows in both counts, for the whole process.
func TestCountsWhatRuns(t *testing.T) {
	self := Self(t)
	proc, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for Self(t)-self < 60*time.Millisecond {
		}
	}()
	<-done
	after, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - proc; d < 50*time.Millisecond {
		t.Errorf("Process grew by %v while the process used 60 ms of CPU", d)
	}
	if _, err := Process(-1); err == nil {
		t.Error("Process of no process: no error")
	}
}

// Named counts the CPU of the processes of a name: a busy shell started
// under a name of its own, and nothing for a name no process has.
func TestNamedCountsProcessesOfAName(t *testing.T) {
	const name = "benchcpu-busy"
	shell := filepath.Join(t.TempDir(), name)
	if err := os.Symlink("/bin/sh", shell); err != nil {
		t.Fatal(err)
	}
	busy := exec.Command(shell, "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Process.Kill(); _ = busy.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		used, err := Named(name)
		if err != nil {
			t.Fatal(err)
		}
		if used >= 20*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Named(%q) = %v after 10 s of a busy loop", name, used)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if none, err := Named("no-process-has-this-name"); err != nil || none != 0 {
		t.Errorf("Named of a name no process has = %v, %v", none, err)
	}
}
