package mistraltest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
)

// model is a base model or a fine-tuned one.
type model struct {
	id           string
	fineTuned    bool
	capabilities []string
	root, job    string
	archived     bool
	name         *string
	created      int64
	aliases      []string
}

// maxContextLength is every model's context length.
const maxContextLength = 32768

// modelCapabilities are the capabilities a model card lists.
var modelCapabilities = []string{
	"completion_chat", "function_calling", "reasoning", "completion_fim", "fine_tuning", "vision", "ocr",
	"classification", "moderation", "audio", "audio_transcription", "audio_transcription_realtime", "audio_speech",
	"unified_resources",
}

// seed adds the base models and preset voices a new server knows.
func (s *Server) seed() {
	for _, m := range []struct {
		id   string
		caps []string
	}{
		{"mistral-small-latest", []string{"completion_chat", "function_calling", "vision"}},
		{"mistral-large-latest", []string{"completion_chat", "function_calling"}},
		{"codestral-latest", []string{"completion_chat", "completion_fim", "function_calling"}},
		{"mistral-embed", nil},
		{"mistral-moderation-latest", []string{"moderation", "classification"}},
		{"mistral-ocr-latest", []string{"ocr"}},
		{"voxtral-mini-latest", []string{"audio", "audio_transcription"}},
		{"voxtral-mini-tts-latest", []string{"audio", "audio_speech"}},
	} {
		s.AddBaseModel(m.id, m.caps...)
	}
	now := time.Now()
	for _, v := range []struct{ name, slug, language string }{
		{"Amélie", "amelie", "fr"},
		{"Oliver", "oliver", "en"},
	} {
		slug, _ := json.Marshal(v.slug)
		languages, _ := json.Marshal([]string{v.language})
		id := uuid.NewString()
		s.voices.add(id, &voice{
			id: id, name: v.name, fields: map[string]json.RawMessage{"slug": slug, "languages": languages},
			retention: 30, created: now, preset: true,
		})
	}
}

// AddBaseModel adds a base model to the model list, with the capabilities
// named (as in Mistral's model cards: completion_chat, completion_fim,
// function_calling, vision, ocr, moderation, audio_transcription, ...).
func (s *Server) AddBaseModel(id string, capabilities ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models.add(id, &model{id: id, capabilities: capabilities, created: time.Now().Unix(), aliases: []string{}})
}

// AddFineTunedModel adds a model fine-tuned from root, as a finished
// fine-tuning job would, and returns its id.
func (s *Server) AddFineTunedModel(root string) string {
	id := fmt.Sprintf("ft:%s:%s:%s:%s", root, randomHex(4), time.Now().UTC().Format("20060102"), randomHex(4))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models.add(id, &model{
		id: id, fineTuned: true, capabilities: []string{"completion_chat", "function_calling"}, root: root,
		job: uuid.NewString(), created: time.Now().Unix(), aliases: []string{},
	})
	return id
}

func (m *model) capabilityMap(names []string) map[string]bool {
	out := map[string]bool{}
	for _, c := range names {
		out[c] = slices.Contains(m.capabilities, c)
	}
	return out
}

// card is the model's card in the model list.
func (s *Server) card(m *model) map[string]any {
	out := map[string]any{
		"id":                 m.id,
		"object":             "model",
		"created":            m.created,
		"owned_by":           "mistralai",
		"capabilities":       m.capabilityMap(modelCapabilities),
		"name":               m.name,
		"max_context_length": maxContextLength,
		"aliases":            m.aliases,
		"deprecation":        nil,
		"type":               "base",
	}
	if m.fineTuned {
		out["owned_by"] = s.org
		out["type"] = "fine-tuned"
		out["job"] = m.job
		out["root"] = m.root
		out["archived"] = m.archived
	}
	return out
}

// listModels lists every model, or the one the model parameter names.
func (s *Server) listModels(c *call) {
	if !c.arrived("list_models_v1_models_get") {
		return
	}
	q := c.r.URL.Query()
	s.mu.Lock()
	data := []map[string]any{}
	for _, m := range s.models.all() {
		if !q.Has("model") || m.id == q.Get("model") || slices.Contains(m.aliases, q.Get("model")) {
			data = append(data, s.card(m))
		}
	}
	s.mu.Unlock()
	c.ok(map[string]any{"object": "list", "data": data})
}

// model looks up the model the path names, answering 404 when there is
// none (or, with fineTuned, when it is not fine-tuned); it is returned
// with the server locked.
func (c *call) model(fineTuned bool) (*model, bool) {
	id := c.r.PathValue("model_id")
	c.s.mu.Lock()
	m, ok := c.s.models.get(id)
	if !ok || fineTuned && !m.fineTuned {
		c.s.mu.Unlock()
		kind := "Model"
		if fineTuned {
			kind = "Fine-tuned model"
		}
		c.notFound(kind, id)
		return nil, false
	}
	return m, true
}

func (s *Server) getModel(c *call) {
	if !c.arrived("retrieve_model_v1_models__model_id__get") {
		return
	}
	if m, ok := c.model(false); ok {
		out := s.card(m)
		s.mu.Unlock()
		c.ok(out)
	}
}

// deleteModel deletes a fine-tuned model; a base model cannot be (403).
func (s *Server) deleteModel(c *call) {
	if !c.arrived("delete_model_v1_models__model_id__delete") {
		return
	}
	m, ok := c.model(false)
	if !ok {
		return
	}
	if !m.fineTuned {
		s.mu.Unlock()
		c.fail(http.StatusForbidden, "Base model "+m.id+" cannot be deleted")
		return
	}
	s.models.remove(m.id)
	s.mu.Unlock()
	c.ok(map[string]any{"id": m.id, "object": "model", "deleted": true})
}

// updateFineTunedModel renames a fine-tuned model.
func (s *Server) updateFineTunedModel(c *call) {
	var req struct {
		Name *string `json:"name"`
	}
	if !c.read("jobs_api_routes_fine_tuning_update_fine_tuned_model", &req, nil) {
		return
	}
	m, ok := c.model(true)
	if !ok {
		return
	}
	if req.Name != nil {
		m.name = req.Name
	}
	out := map[string]any{
		"id":                 m.id,
		"object":             "model",
		"created":            m.created,
		"owned_by":           s.org,
		"workspace_id":       s.workspace,
		"root":               m.root,
		"root_version":       "1.0",
		"archived":           m.archived,
		"name":               m.name,
		"capabilities":       m.capabilityMap([]string{"completion_chat", "completion_fim", "function_calling", "fine_tuning", "classification"}),
		"max_context_length": maxContextLength,
		"aliases":            m.aliases,
		"job":                m.job,
		"model_type":         "completion",
	}
	s.mu.Unlock()
	c.ok(out)
}

func (s *Server) archiveModel(c *call) {
	if !c.arrived("jobs_api_routes_fine_tuning_archive_fine_tuned_model") {
		return
	}
	c.setArchived(true)
}

func (s *Server) unarchiveModel(c *call) {
	if !c.arrived("jobs_api_routes_fine_tuning_unarchive_fine_tuned_model") {
		return
	}
	c.setArchived(false)
}

func (c *call) setArchived(archived bool) {
	m, ok := c.model(true)
	if !ok {
		return
	}
	m.archived = archived
	c.s.mu.Unlock()
	c.ok(map[string]any{"id": m.id, "object": "model", "archived": archived})
}
