package mistraltest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// voice is a preset voice or one a caller made from a sample.
type voice struct {
	id, name  string
	fields    map[string]json.RawMessage
	retention int
	created   time.Time
	sample    []byte
	preset    bool
}

// voiceFields are the members of a voice its requests set, besides its
// name and retention notice.
var voiceFields = []string{"slug", "languages", "gender", "age", "tags", "color"}

func (s *Server) voiceJSON(v *voice) map[string]any {
	out := map[string]any{}
	for k, raw := range v.fields {
		out[k] = raw
	}
	var user any
	if !v.preset {
		user = s.user
	}
	out["name"] = v.name
	out["retention_notice"] = v.retention
	out["id"] = v.id
	out["created_at"] = timestamp(v.created)
	out["user_id"] = user
	return out
}

// voice finds a voice by id or slug; the caller holds the server's lock.
func (s *Server) voice(ref string) (*voice, bool) {
	if v, ok := s.voices.get(ref); ok {
		return v, true
	}
	for _, v := range s.voices.all() {
		var slug string
		if json.Unmarshal(v.fields["slug"], &slug) == nil && slug == ref {
			return v, true
		}
	}
	return nil, false
}

// listVoices lists voices by limit and offset, all of them or only the
// custom or preset ones.
func (s *Server) listVoices(c *call) {
	if !c.arrived("list_voices_v1_audio_voices_get") {
		return
	}
	limit, ok := c.intQuery("limit", 10, 1, 100)
	if !ok {
		return
	}
	offset, ok := c.intQuery("offset", 0, 0, 1<<30)
	if !ok {
		return
	}
	kind := c.r.URL.Query().Get("type")
	if kind != "" && kind != "all" && kind != "custom" && kind != "preset" {
		c.invalid("enum", "Input should be 'all', 'custom' or 'preset'", "query", "type")
		return
	}
	s.mu.Lock()
	var matched []map[string]any
	for _, v := range s.voices.all() {
		if kind == "custom" && v.preset || kind == "preset" && !v.preset {
			continue
		}
		matched = append(matched, s.voiceJSON(v))
	}
	s.mu.Unlock()
	items := []map[string]any{}
	if offset < len(matched) {
		items = matched[offset:min(offset+limit, len(matched))]
	}
	c.ok(map[string]any{
		"items":       items,
		"total":       len(matched),
		"page":        offset/limit + 1,
		"page_size":   limit,
		"total_pages": (len(matched) + limit - 1) / limit,
	})
}

// createVoice makes a custom voice from a base64 sample.
func (s *Server) createVoice(c *call) {
	body, err := c.decodeObject()
	if !c.arrived("create_voice_v1_audio_voices_post") {
		return
	}
	var req struct {
		Name        *string `json:"name"`
		SampleAudio *string `json:"sample_audio"`
		Retention   *int    `json:"retention_notice"`
	}
	if err == nil {
		b, _ := json.Marshal(body)
		err = json.Unmarshal(b, &req)
	}
	switch {
	case err != nil:
		c.invalidBody(err)
		return
	case req.Name == nil:
		c.missing("name")
		return
	case req.SampleAudio == nil:
		c.missing("sample_audio")
		return
	}
	sample, err := base64.StdEncoding.DecodeString(*req.SampleAudio)
	if err != nil {
		c.invalid("value_error", "sample_audio is not base64: "+err.Error(), "body", "sample_audio")
		return
	}
	v := &voice{id: uuid.NewString(), name: *req.Name, fields: pick(body, voiceFields), retention: 30, created: time.Now(), sample: sample}
	if req.Retention != nil {
		v.retention = *req.Retention
	}
	s.mu.Lock()
	s.voices.add(v.id, v)
	out := s.voiceJSON(v)
	s.mu.Unlock()
	c.ok(out)
}

// customVoice looks up the voice named by the path, answering 422 when
// the id is not a UUID, 404 when there is no such voice and 403 when it is
// a preset, which cannot change; it is returned with the server locked.
func (c *call) customVoice() (*voice, bool) {
	v, ok := lookup(c, "voice_id", "Voice", &c.s.voices)
	if ok && v.preset {
		c.s.mu.Unlock()
		c.fail(http.StatusForbidden, "Preset voice "+v.id+" cannot be changed")
		return nil, false
	}
	return v, ok
}

func (s *Server) getVoice(c *call) {
	if !c.arrived("get_voice_v1_audio_voices__voice_id__get") {
		return
	}
	ref := c.r.PathValue("voice_id")
	s.mu.Lock()
	v, ok := s.voice(ref)
	var out map[string]any
	if ok {
		out = s.voiceJSON(v)
	}
	s.mu.Unlock()
	if !ok {
		c.notFound("Voice", ref)
		return
	}
	c.ok(out)
}

// updateVoice sets the members the request gives (a null leaves one as it
// was).
func (s *Server) updateVoice(c *call) {
	body, err := c.decodeObject()
	if !c.arrived("update_voice_v1_audio_voices__voice_id__patch") {
		return
	}
	if err != nil {
		c.invalidBody(err)
		return
	}
	var name string
	if present(body, "name") && json.Unmarshal(body["name"], &name) != nil {
		c.invalid("string_type", "Input should be a valid string", "body", "name")
		return
	}
	v, ok := c.customVoice()
	if !ok {
		return
	}
	if name != "" {
		v.name = name
	}
	for k, raw := range pick(body, []string{"languages", "gender", "age", "tags"}) {
		v.fields[k] = raw
	}
	out := s.voiceJSON(v)
	s.mu.Unlock()
	c.ok(out)
}

// deleteVoice deletes a custom voice and answers it.
func (s *Server) deleteVoice(c *call) {
	if !c.arrived("delete_voice_v1_audio_voices__voice_id__delete") {
		return
	}
	v, ok := c.customVoice()
	if !ok {
		return
	}
	out := s.voiceJSON(v)
	s.voices.remove(v.id)
	s.mu.Unlock()
	c.ok(out)
}

// voiceSample answers a custom voice's sample as it was given, a preset's
// as a short silent WAV.
func (s *Server) voiceSample(c *call) {
	if !c.arrived("get_voice_sample_audio_v1_audio_voices__voice_id__sample_get") {
		return
	}
	ref := c.r.PathValue("voice_id")
	s.mu.Lock()
	v, ok := s.voice(ref)
	var sample []byte
	if ok {
		sample = v.sample
	}
	s.mu.Unlock()
	if !ok {
		c.notFound("Voice", ref)
		return
	}
	if sample == nil {
		sample = wav(1600)
	}
	c.w.Header().Set("Content-Type", "audio/wav")
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(sample)
}
