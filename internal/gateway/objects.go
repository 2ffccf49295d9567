package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

// Objects owned by Workspaces. Every Workspace reaches the default
// upstream with the same key, so the gateway keeps each object created
// through it to the Workspace whose key created it: an object of another
// Workspace, or one not created through Steward, is answered 404 exactly
// as the upstream answers an unknown id, and lists hold only the caller's
// objects.

// ref is a wildcard of a path that names an object of kind.
type ref struct{ wildcard, kind string }

// objectNames name each kind in a not-found answer, as Mistral's do.
var objectNames = map[string]string{
	inference.ObjectFile: "File", inference.ObjectBatchJob: "Batch job", inference.ObjectAgent: "Agent",
	inference.ObjectConversation: "Conversation", inference.ObjectLibrary: "Library", inference.ObjectDocument: "Document",
	inference.ObjectVoice: "Voice", inference.ObjectFineTunedModel: "Fine-tuned model",
}

// notFound answers as the upstream answers an unknown id of kind.
func (f *forwarding) notFound(kind, id string) {
	f.x.failStatus(http.StatusNotFound, "not_found_error", "", fmt.Sprintf("%s %s not found", objectNames[kind], id))
}

// owns reports whether the object of kind with the upstream's id is the
// caller's Workspace's. A failure to read the records is an error, so
// that nothing is reached that was not checked.
// What is found to be the caller's is remembered for the request, so that
// the lines of a batch job's input files that name one object cost one
// lookup.
func (f *forwarding) owns(kind, id string) (bool, error) {
	k := [2]string{kind, id}
	if f.mine[k] {
		return true, nil
	}
	mine, err := f.x.ownedBy(kind, id)
	if mine {
		if f.mine == nil {
			f.mine = map[[2]string]bool{}
		}
		f.mine[k] = true
	}
	return mine, err
}

// owned reports whether the object of kind with the upstream's id is p's
// Workspace's: what every operation naming an object asks, the metered
// ones too (an agent, a file or a voice a request names).
func (g *Gateway) owned(ctx context.Context, p steward.Principal, kind, id string) (bool, error) {
	o, err := g.objects.Find(ctx, kind, id)
	switch {
	case steward.IsKind(err, steward.KindNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return o.OrganizationID == p.OrganizationID && o.WorkspaceID == p.WorkspaceID, nil
}

// admitObjects checks that the objects the path names are the caller's,
// or answers 404 for the first that is not. A preset voice (no owner
// upstream) may be read by every Workspace.
func (f *forwarding) admitObjects(ctx context.Context) bool {
	for _, rf := range f.op.owned {
		id := f.x.r.PathValue(rf.wildcard)
		mine, err := f.owns(rf.kind, id)
		if err != nil {
			f.x.fail(err)
			return false
		}
		if !mine && rf.kind == inference.ObjectVoice && f.x.r.Method == http.MethodGet && f.preset(ctx, id) {
			continue
		}
		if !mine {
			f.notFound(rf.kind, id)
			return false
		}
	}
	return true
}

// preset reports whether the upstream's voice id is a preset voice, one
// with no user.
func (f *forwarding) preset(ctx context.Context, id string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.x.g.upstream.BaseURL+"/audio/voices/"+url.PathEscape(id), nil)
	if err != nil {
		return false
	}
	f.x.g.upstream.authorize(req, f.x.id)
	resp, err := f.x.g.transport.RoundTrip(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var v struct {
		ID     string          `json:"id"`
		UserID json.RawMessage `json:"user_id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v) != nil {
		return false
	}
	return v.ID != "" && absent(v.UserID)
}

// recordContext is the context of a change to the records: the request's
// values without its cancellation, since the upstream has made the change
// it records, bounded by recordTimeout.
func (f *forwarding) recordContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(f.x.r.Context()), recordTimeout)
}

// record stores an object of kind the upstream created for the caller.
func (f *forwarding) record(kind, id string) error {
	ctx, cancel := f.recordContext()
	defer cancel()
	return f.x.g.objects.Record(ctx, inference.Object{Kind: kind, ID: id, OrganizationID: f.x.key.OrganizationID,
		WorkspaceID: f.x.key.WorkspaceID, KeyID: f.x.key.CredentialID, Created: f.x.g.now()})
}

// bodyCheck checks the objects and the model a request's body names, by
// their exact top-level names as the upstream reads them (encoding/json
// would also take a field spelt in another case, which the upstream
// ignores, and so check other ids than it uses). It answers and returns
// false when one is not the caller's.
type bodyCheck func(ctx context.Context, f *forwarding, top map[string]json.RawMessage) bool

// batchJobRefs: a batch job's input files and agent must be the caller's
// Workspace's, and its model one the key may call; so must those each of
// its requests names in its body (its model, its agent, the files of its
// messages): its inline requests, and the lines of its input files, which
// are read from the upstream (checkInputFile).
func batchJobRefs(ctx context.Context, f *forwarding, top map[string]json.RawMessage) bool {
	var files []string
	var requests []map[string]json.RawMessage
	if !f.field(top, "input_files", &files) || !f.field(top, "requests", &requests) || !f.ownsAll(inference.ObjectFile, files) || !modelRefs(f, top) {
		return false
	}
	for _, req := range requests {
		var body map[string]json.RawMessage
		if !f.field(req, "body", &body) || !modelRefs(f, body) || !f.ownsAll(inference.ObjectFile, fileChunks(req["body"])) {
			return false
		}
	}
	for i, id := range files {
		if !f.checkInputFile(ctx, i, id) {
			return false
		}
	}
	return true
}

// checkInputFile reads the input file id (the job's i-th) from the upstream
// and checks what each of its lines names in its body as an inline
// request's: otherwise a job could have the upstream read another
// Workspace's file, or call a model the key may not, from a file it
// uploaded. A line that is not a JSON object with an object body whose
// agent_id and model are strings (which the upstream may read otherwise
// than Go does), or is longer than a request body, is refused, so that
// nothing reaches the upstream that was not checked.
func (f *forwarding) checkInputFile(ctx context.Context, i int, id string) bool {
	x := f.x
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, x.g.upstream.BaseURL+"/files/"+url.PathEscape(id)+"/content", nil)
	if err != nil {
		x.fail(err)
		return false
	}
	x.g.upstream.authorize(req, x.id)
	resp, err := x.g.transport.RoundTrip(req)
	if err != nil {
		f.inputUnreadable(ctx, id, err)
		return false
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		f.notFound(inference.ObjectFile, id)
		return false
	case resp.StatusCode/100 != 2:
		f.inputUnreadable(ctx, id, fmt.Errorf("the upstream answered %s", resp.Status))
		return false
	}
	field := []string{"body", "input_files", strconv.Itoa(i)}
	lines := bufio.NewScanner(&watchedBody{r: resp.Body, dog: f.dog, idle: f.t.Idle})
	lines.Buffer(make([]byte, 0, 64<<10), maxJSONBytes)
	n := 0
	for lines.Scan() {
		n++
		line := bytes.TrimSpace(lines.Bytes())
		if len(line) == 0 {
			continue
		}
		var top, body map[string]json.RawMessage
		var agent, model *string
		if json.Unmarshal(line, &top) != nil || !optional(top["body"], &body) || !optional(body["agent_id"], &agent) || !optional(body["model"], &model) {
			x.fail(steward.Invalid(field, "line %d of input file %s is not a JSON object with an object body whose agent_id and model are strings", n, id))
			return false
		}
		if !f.agentAndModel(agent, model) || !f.ownsAll(inference.ObjectFile, fileChunks(top["body"])) {
			return false
		}
	}
	switch err := lines.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		x.fail(steward.Invalid(field, "line %d of input file %s exceeds %d bytes", n+1, id, maxJSONBytes))
		return false
	case err != nil:
		f.inputUnreadable(ctx, id, err)
		return false
	}
	return true
}

// inputUnreadable answers a batch job whose input file id could not be
// read from the upstream: 504 when its timeouts ended the read, 502
// otherwise.
func (f *forwarding) inputUnreadable(ctx context.Context, id string, err error) {
	x := f.x
	if errors.Is(context.Cause(ctx), errUpstreamTimeout) {
		x.failStatus(http.StatusGatewayTimeout, "server_error", "upstream_timeout", "the upstream did not send input file "+id+" in time")
		return
	}
	x.logAttrs(x.r.Context(), slog.LevelWarn, "reading a batch job's input file failed", slog.String("upstream", x.g.upstreamName), slog.String("err", err.Error()))
	x.failStatus(http.StatusBadGateway, "server_error", "upstream_unavailable", "the upstream could not send input file "+id)
}

// watchedBody is an answer's body whose every read gives the request's
// watchdog (when there is one) another idle timeout.
type watchedBody struct {
	r    io.Reader
	dog  *time.Timer
	idle time.Duration
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.dog != nil {
		b.dog.Reset(b.idle)
	}
	return b.r.Read(p)
}

// modelRefs: the agent an object names (agent_id) must be the caller's
// Workspace's, and its model one the key may call.
func modelRefs(f *forwarding, obj map[string]json.RawMessage) bool {
	var agent, model *string
	return f.field(obj, "agent_id", &agent) && f.field(obj, "model", &model) && f.agentAndModel(agent, model)
}

// agentAndModel: the agent (when named) must be the caller's Workspace's,
// and the model (when named) one the key may call.
func (f *forwarding) agentAndModel(agent, model *string) bool {
	return (agent == nil || f.ownsAll(inference.ObjectAgent, []string{*agent})) && f.mayUse(model)
}

// agentRefs: an agent's handoffs and the libraries its document library
// tools search must be the caller's Workspace's, and its model one the
// key may call; otherwise an agent would read another Workspace's
// documents.
func agentRefs(_ context.Context, f *forwarding, top map[string]json.RawMessage) bool {
	var handoffs []string
	var tools []map[string]json.RawMessage
	var model *string
	if !f.field(top, "handoffs", &handoffs) || !f.field(top, "tools", &tools) || !f.field(top, "model", &model) {
		return false
	}
	var libraries []string
	for _, tool := range tools {
		var ids []string
		if !f.field(tool, "library_ids", &ids) {
			return false
		}
		libraries = append(libraries, ids...)
	}
	return f.ownsAll(inference.ObjectAgent, handoffs) && f.ownsAll(inference.ObjectLibrary, libraries) && f.mayUse(model)
}

// checkBody reads a request's JSON body and checks it; it returns the
// body to forward, or nil when it has answered. A body that is not a JSON
// object is refused (422): the upstream's parser may read what Go's
// refuses (NaN, say), and so use ids that were never checked.
func (f *forwarding) checkBody(ctx context.Context, body io.Reader, check bodyCheck) []byte {
	data, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			f.x.fail(steward.Errorf(steward.KindTooLarge, "the request body exceeds %d bytes", maxJSONBytes))
		} else {
			f.x.fail(steward.Invalid([]string{"body"}, "the request body could not be read"))
		}
		return nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		f.x.fail(steward.Invalid([]string{"body"}, "the body must be a JSON object"))
		return nil
	}
	if !check(ctx, f, top) {
		return nil
	}
	return data
}

// field decodes the member name of obj into dest, when it is there and
// not null; a member of another type is answered 422.
func (f *forwarding) field(obj map[string]json.RawMessage, name string, dest any) bool {
	if !optional(obj[name], dest) {
		f.x.fail(steward.Invalid([]string{"body", name}, "%s is not of the right type", name))
		return false
	}
	return true
}

// optional reads raw into dest unless it is absent or null, and reports
// whether it could.
func optional(raw json.RawMessage, dest any) bool {
	return absent(raw) || json.Unmarshal(raw, dest) == nil
}

// ownsAll reports whether every id is an object of kind of the caller's
// Workspace, answering 404 for the first that is not, as the upstream
// answers an unknown one.
func (f *forwarding) ownsAll(kind string, ids []string) bool {
	for _, id := range ids {
		mine, err := f.owns(kind, id)
		if err != nil {
			f.x.fail(err)
			return false
		}
		if !mine {
			f.notFound(kind, id)
			return false
		}
	}
	return true
}

// mayUse reports whether the key may call model (nil names none), the
// model an alias names for an alias, answering as for a model that does
// not exist when it may not.
func (f *forwarding) mayUse(model *string) bool {
	if model == nil {
		return true
	}
	name := *model
	if m := f.x.g.models[name]; m != nil {
		name = m.name
	}
	if f.x.key.MayUse(name) {
		return true
	}
	f.x.fail(&steward.Error{Kind: steward.KindNotFound, Field: []string{"body", "model"}, Code: "model_not_found", Message: fmt.Sprintf("model %q does not exist", *model)})
	return false
}

// rewrites reports whether the operation's answer is read whole and
// changed (or recorded) before it is passed back.
func (o op) rewrites() bool { return o.creates != "" || o.lists != "" || o.batchFiles }

// relayObjects passes back an answer the operation reads: a successful
// creation is recorded before the answer is written (an object that
// cannot be recorded is an error, so that no Workspace is given an object
// it cannot reach), a list is filtered to the caller's objects, a batch
// job's output and error files become its Workspace's. Any other status
// passes unchanged.
func (f *forwarding) relayObjects(resp *http.Response, dog *time.Timer) {
	x := f.x
	data, err := io.ReadAll(io.LimitReader(idleReader{resp.Body, dog, f.t.Idle}, maxAnswerBytes+1))
	if err == nil && len(data) > maxAnswerBytes {
		err = fmt.Errorf("the answer exceeds %d bytes", maxAnswerBytes)
	}
	if err != nil {
		if x.r.Context().Err() != nil {
			return
		}
		x.logAttrs(x.r.Context(), slog.LevelWarn, "reading the upstream's answer failed", slog.String("upstream", x.g.upstreamName), slog.String("err", err.Error()))
		x.failStatus(http.StatusBadGateway, "server_error", "upstream_error", "the upstream's answer could not be read")
		return
	}
	if resp.StatusCode/100 == 2 {
		if data, err = f.ownAnswer(data); err != nil {
			x.logAttrs(x.r.Context(), slog.LevelError, "recording the Workspace's objects failed", slog.String("err", err.Error()))
			x.fail(err)
			return
		}
	}
	f.answerHeaders(resp).Set("Content-Length", strconv.Itoa(len(data)))
	x.w.WriteHeader(resp.StatusCode)
	_, _ = x.w.Write(data)
}

// idleReader gives each read of an answer the idle timeout anew.
type idleReader struct {
	r    io.Reader
	dog  *time.Timer
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.dog.Reset(r.idle)
	return n, err
}

// ownAnswer records what a successful answer creates and filters what it
// lists, returning the answer to pass back.
func (f *forwarding) ownAnswer(data []byte) ([]byte, error) {
	ctx := f.x.r.Context()
	if f.op.creates != "" {
		var created struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data, &created); err != nil || created.ID == "" {
			return nil, fmt.Errorf("the upstream's answer to a creation names no id")
		}
		if err := f.record(f.op.creates, created.ID); err != nil {
			return nil, err
		}
	}
	if f.op.batchFiles && f.op.lists == "" {
		if err := f.batchFiles(data); err != nil {
			return nil, err
		}
	}
	if f.op.lists == "" {
		return data, nil
	}
	return f.filterList(ctx, data)
}

// batchFiles records the output and error files of the batch job (or
// jobs) in data as the caller's: the upstream made them for a job of the
// caller's Workspace.
func (f *forwarding) batchFiles(data []byte) error {
	var job struct {
		OutputFile *string `json:"output_file"`
		ErrorFile  *string `json:"error_file"`
	}
	if json.Unmarshal(data, &job) != nil {
		return nil
	}
	for _, id := range []*string{job.OutputFile, job.ErrorFile} {
		if id != nil && *id != "" {
			if err := f.record(inference.ObjectFile, *id); err != nil {
				return err
			}
		}
	}
	return nil
}

// filterList keeps in a list answer only the caller's objects (and preset
// voices): the items of its array, whether the answer is the array itself
// or holds it in "data" (or "items"). Totals count the caller's objects.
func (f *forwarding) filterList(ctx context.Context, data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("the upstream's list could not be read: %w", err)
		}
		kept, _, err := f.keep(ctx, items)
		if err != nil {
			return nil, err
		}
		return json.Marshal(kept)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, fmt.Errorf("the upstream's list could not be read: %w", err)
	}
	field := "data"
	if _, ok := top[field]; !ok {
		field = "items"
	}
	var items []json.RawMessage
	if err := json.Unmarshal(top[field], &items); err != nil {
		return nil, fmt.Errorf("the upstream's list could not be read: %w", err)
	}
	kept, removed, err := f.keep(ctx, items)
	if err != nil {
		return nil, err
	}
	if top[field], err = json.Marshal(kept); err != nil {
		return nil, err
	}
	if err := f.totals(ctx, top, removed); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// keep returns the items that are the caller's objects (or preset
// voices), and how many it removed; the answers of a batch job list have
// their files recorded.
func (f *forwarding) keep(ctx context.Context, items []json.RawMessage) ([]json.RawMessage, int, error) {
	type item struct {
		ID     string          `json:"id"`
		UserID json.RawMessage `json:"user_id"`
	}
	ids := make([]string, len(items))
	parsed := make([]item, len(items))
	for i, raw := range items {
		_ = json.Unmarshal(raw, &parsed[i])
		ids[i] = parsed[i].ID
	}
	owned, err := f.x.g.objects.Owned(ctx, f.x.key.OrganizationID, f.x.key.WorkspaceID, f.op.lists, ids)
	if err != nil {
		return nil, 0, err
	}
	kept := make([]json.RawMessage, 0, len(items))
	for i, raw := range items {
		preset := f.op.lists == inference.ObjectVoice && parsed[i].ID != "" && absent(parsed[i].UserID)
		if !owned[parsed[i].ID] && !preset {
			continue
		}
		if f.op.batchFiles {
			if err := f.batchFiles(raw); err != nil {
				return nil, 0, err
			}
		}
		kept = append(kept, raw)
	}
	return kept, len(items) - len(kept), nil
}

// totals corrects a list's counts: "total" (files, batch jobs) and a
// pagination's "total_items" (libraries) become the number of the
// caller's objects of the kind; a voice list's "total" loses the voices
// removed from the page, since preset voices are counted by the
// upstream alone.
func (f *forwarding) totals(ctx context.Context, top map[string]json.RawMessage, removed int) error {
	if f.op.lists == inference.ObjectVoice {
		var total int64
		if json.Unmarshal(top["total"], &total) == nil {
			top["total"] = json.RawMessage(strconv.FormatInt(max(total-int64(removed), 0), 10))
		}
		return nil
	}
	_, hasTotal := top["total"]
	var page map[string]json.RawMessage
	hasPage := !absent(top["pagination"]) && json.Unmarshal(top["pagination"], &page) == nil
	if (!hasTotal || absent(top["total"])) && !hasPage {
		return nil
	}
	n, err := f.x.g.objects.Count(ctx, f.x.key.OrganizationID, f.x.key.WorkspaceID, f.op.lists)
	if err != nil {
		return err
	}
	count := json.RawMessage(strconv.FormatInt(n, 10))
	if hasTotal && !absent(top["total"]) {
		top["total"] = count
	}
	if hasPage {
		page["total_items"] = count
		var size int64
		if json.Unmarshal(page["page_size"], &size) == nil && size > 0 {
			page["total_pages"] = json.RawMessage(strconv.FormatInt((n+size-1)/size, 10))
		}
		b, err := json.Marshal(page)
		if err != nil {
			return err
		}
		top["pagination"] = b
	}
	return nil
}
