package benchcpu

import (
	"os"
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
