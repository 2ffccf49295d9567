package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/api"
	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/steward"
)

// handleRoot sends a browser that opens Steward's address to the web
// pages; other clients get the 404 of a path no route takes, as before.
func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	if s.deps.Web != nil && strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, webPrefix, http.StatusFound)
		return
	}
	apierror.Write(w, steward.Errorf(steward.KindNotFound, "no such route: %s %s", r.Method, r.URL.Path))
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.deps.Version})
}

// handleReadyz answers 200 only when the database answers.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.DB.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openapi)
}

// loadDocument keeps Steward's OpenAPI document as JSON, and the enums that
// input is validated against, so that the document is the one list of
// allowed values.
func (s *Server) loadDocument() error {
	doc, err := api.OpenAPIJSON()
	if err != nil {
		return fmt.Errorf("load OpenAPI document: %w", err)
	}
	var parsed struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &parsed); err != nil {
		return fmt.Errorf("parse OpenAPI document: %w", err)
	}
	s.openapi = doc
	s.enums = map[string]map[string]bool{}
	for name, schema := range parsed.Components.Schemas {
		if len(schema.Enum) == 0 {
			continue
		}
		set := map[string]bool{}
		for _, v := range schema.Enum {
			set[v] = true
		}
		s.enums[name] = set
	}
	return nil
}
