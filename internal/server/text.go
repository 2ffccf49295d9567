package server

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/scim"
	"github.com/stewardhq/steward/internal/steward"
)

// webPrefix is where the web pages (Deps.Web) are mounted.
const webPrefix = "/web/"

// withTextChecked refuses, with a 422 and before routing, a request whose
// path or query holds text that steward.TextRule refuses (invalid UTF-8,
// NUL, control or bidirectional characters): such a value never reaches a
// handler or the database. The SCIM service provider and the web pages
// check their requests themselves, to answer in their own format.
func (s *Server) withTextChecked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, scim.Prefix) && !strings.HasPrefix(r.URL.Path, webPrefix) {
			if err := steward.CheckRequestText(r.URL.Path, s.patternOf(r), queryOf(r), nil); err != nil {
				writeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// patternOf returns what finds the pattern r is routed by, which names the
// path's wildcards in an error.
func (s *Server) patternOf(r *http.Request) func() string {
	return func() string {
		_, pattern := s.mux.Handler(r)
		return pattern
	}
}

// queryOf returns r's query values, nil when it has none, without parsing
// an empty query.
func queryOf(r *http.Request) map[string][]string {
	if r.URL.RawQuery == "" {
		return nil
	}
	return r.URL.Query()
}
