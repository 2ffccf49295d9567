package mistraltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// agentVersion is one version of an agent: the members of the request
// that made it.
type agentVersion struct {
	fields         map[string]json.RawMessage
	deploymentChat bool
	created        time.Time
}

// model is the model the version runs.
func (v *agentVersion) model() string {
	var m string
	_ = json.Unmarshal(v.fields["model"], &m)
	return m
}

// agent is an agent with every version it has had; versions count from 0.
type agent struct {
	id       string
	created  time.Time
	versions []*agentVersion
	current  int
	aliases  map[string]*agentAlias
}

type agentAlias struct {
	version          int
	created, updated time.Time
}

func (a *agent) currentVersion() *agentVersion { return a.versions[a.current] }

// agentFields are the members of an agent that its requests set.
var agentFields = []string{"instructions", "tools", "completion_args", "guardrails", "model", "name", "handoffs", "metadata", "version_message"}

// json is the agent as it was at version.
func (a *agent) json(version int) map[string]any {
	v := a.versions[version]
	out := map[string]any{}
	for k, raw := range v.fields {
		out[k] = raw
	}
	versions := make([]int, len(a.versions))
	for i := range versions {
		versions[i] = i
	}
	out["object"] = "agent"
	out["id"] = a.id
	out["version"] = version
	out["versions"] = versions
	out["created_at"] = timestamp(a.created)
	out["updated_at"] = timestamp(v.created)
	out["deployment_chat"] = v.deploymentChat
	out["source"] = "api"
	return out
}

// version resolves an agent_version: a version number or an alias.
func (a *agent) version(ref string) (int, bool) {
	if n, err := strconv.Atoi(ref); err == nil {
		return n, n >= 0 && n < len(a.versions)
	}
	if al, ok := a.aliases[ref]; ok {
		return al.version, true
	}
	return 0, false
}

// decodeObject reads the request's body as a JSON object.
func (c *call) decodeObject() (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	err := c.decode(&m)
	if err == nil && m == nil {
		err = fmt.Errorf("the body is not an object")
	}
	return m, err
}

// present reports whether m has key with a value other than null.
func present(m map[string]json.RawMessage, key string) bool {
	raw, ok := m[key]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// pick returns the members of m among keys, leaving out nulls.
func pick(m map[string]json.RawMessage, keys []string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, k := range keys {
		if present(m, k) {
			out[k] = m[k]
		}
	}
	return out
}

// isString reports whether raw is a JSON string.
func isString(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil
}

func (s *Server) createAgent(c *call) {
	body, err := c.decodeObject()
	if !c.arrived("agents_api_v1_agents_create") {
		return
	}
	switch {
	case err != nil:
		c.invalidBody(err)
		return
	case !present(body, "model") || !isString(body["model"]):
		c.missing("model")
		return
	case !present(body, "name") || !isString(body["name"]):
		c.missing("name")
		return
	}
	now := time.Now()
	a := &agent{
		id:       "ag_" + randomHex(16),
		created:  now,
		versions: []*agentVersion{{fields: pick(body, agentFields), created: now}},
		aliases:  map[string]*agentAlias{},
	}
	s.mu.Lock()
	s.agents.add(a.id, a)
	out := a.json(0)
	s.mu.Unlock()
	c.ok(out)
}

// agentsMatching returns the current versions of the agents the query's
// filters (name, search, id, deployment_chat, metadata) let through,
// oldest first; it answers 422 for a filter it cannot read.
func (c *call) agentsMatching() ([]map[string]any, bool) {
	q := c.r.URL.Query()
	var metadata map[string]any
	if v := q.Get("metadata"); v != "" {
		if json.Unmarshal([]byte(v), &metadata) != nil {
			c.invalid("json_invalid", "Input should be a JSON object", "query", "metadata")
			return nil, false
		}
	}
	var out []map[string]any
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, a := range c.s.agents.all() {
		v := a.currentVersion()
		var name string
		_ = json.Unmarshal(v.fields["name"], &name)
		if q.Has("name") && name != q.Get("name") ||
			q.Has("search") && !contains(name, q.Get("search")) && !contains(a.id, q.Get("search")) ||
			q.Has("id") && a.id != q.Get("id") ||
			q.Has("deployment_chat") && strconv.FormatBool(v.deploymentChat) != q.Get("deployment_chat") ||
			!metadataMatches(v.fields["metadata"], metadata) {
			continue
		}
		out = append(out, a.json(a.current))
	}
	return out, true
}

// metadataMatches reports whether the object raw holds every member of
// want with its value.
func metadataMatches(raw json.RawMessage, want map[string]any) bool {
	if len(want) == 0 {
		return true
	}
	var have map[string]any
	_ = json.Unmarshal(raw, &have)
	for k, v := range want {
		if !reflect.DeepEqual(have[k], v) {
			return false
		}
	}
	return true
}

func (s *Server) listAgents(c *call) {
	if !c.arrived("agents_api_v1_agents_list") {
		return
	}
	index, ok := c.intQuery("page", 0, 0, 1<<30)
	if !ok {
		return
	}
	size, ok := c.intQuery("page_size", 20, 1, 1000)
	if !ok {
		return
	}
	if all, ok := c.agentsMatching(); ok {
		c.ok(page(all, index, size))
	}
}

// listAgentPages pages by an opaque cursor, next_page_token null on the
// last page.
func (s *Server) listAgentPages(c *call) {
	if !c.arrived("agents_api_v1_agents_list_pages") {
		return
	}
	size, ok := c.intQuery("page_size", 20, 1, 1000)
	if !ok {
		return
	}
	offset, ok := offsetOf(c.r.URL.Query().Get("page_token"))
	if !ok {
		c.invalid("value_error", "Invalid page token", "query", "page_token")
		return
	}
	all, ok := c.agentsMatching()
	if !ok {
		return
	}
	data := []map[string]any{}
	if offset < len(all) {
		data = all[offset:min(offset+size, len(all))]
	}
	var next any
	if offset+size < len(all) {
		next = pageToken(offset + size)
	}
	c.ok(map[string]any{"object": "list", "data": data, "next_page_token": next})
}

// agent looks up the agent named by the path, answering 404 when there is
// none; it is returned with the server locked.
func (c *call) agent() (*agent, bool) {
	id := c.r.PathValue("agent_id")
	c.s.mu.Lock()
	a, ok := c.s.agents.get(id)
	if !ok {
		c.s.mu.Unlock()
		c.notFound("Agent", id)
	}
	return a, ok
}

// getAgent answers the current version, or the one agent_version (a
// number or an alias) names.
func (s *Server) getAgent(c *call) {
	if !c.arrived("agents_api_v1_agents_get") {
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	version := a.current
	if ref := c.r.URL.Query().Get("agent_version"); ref != "" {
		if version, ok = a.version(ref); !ok {
			s.mu.Unlock()
			c.notFound("Agent version", ref)
			return
		}
	}
	out := a.json(version)
	s.mu.Unlock()
	c.ok(out)
}

// updateAgent makes a new version from the current one and the request's
// members (a null leaves a member as it was), and makes it current.
func (s *Server) updateAgent(c *call) {
	body, err := c.decodeObject()
	if !c.arrived("agents_api_v1_agents_update") {
		return
	}
	if err != nil {
		c.invalidBody(err)
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	cur := a.currentVersion()
	next := &agentVersion{fields: map[string]json.RawMessage{}, deploymentChat: cur.deploymentChat, created: time.Now()}
	for k, v := range cur.fields {
		if k != "version_message" {
			next.fields[k] = v
		}
	}
	for k, v := range pick(body, agentFields) {
		next.fields[k] = v
	}
	if present(body, "deployment_chat") {
		_ = json.Unmarshal(body["deployment_chat"], &next.deploymentChat)
	}
	a.versions = append(a.versions, next)
	a.current = len(a.versions) - 1
	out := a.json(a.current)
	s.mu.Unlock()
	c.ok(out)
}

func (s *Server) deleteAgent(c *call) {
	if !c.arrived("agents_api_v1_agents_delete") {
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	s.agents.remove(a.id)
	s.mu.Unlock()
	c.w.WriteHeader(http.StatusNoContent)
}

// switchAgentVersion makes the version the query names current.
func (s *Server) switchAgentVersion(c *call) {
	if !c.arrived("agents_api_v1_agents_update_version") {
		return
	}
	v := c.r.URL.Query().Get("version")
	n, err := strconv.Atoi(v)
	if err != nil {
		c.invalid("int_parsing", "Input should be a valid integer", "query", "version")
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	if n < 0 || n >= len(a.versions) {
		s.mu.Unlock()
		c.notFound("Agent version", v)
		return
	}
	a.current = n
	out := a.json(n)
	s.mu.Unlock()
	c.ok(out)
}

// listAgentVersions lists the agent's versions, oldest first.
func (s *Server) listAgentVersions(c *call) {
	if !c.arrived("agents_api_v1_agents_list_versions") {
		return
	}
	index, ok := c.intQuery("page", 0, 0, 1<<30)
	if !ok {
		return
	}
	size, ok := c.intQuery("page_size", 20, 1, 100)
	if !ok {
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	all := make([]map[string]any, len(a.versions))
	for i := range all {
		all[i] = a.json(i)
	}
	s.mu.Unlock()
	c.ok(page(all, index, size))
}

func (s *Server) getAgentVersion(c *call) {
	if !c.arrived("agents_api_v1_agents_get_version") {
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	ref := c.r.PathValue("version")
	version, ok := a.version(ref)
	if !ok {
		s.mu.Unlock()
		c.notFound("Agent version", ref)
		return
	}
	out := a.json(version)
	s.mu.Unlock()
	c.ok(out)
}

// aliasPattern is what the document allows an alias to be.
var aliasPattern = regexp.MustCompile(`^[a-z]([a-z0-9_-]*[a-z0-9])?$`)

func aliasJSON(name string, al *agentAlias) map[string]any {
	return map[string]any{"alias": name, "version": al.version, "created_at": timestamp(al.created), "updated_at": timestamp(al.updated)}
}

// putAgentAlias points an alias, new or not, at an existing version.
func (s *Server) putAgentAlias(c *call) {
	if !c.arrived("agents_api_v1_agents_create_or_update_alias") {
		return
	}
	q := c.r.URL.Query()
	name := q.Get("alias")
	if len(name) > 64 || !aliasPattern.MatchString(name) {
		c.invalid("string_pattern_mismatch", "String should match pattern '"+aliasPattern.String()+"'", "query", "alias")
		return
	}
	n, err := strconv.Atoi(q.Get("version"))
	if err != nil {
		c.invalid("int_parsing", "Input should be a valid integer", "query", "version")
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if n < 0 || n >= len(a.versions) {
		c.notFound("Agent version", q.Get("version"))
		return
	}
	now := time.Now()
	al := a.aliases[name]
	if al == nil {
		al = &agentAlias{created: now}
		a.aliases[name] = al
	}
	al.version, al.updated = n, now
	c.ok(aliasJSON(name, al))
}

// listAgentAliases lists the agent's aliases by name.
func (s *Server) listAgentAliases(c *call) {
	if !c.arrived("agents_api_v1_agents_list_version_aliases") {
		return
	}
	a, ok := c.agent()
	if !ok {
		return
	}
	names := make([]string, 0, len(a.aliases))
	for name := range a.aliases {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]map[string]any, len(names))
	for i, name := range names {
		out[i] = aliasJSON(name, a.aliases[name])
	}
	s.mu.Unlock()
	c.ok(out)
}

func (s *Server) deleteAgentAlias(c *call) {
	if !c.arrived("agents_api_v1_agents_delete_alias") {
		return
	}
	name := c.r.URL.Query().Get("alias")
	a, ok := c.agent()
	if !ok {
		return
	}
	_, ok = a.aliases[name]
	delete(a.aliases, name)
	s.mu.Unlock()
	if !ok {
		c.notFound("Agent alias", name)
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}
