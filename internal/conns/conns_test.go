package conns_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/conns"
)

// pair connects a client to l and returns both ends.
func pair(t *testing.T, l *conns.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// open reports whether the server end of client is still open. A closed
// end answers EOF, soon; an open one has not answered when a short wait
// ends, so the wait is short when the connection should be open and long
// when it should be closed.
func open(t *testing.T, client net.Conn, want bool) bool {
	t.Helper()
	wait := 5 * time.Second
	if want {
		wait = 50 * time.Millisecond
	}
	_ = client.SetReadDeadline(time.Now().Add(wait))
	_, err := client.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.Is(err, io.EOF):
		return false
	}
	t.Fatalf("read: %v", err)
	return false
}

func TestListenerClosesTheOldestUnauthenticated(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := conns.NewListener(tcp, 2)
	defer l.Close()

	c1, _ := pair(t, l)
	c2, s2 := pair(t, l)
	// An authenticated connection leaves the count.
	conns.Authenticated(conns.Context(context.Background(), s2))
	c3, s3 := pair(t, l)
	// A connection the server closes frees its place.
	_ = s3.Close()
	c4, _ := pair(t, l)
	if !open(t, c1, true) || !open(t, c4, true) {
		t.Fatal("two unauthenticated connections within a bound of two: one was closed")
	}
	c5, _ := pair(t, l)
	for _, tc := range []struct {
		name string
		c    net.Conn
		open bool
	}{
		{"the oldest unauthenticated", c1, false},
		{"the authenticated", c2, true},
		{"the one the server closed", c3, false},
		{"the second unauthenticated", c4, true},
		{"the newest", c5, true},
	} {
		if got := open(t, tc.c, tc.open); got != tc.open {
			t.Errorf("%s connection: open %v, want %v", tc.name, got, tc.open)
		}
	}
}
