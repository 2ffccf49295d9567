package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/stewardhq/steward/internal/inference"
)

// Objects of the metered operations. An agents completion or a
// conversation may name an agent, a speech a voice, and any of them files
// (fileChunks): each must be the caller's Workspace's (a preset voice is
// everyone's). A conversation appended to or restarted must be the
// caller's, and the conversation a start or restart makes becomes the
// caller's. Without a default upstream there are no records, so that
// every object named is unknown.

// meteredRefs are the checks of the metered operations' bodies.
var meteredRefs = map[string]bodyCheck{
	EndpointAgents:        agentIDRef,
	EndpointConversations: agentIDRef,
	EndpointSpeech:        voiceRef,
}

// agentIDRef: the agent a request names must be the caller's Workspace's.
func agentIDRef(_ context.Context, f *forwarding, top map[string]json.RawMessage) bool {
	var agent *string
	return f.field(top, "agent_id", &agent) && (agent == nil || f.ownsAll(inference.ObjectAgent, []string{*agent}))
}

// voiceRef: the voice a speech names must be the caller's Workspace's,
// or a preset.
func voiceRef(_ context.Context, f *forwarding, top map[string]json.RawMessage) bool {
	var voice *string
	if !f.field(top, "voice_id", &voice) || voice == nil {
		return voice == nil
	}
	mine, err := f.owns(inference.ObjectVoice, *voice)
	switch {
	case err != nil:
		f.x.fail(err)
		return false
	case mine || f.x.g.upstream != nil && f.preset(f.x.r.Context(), *voice):
		return true
	}
	f.notFound(inference.ObjectVoice, *voice)
	return false
}

// meteredObjects checks the objects a metered request names, in its path
// and its body, before it is served; the body read is put back for the
// exchange to read again. A conversation's answer is watched for the
// conversation it makes. It returns false when it has answered.
func (x *exchange) meteredObjects() bool {
	f := &forwarding{x: x}
	if id := x.r.PathValue("conversation_id"); id != "" {
		mine, err := x.ownedBy(inference.ObjectConversation, id)
		if err != nil {
			x.fail(err)
			return false
		}
		if !mine {
			f.notFound(inference.ObjectConversation, id)
			return false
		}
	}
	if check := meteredRefs[x.op.endpoint]; check != nil {
		data := f.checkBody(x.r.Context(), http.MaxBytesReader(x.w, x.r.Body, maxBodyBytes), check)
		if data == nil {
			return false
		}
		x.r.Body = io.NopCloser(bytes.NewReader(data))
	}
	creates := x.op.endpoint == EndpointConversations && x.r.PathValue("conversation_id") == "" || x.r.Pattern == "POST /v1/conversations/{conversation_id}/restart"
	if creates && x.g.objects != nil {
		x.w = &conversationWriter{ResponseWriter: x.w, f: f}
	}
	return true
}

// ownedBy is owned for the request's key; without records nothing is.
func (x *exchange) ownedBy(kind, id string) (bool, error) {
	if x.g.objects == nil {
		return false, nil
	}
	return x.g.owned(x.r.Context(), x.key, kind, id)
}

// conversationIDRE finds the conversation a conversation's answer names:
// a JSON member, never a string's content, whose quotes are escaped.
var conversationIDRE = regexp.MustCompile(`"conversation_id"\s*:\s*"([^"\\]+)"`)

// maxSniffBytes bounds what of an answer is searched for its
// conversation: it comes first, in the answer or its first event.
const maxSniffBytes = 64 << 10

// conversationWriter records the conversation a successful start or
// restart makes as the caller's Workspace's, from the first bytes of the
// answer, streamed or not, before they reach the client.
type conversationWriter struct {
	http.ResponseWriter
	f      *forwarding
	status int
	seen   []byte
	done   bool
}

func (w *conversationWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *conversationWriter) Write(p []byte) (int, error) {
	if !w.done && (w.status == 0 || w.status/100 == 2) {
		w.seen = append(w.seen, p[:min(len(p), maxSniffBytes-len(w.seen))]...)
		if m := conversationIDRE.FindSubmatch(w.seen); m != nil {
			w.done = true
			if err := w.f.record(inference.ObjectConversation, string(m[1])); err != nil {
				w.f.x.logAttrs(w.f.x.r.Context(), slog.LevelError, "recording a conversation failed", slog.String("err", err.Error()))
			}
		} else if len(w.seen) >= maxSniffBytes {
			w.done = true
		}
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController flush the client's writer.
func (w *conversationWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// fileIDMember pre-filters the bodies that may name files, so that a chat
// request that names none pays no second parse.
var fileIDMember = []byte(`"file_id"`)

// fileChunks returns the files a JSON body names, wherever they stand: a
// file chunk in a chat message's content, an agents completion's or a
// conversation's inputs, an OCR document. Every object with a string
// "file_id" names one, but a tool's file ("type": "tool_file"), which the
// upstream's tool made.
func fileChunks(body []byte) []string {
	if !bytes.Contains(body, fileIDMember) {
		return nil
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var ids []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if id, ok := v["file_id"].(string); ok && v["type"] != "tool_file" {
				ids = append(ids, id)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return ids
}

// ownsFileChunks checks that the files body's file chunks name are the
// caller's Workspace's, answering 404 for the first that is not, as the
// upstream answers an unknown file. It returns false when it has answered.
func (x *exchange) ownsFileChunks(body []byte) bool {
	ids := fileChunks(body)
	return len(ids) == 0 || (&forwarding{x: x}).ownsAll(inference.ObjectFile, ids)
}
