package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/stewardhq/steward/api"
)

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
