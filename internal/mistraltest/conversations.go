package mistraltest

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// conversation is a conversation with a model or an agent, with its
// entries in the order they were appended.
type conversation struct {
	id               string
	created, updated time.Time
	agentID          string
	agentVersion     json.RawMessage
	model            string
	fields           map[string]json.RawMessage
	entries          []map[string]any
}

// conversationFields are the members a conversation keeps from the request
// that started it: all of them with a model, name and metadata with an
// agent.
var (
	modelConversationFields = []string{"instructions", "tools", "completion_args", "guardrails", "name", "metadata"}
	agentConversationFields = []string{"name", "metadata"}
)

func (cv *conversation) json() map[string]any {
	out := map[string]any{}
	for k, v := range cv.fields {
		out[k] = v
	}
	out["object"] = "conversation"
	out["id"] = cv.id
	out["created_at"] = timestamp(cv.created)
	out["updated_at"] = timestamp(cv.updated)
	if cv.agentID != "" {
		out["agent_id"] = cv.agentID
		if cv.agentVersion != nil {
			out["agent_version"] = cv.agentVersion
		}
	} else {
		out["model"] = cv.model
	}
	return out
}

// inputEntries turns a request's inputs, a string (one user message) or a
// list of entries, into entries with their ids and times.
func inputEntries(raw json.RawMessage, now time.Time) ([]map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return []map[string]any{{
			"object": "entry", "type": "message.input", "created_at": timestamp(now), "completed_at": nil,
			"id": "msg_" + randomHex(16), "role": "user", "content": text,
		}}, nil
	}
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("inputs must be a string or a list of entries")
	}
	for _, e := range list {
		if e == nil {
			return nil, errors.New("an entry of inputs is not an object")
		}
		defaults := map[string]any{"object": "entry", "type": "message.input", "created_at": timestamp(now), "id": "msg_" + randomHex(16)}
		for k, v := range defaults {
			if _, ok := e[k]; !ok {
				e[k] = v
			}
		}
	}
	return list, nil
}

// conversationRequest holds what the fake reads of a start, append or
// restart request; raw keeps all its members.
type conversationRequest struct {
	raw            map[string]json.RawMessage
	Inputs         json.RawMessage `json:"inputs"`
	Stream         bool            `json:"stream"`
	Store          *bool           `json:"store"`
	AgentID        string          `json:"agent_id"`
	AgentVersion   json.RawMessage `json:"agent_version"`
	Model          string          `json:"model"`
	FromEntryID    string          `json:"from_entry_id"`
	CompletionArgs *struct {
		MaxTokens *int `json:"max_tokens"`
	} `json:"completion_args"`
}

// readConversation reads a conversation request and returns the operation
// it is: op, or streamOp when it asks for a stream.
func (c *call) readConversation(req *conversationRequest, op, streamOp string) (string, error) {
	raw, err := c.decodeObject()
	if err != nil {
		return op, err
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, req); err != nil {
		return op, err
	}
	req.raw = raw
	if req.Stream {
		return streamOp, nil
	}
	return op, nil
}

// run appends the request's inputs and the model's answer to cv (a
// conversation not kept when store is false) and answers the response,
// or streams it as conversation events: response started, Chunks message
// deltas, response done with the usage.
func (c *call) run(cv *conversation, req *conversationRequest, inputs []map[string]any) {
	u, st := c.s.settings()
	completion := u.CompletionTokens
	if req.CompletionArgs != nil && req.CompletionArgs.MaxTokens != nil {
		completion = min(completion, max(*req.CompletionArgs.MaxTokens, 0))
	}
	usage := map[string]int{"prompt_tokens": u.PromptTokens, "completion_tokens": completion, "total_tokens": u.PromptTokens + completion}
	now := time.Now()
	output := map[string]any{
		"object": "entry", "type": "message.output", "created_at": timestamp(now), "completed_at": timestamp(now),
		"id": "msg_" + randomHex(16), "model": cv.model, "role": "assistant",
	}
	if cv.agentID != "" {
		output["agent_id"] = cv.agentID
	}
	output["content"] = strings.Repeat(word, st.Chunks)

	c.s.mu.Lock()
	cv.entries = append(cv.entries, inputs...)
	cv.entries = append(cv.entries, output)
	cv.updated = now
	if req.Store == nil || *req.Store {
		if _, ok := c.s.convs.get(cv.id); !ok {
			c.s.convs.add(cv.id, cv)
		}
	}
	c.s.mu.Unlock()

	if !req.Stream {
		c.ok(map[string]any{"object": "conversation.response", "conversation_id": cv.id, "outputs": []any{output}, "usage": usage})
		return
	}
	e := c.startEvents()
	if !e.sendJSON("conversation.response.started", map[string]any{"type": "conversation.response.started", "created_at": timestamp(now), "conversation_id": cv.id}) {
		return
	}
	for range st.Chunks {
		if !c.wait(st.Pause) {
			return
		}
		delta := map[string]any{
			"type": "message.output.delta", "created_at": timestamp(time.Now()), "output_index": 0, "id": output["id"],
			"content_index": 0, "model": cv.model, "role": "assistant", "content": word,
		}
		if cv.agentID != "" {
			delta["agent_id"] = cv.agentID
		}
		if !e.sendJSON("message.output.delta", delta) {
			return
		}
	}
	e.sendJSON("conversation.response.done", map[string]any{"type": "conversation.response.done", "created_at": timestamp(time.Now()), "usage": usage})
}

// startConversation starts a conversation with a model or an agent (which
// must exist).
func (s *Server) startConversation(c *call) {
	var req conversationRequest
	op, err := c.readConversation(&req, "agents_api_v1_conversations_start", "agents_api_v1_conversations_start_stream")
	if !c.arrived(op) {
		return
	}
	now := time.Now()
	inputs, ierr := inputEntries(req.Inputs, now)
	switch {
	case err != nil:
		c.invalidBody(err)
		return
	case req.Inputs == nil:
		c.missing("inputs")
		return
	case ierr != nil:
		c.invalid("value_error", ierr.Error(), "body", "inputs")
		return
	case req.AgentID == "" && req.Model == "":
		c.missing("model")
		return
	}
	cv := &conversation{id: "conv_" + randomHex(16), created: now, updated: now, model: req.Model}
	if req.AgentID != "" {
		s.mu.Lock()
		a, ok := s.agents.get(req.AgentID)
		if ok {
			cv.model = a.currentVersion().model()
		}
		s.mu.Unlock()
		if !ok {
			c.notFound("Agent", req.AgentID)
			return
		}
		cv.agentID = req.AgentID
		if present(req.raw, "agent_version") {
			cv.agentVersion = req.AgentVersion
		}
		cv.fields = pick(req.raw, agentConversationFields)
	} else {
		cv.fields = pick(req.raw, modelConversationFields)
	}
	c.run(cv, &req, inputs)
}

// listConversations lists conversations newest first.
func (s *Server) listConversations(c *call) {
	if !c.arrived("agents_api_v1_conversations_list") {
		return
	}
	index, ok := c.intQuery("page", 0, 0, 1<<30)
	if !ok {
		return
	}
	size, ok := c.intQuery("page_size", 100, 1, 1<<30)
	if !ok {
		return
	}
	var metadata map[string]any
	if v := c.r.URL.Query().Get("metadata"); v != "" {
		if json.Unmarshal([]byte(v), &metadata) != nil {
			c.invalid("json_invalid", "Input should be a JSON object", "query", "metadata")
			return
		}
	}
	s.mu.Lock()
	all := s.convs.all()
	slices.Reverse(all)
	var out []map[string]any
	for _, cv := range all {
		if metadataMatches(cv.fields["metadata"], metadata) {
			out = append(out, cv.json())
		}
	}
	s.mu.Unlock()
	c.ok(page(out, index, size))
}

// conversation looks up the conversation named by the path, answering 404
// when there is none; it is returned with the server locked.
func (c *call) conversation() (*conversation, bool) {
	id := c.r.PathValue("conversation_id")
	c.s.mu.Lock()
	cv, ok := c.s.convs.get(id)
	if !ok {
		c.s.mu.Unlock()
		c.notFound("Conversation", id)
	}
	return cv, ok
}

func (s *Server) getConversation(c *call) {
	if !c.arrived("agents_api_v1_conversations_get") {
		return
	}
	if cv, ok := c.conversation(); ok {
		out := cv.json()
		s.mu.Unlock()
		c.ok(out)
	}
}

func (s *Server) deleteConversation(c *call) {
	if !c.arrived("agents_api_v1_conversations_delete") {
		return
	}
	if cv, ok := c.conversation(); ok {
		s.convs.remove(cv.id)
		s.mu.Unlock()
		c.w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) conversationHistory(c *call) {
	if !c.arrived("agents_api_v1_conversations_history") {
		return
	}
	if cv, ok := c.conversation(); ok {
		entries := slices.Clone(cv.entries)
		s.mu.Unlock()
		c.ok(map[string]any{"object": "conversation.history", "conversation_id": cv.id, "entries": entries})
	}
}

// conversationMessages answers the entries that are messages.
func (s *Server) conversationMessages(c *call) {
	if !c.arrived("agents_api_v1_conversations_messages") {
		return
	}
	if cv, ok := c.conversation(); ok {
		messages := []map[string]any{}
		for _, e := range cv.entries {
			if t := e["type"]; t == "message.input" || t == "message.output" {
				messages = append(messages, e)
			}
		}
		s.mu.Unlock()
		c.ok(map[string]any{"object": "conversation.messages", "conversation_id": cv.id, "messages": messages})
	}
}

// appendConversation runs the conversation on with new inputs.
func (s *Server) appendConversation(c *call) {
	var req conversationRequest
	op, err := c.readConversation(&req, "agents_api_v1_conversations_append", "agents_api_v1_conversations_append_stream")
	if !c.arrived(op) {
		return
	}
	inputs, ierr := inputEntries(req.Inputs, time.Now())
	switch {
	case err != nil:
		c.invalidBody(err)
		return
	case ierr != nil:
		c.invalid("value_error", ierr.Error(), "body", "inputs")
		return
	}
	cv, ok := c.conversation()
	if !ok {
		return
	}
	s.mu.Unlock()
	if req.Store != nil && !*req.Store {
		cv = cv.copyUpTo(len(cv.entries))
	}
	c.run(cv, &req, inputs)
}

// copyUpTo returns a copy of cv with its first n entries; the caller holds
// the server's lock or owns cv.
func (cv *conversation) copyUpTo(n int) *conversation {
	cp := *cv
	cp.entries = slices.Clone(cv.entries[:n])
	return &cp
}

// restartConversation starts a new conversation from the entries before
// from_entry_id (which must be one of the conversation's), with the new
// inputs.
func (s *Server) restartConversation(c *call) {
	var req conversationRequest
	op, err := c.readConversation(&req, "agents_api_v1_conversations_restart", "agents_api_v1_conversations_restart_stream")
	if !c.arrived(op) {
		return
	}
	now := time.Now()
	inputs, ierr := inputEntries(req.Inputs, now)
	switch {
	case err != nil:
		c.invalidBody(err)
		return
	case req.FromEntryID == "":
		c.missing("from_entry_id")
		return
	case ierr != nil:
		c.invalid("value_error", ierr.Error(), "body", "inputs")
		return
	}
	cv, ok := c.conversation()
	if !ok {
		return
	}
	at := slices.IndexFunc(cv.entries, func(e map[string]any) bool { return e["id"] == req.FromEntryID })
	if at < 0 {
		s.mu.Unlock()
		c.notFound("Entry", req.FromEntryID)
		return
	}
	restarted := cv.copyUpTo(at)
	s.mu.Unlock()
	restarted.id, restarted.created, restarted.updated = "conv_"+randomHex(16), now, now
	restarted.fields = maps.Clone(restarted.fields)
	if present(req.raw, "metadata") {
		restarted.fields["metadata"] = req.raw["metadata"]
	}
	if present(req.raw, "agent_version") && restarted.agentID != "" {
		restarted.agentVersion = req.AgentVersion
	}
	c.run(restarted, &req, inputs)
}
