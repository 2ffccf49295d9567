package apitest

import (
	"strings"
	"testing"
)

// TestModelOperations: the document's 78 operations, each with its own
// operationId, a method and a path under /v1, the streamed variants
// included.
func TestModelOperations(t *testing.T) {
	ops := ModelOperations(t)
	if len(ops) != 78 {
		t.Fatalf("%d operations, want 78", len(ops))
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if op.ID == "" || seen[op.ID] || !strings.HasPrefix(op.Path, "/v1/") {
			t.Errorf("operation %+v: an empty or repeated id, or a path outside /v1", op)
		}
		seen[op.ID] = true
	}
	for _, want := range []ModelOperation{
		{ID: "chat_completion_v1_chat_completions_post", Method: "POST", Path: "/v1/chat/completions"},
		{ID: "agents_api_v1_conversations_start_stream", Method: "POST", Path: "/v1/conversations#stream"},
		{ID: "get_voice_sample_audio_v1_audio_voices__voice_id__sample_get", Method: "GET", Path: "/v1/audio/voices/{voice_id}/sample"},
	} {
		found := false
		for _, op := range ops {
			found = found || op == want
		}
		if !found {
			t.Errorf("no operation %+v", want)
		}
	}
}

// TestCheckModelResponse: an answer passes when it matches the schema of
// its operation, status and media type, and fails naming what breaks it;
// streams are checked event by event, ChatCompletionResponse's "data" is
// not asked for, and the speech stream's schema, which libopenapi cannot
// build, is checked all the same.
func TestCheckModelResponse(t *testing.T) {
	if !modelLoaded(t) {
		t.Skip("Mistral's model API document is missing")
	}
	const (
		chat   = "chat_completion_v1_chat_completions_post"
		speech = "speech_v1_audio_speech_post"
		usage  = `"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}`
		answer = `{"id":"c","object":"chat.completion","model":"m","created":1,` + usage + `,"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`
	)
	for _, c := range []struct {
		name, op    string
		status      int
		contentType string
		body        string
		wants       []string
	}{
		{"chat", chat, 200, "application/json", answer, nil},
		{"chat with a charset", chat, 200, "application/json; charset=utf-8", answer, nil},
		{"chat without usage", chat, 200, "application/json", strings.Replace(answer, usage+",", "", 1), []string{"usage"}},
		{"chat with a bad finish_reason", chat, 200, "application/json", strings.Replace(answer, `"stop"`, `"cut"`, 1), []string{"finish_reason"}},
		{"a status not documented", chat, 201, "application/json", answer, []string{"201"}},
		{"a media type not documented", chat, 200, "text/plain", "hi", []string{"text/plain"}},
		{"a stream", chat, 200, "text/event-stream", "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n", nil},
		{"a stream with a bad chunk", chat, 200, "text/event-stream", "data: {\"id\":\"c\",\"choices\":[]}\n\ndata: [DONE]\n\n", []string{"model"}},
		{"a stream whose data is not JSON", chat, 200, "text/event-stream", "data: {\"id\"\n\n", []string{"not JSON"}},
		{"an empty stream", chat, 200, "text/event-stream", "", []string{"no event"}},
		{"a speech stream", speech, 200, "text/event-stream", "event: speech.audio.delta\ndata: {\"type\":\"speech.audio.delta\",\"audio_data\":\"UklG\"}\n\nevent: speech.audio.done\ndata: {\"type\":\"speech.audio.done\",\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}\n\n", nil},
		{"a speech stream with a bad event", speech, 200, "text/event-stream", "event: speech.audio.delta\ndata: {\"type\":\"speech.audio.delta\",\"audio\":\"UklG\"}\n\n", []string{"audio_data"}},
		{"speech", speech, 200, "application/json", `{"audio_data":"UklG"}`, nil},
		{"no content", "agents_api_v1_agents_delete", 204, "", "", nil},
		{"a body where none is documented", "agents_api_v1_agents_delete", 204, "application/json", "{}", []string{"with a body"}},
		{"binary content", "files_api_routes_download_file", 200, "application/octet-stream", "\x00\x01", nil},
		{"a conversation event", "agents_api_v1_conversations_start_stream", 200, "text/event-stream", "event: conversation.response.started\ndata: {\"type\":\"conversation.response.started\",\"conversation_id\":\"c\"}\n\n", nil},
		{"a conversation event without its name", "agents_api_v1_conversations_start_stream", 200, "text/event-stream", "data: {\"type\":\"conversation.response.started\",\"conversation_id\":\"c\"}\n\n", []string{"event"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			CheckModelResponse(rec, c.op, c.status, c.contentType, []byte(c.body))
			if c.wants == nil {
				expectPass(t, rec)
				return
			}
			expectFailure(t, rec, c.wants...)
		})
	}
	rec := &recorder{TB: t}
	CheckModelResponse(rec, "no_such_operation", 200, "application/json", []byte(`{}`))
	if len(rec.fatals) != 1 {
		t.Fatalf("an unknown operation: %q, want one fatal error", rec.failures())
	}
}
