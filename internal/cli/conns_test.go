package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// patience is how long a test waits for the server to close a connection
// it should close: far beyond the bounds the tests configure, far below
// the idle and header timeouts that would close it anyway.
const patience = 8 * time.Second

// closedByServer reports whether the server closes c (or has closed it)
// within patience.
func closedByServer(c net.Conn, r io.Reader) bool {
	_ = c.SetReadDeadline(time.Now().Add(patience))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

func TestSlowBodiesAreCut(t *testing.T) {
	base, _, stop := serve(t, nil, "--data-dir", t.TempDir(), "--demo-model", "--body-timeout", "300ms", "--model-body-timeout", "300ms")
	defer stop()
	addr := strings.TrimPrefix(base, "http://")
	paths := []string{"/web/signin", "/v1/chat/completions", "/v1/admin/workspaces"}
	const clients = 30
	held := make(chan string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		path := paths[i%len(paths)]
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			// Headers in full, then a body announced as 64 KiB and sent a
			// byte at a time.
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 65536\r\n\r\n", path, addr)
			wg.Go(func() {
				for {
					if _, err := c.Write([]byte("a")); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
			if !closedByServer(c, c) {
				held <- path
			}
		})
	}
	wg.Wait()
	close(held)
	count := map[string]int{}
	for p := range held {
		count[p]++
	}
	if len(count) > 0 {
		t.Errorf("connections still held after %s by clients trickling a body, by path: %v; want every one closed once the 300ms body timeout passed", patience, count)
	}
}

// rawClient is one connection, spoken to in plain HTTP/1.1.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

// get sends a GET on the connection and returns the answer's status, or 0
// when the connection fails.
func (rc *rawClient) get(path string, header ...string) int {
	rc.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: steward.test\r\n", path)
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_ = rc.c.SetDeadline(time.Now().Add(patience))
	if _, err := io.WriteString(rc.c, b.String()); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestUnauthenticatedConnectionsAreCapped(t *testing.T) {
	base, printed, stop := serve(t, nil, "--data-dir", t.TempDir(), "--max-unauthenticated-conns", "4")
	defer stop()
	addr := strings.TrimPrefix(base, "http://")
	key := curlRE.FindStringSubmatch(printed)
	if key == nil {
		t.Fatalf("no admin key printed:\n%s", printed)
	}
	admin := dial(t, addr)
	if status := admin.get("/v1/admin/workspaces", key[1]); status != http.StatusOK {
		t.Fatalf("an authenticated request: %d", status)
	}
	// Four unauthenticated clients fill the bound; four more each close
	// the oldest.
	var clients []*rawClient
	for i := range 8 {
		c := dial(t, addr)
		if status := c.get("/readyz"); status != http.StatusOK {
			t.Fatalf("unauthenticated client %d: %d", i, status)
		}
		clients = append(clients, c)
	}
	for i, c := range clients[:4] {
		if !closedByServer(c.c, c.br) {
			t.Errorf("unauthenticated connection %d still open after 4 newer ones; want the oldest closed", i)
		}
	}
	for i, c := range clients[4:] {
		if status := c.get("/readyz"); status != http.StatusOK {
			t.Errorf("unauthenticated connection %d, among the 4 newest: %d, want it still open", 4+i, status)
		}
	}
	if status := admin.get("/v1/admin/workspaces", key[1]); status != http.StatusOK {
		t.Errorf("the authenticated connection after 8 unauthenticated ones: %d, want it still open", status)
	}
}
