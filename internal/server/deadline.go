package server

import (
	"net/http"
	"time"
)

// Default bounds on the time a client takes to send a request's body.
const (
	DefaultBodyTimeout      = 30 * time.Second
	DefaultModelBodyTimeout = 2 * time.Minute
)

// withBodyDeadline bounds the time a client may take to send a request's
// body: the model API's (larger prompts) by ModelBodyTimeout, every other
// one by BodyTimeout. The http.Server bounds the headers only, so without
// this a client trickling a body holds its connection and a goroutine for
// as long as it likes, even after the handler has answered (net/http reads
// what is left of a small body to reuse the connection).
//
// The bound is a read deadline on the connection, which net/http lifts
// once the body has been read to its end, so that it never cuts off a long
// answer. A body the handler leaves unread stays under it, so that reading
// its rest cannot last longer.
func (s *Server) withBodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			timeout := s.deps.BodyTimeout
			if s.ownsBody(r) {
				timeout = s.deps.ModelBodyTimeout
			}
			// A ResponseWriter that cannot set deadlines (a test's
			// recorder) has no connection to hold.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}
