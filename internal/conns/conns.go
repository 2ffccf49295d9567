// Package conns bounds the HTTP server's connections that no request has
// authenticated yet. Anyone can open those, hold them with a slow request
// and so use up the process's file descriptors; a client with a valid key
// or session is accountable, limited by its own limits, and is not
// counted.
//
// When the bound is reached, accepting a connection closes the oldest
// unauthenticated one rather than refusing the new one: a flood of
// connections then recycles itself instead of shutting everyone else out,
// and a real client's connection lives as long as it takes the flood to
// open the bound's worth of newer ones.
package conns

import (
	"container/list"
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener that keeps at most a given number of
// unauthenticated connections open. Serve it with Context as the
// http.Server's ConnContext, and call Authenticated once a request has
// authenticated.
type Listener struct {
	net.Listener
	limit int

	mu sync.Mutex
	// waiting holds the unauthenticated connections, oldest first.
	waiting list.List
}

// NewListener wraps ln so that it keeps at most limit unauthenticated
// connections; limit must be positive.
func NewListener(ln net.Listener, limit int) *Listener {
	return &Listener{Listener: ln, limit: limit}
}

// Accept waits for a connection, closing the oldest unauthenticated one
// if the new one would exceed the bound.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &conn{Conn: c, l: l}
	var evicted *conn
	l.mu.Lock()
	if l.waiting.Len() >= l.limit {
		evicted = l.waiting.Remove(l.waiting.Front()).(*conn)
		evicted.elem = nil
	}
	tc.elem = l.waiting.PushBack(tc)
	l.mu.Unlock()
	if evicted != nil {
		// Closing the socket ends whatever the server was doing with it:
		// reading a request, waiting for the next one, or writing.
		_ = evicted.Conn.Close()
	}
	return tc, nil
}

func (l *Listener) forget(c *conn) {
	l.mu.Lock()
	if c.elem != nil {
		l.waiting.Remove(c.elem)
		c.elem = nil
	}
	l.mu.Unlock()
}

// conn is an accepted connection.
type conn struct {
	net.Conn
	l *Listener
	// elem is the connection's place in l.waiting, nil once authenticated
	// or closed; guarded by l.mu.
	elem *list.Element
	// authenticated spares later requests of an authenticated connection
	// the listener's lock.
	authenticated atomic.Bool
}

func (c *conn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}

// CloseWrite lets the server send a FIN after an error answer without
// discarding what the client has not read yet (net/http looks for it).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type ctxKey struct{}

// Context is an http.Server's ConnContext: it lets Authenticated find the
// connection a request came on.
func Context(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*conn); ok {
		return context.WithValue(ctx, ctxKey{}, tc)
	}
	return ctx
}

// Authenticated records that the request of ctx carried a valid
// credential, so that its connection no longer counts against the bound.
// It does nothing for a request that did not come through a Listener.
func Authenticated(ctx context.Context) {
	c, ok := ctx.Value(ctxKey{}).(*conn)
	if !ok || c.authenticated.Load() {
		return
	}
	c.authenticated.Store(true)
	c.l.forget(c)
}
