package mistraltest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// maxFormField bounds a form field other than the file.
const maxFormField = 64 << 10

// upload is the file part of a multipart form.
type upload struct {
	// path is where its content was written; "" when it was not kept.
	path   string
	name   string
	mime   string
	size   int64
	lines  int
	sha256 string
	// kept is set once an object owns path, which discard then leaves.
	kept bool
}

// form is a multipart form as the server read it.
type form struct {
	fields map[string]string
	file   *upload
}

// discard removes the uploaded file unless an object keeps it.
func (f *form) discard() {
	if f.file != nil && f.file.path != "" && !f.file.kept {
		_ = os.Remove(f.file.path)
	}
}

// readForm reads the request's multipart form as a stream: the "file"
// part is copied to a file under the server's directory when keep is set
// (and only counted otherwise), never held in memory.
func (c *call) readForm(keep bool) (*form, error) {
	f := &form{fields: map[string]string{}}
	mr, err := c.r.MultipartReader()
	if err != nil {
		return f, fmt.Errorf("the body is not a multipart form: %w", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return f, err
		}
		if part.FormName() != "file" {
			v, err := io.ReadAll(io.LimitReader(part, maxFormField))
			if err != nil {
				return f, err
			}
			f.fields[part.FormName()] = string(v)
			continue
		}
		up := &upload{name: part.FileName(), mime: part.Header.Get("Content-Type")}
		if up.mime == "" || up.mime == "application/octet-stream" {
			if byExt := mime.TypeByExtension(filepath.Ext(up.name)); byExt != "" {
				up.mime = byExt
			}
		}
		f.file = up
		if err := c.s.copyUpload(up, part, keep); err != nil {
			return f, err
		}
	}
}

// copyUpload copies r into up, to disk when keep is set, counting its
// bytes and lines and hashing it.
func (s *Server) copyUpload(up *upload, r io.Reader, keep bool) error {
	h := sha256.New()
	lines := &lineCounter{}
	w := io.MultiWriter(h, lines)
	if keep {
		out, err := os.CreateTemp(s.dir, "upload-")
		if err != nil {
			return err
		}
		defer out.Close()
		up.path = out.Name()
		w = io.MultiWriter(h, lines, out)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return err
	}
	up.size, up.lines, up.sha256 = n, lines.lines(), hex.EncodeToString(h.Sum(nil))
	return nil
}

// lineCounter counts the lines written to it, a last line without its
// newline included.
type lineCounter struct {
	newlines int
	last     byte
	any      bool
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.newlines += bytes.Count(p, []byte{'\n'})
	if len(p) > 0 {
		l.last, l.any = p[len(p)-1], true
	}
	return len(p), nil
}

func (l *lineCounter) lines() int {
	if l.any && l.last != '\n' {
		return l.newlines + 1
	}
	return l.newlines
}

// file is an uploaded file, or one a batch job wrote.
type file struct {
	id, filename, purpose, sampleType, source, mimetype, visibility, signature string
	path                                                                       string
	bytes                                                                      int64
	lines                                                                      int
	created                                                                    int64
	expiresAt                                                                  *int64
}

func (f *file) json() map[string]any {
	return map[string]any{
		"id":          f.id,
		"object":      "file",
		"bytes":       f.bytes,
		"created_at":  f.created,
		"filename":    f.filename,
		"purpose":     f.purpose,
		"sample_type": f.sampleType,
		"source":      f.source,
		"num_lines":   f.lines,
		"mimetype":    f.mimetype,
		"signature":   f.signature,
		"expires_at":  f.expiresAt,
		"visibility":  f.visibility,
	}
}

var (
	filePurposes     = []string{"fine-tune", "batch", "ocr"}
	fileVisibilities = []string{"workspace", "user"}
)

func (s *Server) uploadFile(c *call) {
	form, err := c.readForm(true)
	defer form.discard()
	if !c.arrived("files_api_routes_upload_file") {
		return
	}
	purpose, visibility := form.fields["purpose"], form.fields["visibility"]
	if purpose == "" {
		purpose = "fine-tune"
	}
	if visibility == "" {
		visibility = "workspace"
	}
	var expiry int
	switch {
	case err != nil:
		c.invalid("value_error", err.Error(), "body")
		return
	case form.file == nil:
		c.missing("file")
		return
	case !slices.Contains(filePurposes, purpose):
		c.invalid("enum", "Input should be 'fine-tune', 'batch' or 'ocr'", "body", "purpose")
		return
	case !slices.Contains(fileVisibilities, visibility):
		c.invalid("enum", "Input should be 'workspace' or 'user'", "body", "visibility")
		return
	case form.fields["expiry"] != "":
		if expiry, err = strconv.Atoi(form.fields["expiry"]); err != nil || expiry < 1 {
			c.invalid("int_parsing", "Input should be a positive integer", "body", "expiry")
			return
		}
	}
	up := form.file
	sampleType := "instruct"
	if purpose == "batch" {
		sampleType = "batch_request"
	}
	f := &file{
		id: uuid.NewString(), filename: up.name, purpose: purpose, sampleType: sampleType, source: "upload",
		mimetype: up.mime, visibility: visibility, signature: up.sha256[:16], path: up.path,
		bytes: up.size, lines: up.lines, created: time.Now().Unix(),
	}
	if expiry > 0 {
		at := f.created + int64(expiry)*3600
		f.expiresAt = &at
	}
	up.kept = true
	s.mu.Lock()
	s.files.add(f.id, f)
	s.mu.Unlock()
	c.ok(f.json())
}

// listFiles lists files newest first, filtered as the document says.
func (s *Server) listFiles(c *call) {
	if !c.arrived("files_api_routes_list_files") {
		return
	}
	q := c.r.URL.Query()
	index, ok := c.intQuery("page", 0, 0, 1<<30)
	if !ok {
		return
	}
	size, ok := c.intQuery("page_size", 100, 1, 1<<30)
	if !ok {
		return
	}
	s.mu.Lock()
	var matched []map[string]any
	all := s.files.all()
	for i := len(all) - 1; i >= 0; i-- {
		f := all[i]
		if q.Has("purpose") && f.purpose != q.Get("purpose") ||
			q.Has("search") && !contains(f.filename, q.Get("search")) ||
			q.Has("sample_type") && !slices.Contains(q["sample_type"], f.sampleType) ||
			q.Has("source") && !slices.Contains(q["source"], f.source) ||
			q.Has("mimetypes") && !slices.Contains(q["mimetypes"], f.mimetype) {
			continue
		}
		matched = append(matched, f.json())
	}
	s.mu.Unlock()
	var total any = len(matched)
	if q.Get("include_total") == "false" {
		total = nil
	}
	c.ok(map[string]any{"data": page(matched, index, size), "object": "list", "total": total})
}

// file looks up the file named by the path, answering 422 or 404 when
// there is none.
func (c *call) file() (*file, bool) {
	f, ok := lookup(c, "file_id", "File", &c.s.files)
	if ok {
		c.s.mu.Unlock()
	}
	return f, ok
}

func (s *Server) getFile(c *call) {
	if !c.arrived("files_api_routes_retrieve_file") {
		return
	}
	if f, ok := c.file(); ok {
		out := f.json()
		out["deleted"] = false
		c.ok(out)
	}
}

func (s *Server) deleteFile(c *call) {
	if !c.arrived("files_api_routes_delete_file") {
		return
	}
	f, ok := c.file()
	if !ok {
		return
	}
	s.mu.Lock()
	s.files.remove(f.id)
	s.mu.Unlock()
	_ = os.Remove(f.path)
	c.ok(map[string]any{"id": f.id, "object": "file", "deleted": true})
}

func (s *Server) downloadFile(c *call) {
	if !c.arrived("files_api_routes_download_file") {
		return
	}
	if f, ok := c.file(); ok {
		serveContent(c.w, f.path, f.filename, "application/octet-stream")
	}
}

// serveContent streams the file at path as an attachment named name.
func serveContent(w http.ResponseWriter, path, name, contentType string) {
	in, err := os.Open(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer in.Close()
	if st, err := in.Stat(); err == nil {
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, in)
}

func (s *Server) fileURL(c *call) {
	if !c.arrived("files_api_routes_get_signed_url") {
		return
	}
	hours, ok := c.intQuery("expiry", 24, 1, 168)
	if !ok {
		return
	}
	if f, ok := c.file(); ok {
		c.ok(map[string]string{"url": s.sign(signedContent{path: f.path, name: f.filename}, time.Duration(hours)*time.Hour)})
	}
}

// signedPrefix is where signed URLs point; they need no key.
const signedPrefix = "/signed/"

// signedContent is what a signed URL serves: a file on disk, or text.
type signedContent struct {
	path, name, text string
	expires          time.Time
}

// sign returns a URL that serves content without a key for ttl.
func (s *Server) sign(content signedContent, ttl time.Duration) string {
	token := randomHex(16)
	content.expires = time.Now().Add(ttl)
	s.mu.Lock()
	s.signed[token] = content
	s.mu.Unlock()
	return s.URL + signedPrefix + token
}

// serveSigned serves a signed URL until it expires or its object goes.
func (s *Server) serveSigned(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	content, ok := s.signed[r.PathValue("token")]
	s.mu.Unlock()
	if !ok || time.Now().After(content.expires) {
		writeJSON(w, http.StatusForbidden, map[string]string{"detail": "The signature is not valid or has expired."})
		return
	}
	if content.path == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, content.text)
		return
	}
	if _, err := os.Stat(content.path); err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
		return
	}
	serveContent(w, content.path, content.name, "application/octet-stream")
}

// batchJob is a batch job: queued when created, until FinishBatchJob or a
// cancellation ends it.
type batchJob struct {
	id          string
	inputFiles  []string
	metadata    map[string]string
	endpoint    string
	model       *string
	agentID     *string
	outputFile  *string
	status      string
	created     int64
	completedAt *int64
	total       int
	succeeded   int
	outputs     []map[string]any
	customIDs   []string
}

// batchEndpoints are the endpoints a batch job may run.
var batchEndpoints = []string{
	"/v1/chat/completions", "/v1/embeddings", "/v1/fim/completions", "/v1/moderations", "/v1/chat/moderations",
	"/v1/ocr", "/v1/classifications", "/v1/chat/classifications", "/v1/conversations", "/v1/audio/transcriptions",
}

// final reports whether the job has ended.
func (j *batchJob) final() bool {
	switch j.status {
	case "SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED":
		return true
	}
	return false
}

// settle moves a job whose cancellation was requested to CANCELLED: the
// answer to the cancellation shows the request, the next read its effect.
func (j *batchJob) settle() {
	if j.status != "CANCELLATION_REQUESTED" {
		return
	}
	now := time.Now().Unix()
	j.status, j.completedAt = "CANCELLED", &now
}

func (j *batchJob) json(inline bool) map[string]any {
	var metadata any
	if j.metadata != nil {
		metadata = j.metadata
	}
	out := map[string]any{
		"id":                 j.id,
		"object":             "batch",
		"input_files":        j.inputFiles,
		"metadata":           metadata,
		"endpoint":           j.endpoint,
		"model":              j.model,
		"agent_id":           j.agentID,
		"output_file":        j.outputFile,
		"error_file":         nil,
		"errors":             []any{},
		"status":             j.status,
		"created_at":         j.created,
		"total_requests":     j.total,
		"completed_requests": j.succeeded,
		"succeeded_requests": j.succeeded,
		"failed_requests":    0,
		"started_at":         nil,
		"completed_at":       j.completedAt,
	}
	if j.status == "SUCCESS" {
		out["started_at"] = j.created
	}
	if inline {
		out["outputs"] = j.outputs
	}
	return out
}

// createBatchJob queues a job over input files, which must all be the
// server's (404 otherwise, as Mistral answers), or inline requests.
func (s *Server) createBatchJob(c *call) {
	var req struct {
		InputFiles []string          `json:"input_files"`
		Requests   []json.RawMessage `json:"requests"`
		Endpoint   string            `json:"endpoint"`
		Model      *string           `json:"model"`
		AgentID    *string           `json:"agent_id"`
		Metadata   map[string]string `json:"metadata"`
	}
	if !c.read("jobs_api_routes_batch_create_batch_job", &req, func() []field { return []field{{"endpoint", req.Endpoint == ""}} }) {
		return
	}
	switch {
	case !slices.Contains(batchEndpoints, req.Endpoint):
		c.invalid("enum", "Input should be one of "+strings.Join(batchEndpoints, ", "), "body", "endpoint")
		return
	case len(req.InputFiles) == 0 && len(req.Requests) == 0:
		c.missing("input_files")
		return
	case req.Model == nil && req.AgentID == nil:
		c.missing("model")
		return
	}
	j := &batchJob{
		id: uuid.NewString(), inputFiles: req.InputFiles, metadata: req.Metadata,
		endpoint: req.Endpoint, model: req.Model, agentID: req.AgentID, status: "QUEUED", created: time.Now().Unix(),
	}
	if j.inputFiles == nil {
		j.inputFiles = []string{}
	}
	s.mu.Lock()
	var paths []string
	for _, id := range req.InputFiles {
		f, ok := s.files.get(id)
		if !ok {
			s.mu.Unlock()
			c.notFound("File", id)
			return
		}
		paths = append(paths, f.path)
	}
	s.mu.Unlock()
	for _, p := range paths {
		ids, err := customIDs(p)
		if err != nil {
			c.fail(http.StatusBadRequest, "an input file cannot be read: "+err.Error())
			return
		}
		j.customIDs = append(j.customIDs, ids...)
	}
	for _, r := range req.Requests {
		var one struct {
			CustomID *string `json:"custom_id"`
		}
		_ = json.Unmarshal(r, &one)
		id := strconv.Itoa(len(j.customIDs))
		if one.CustomID != nil {
			id = *one.CustomID
		}
		j.customIDs = append(j.customIDs, id)
	}
	j.total = len(j.customIDs)
	s.mu.Lock()
	s.jobs.add(j.id, j)
	s.mu.Unlock()
	c.ok(j.json(false))
}

// customIDs returns the custom_id of each line of a batch input file (its
// line number when it has none).
func customIDs(path string) ([]string, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var ids []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var line struct {
			CustomID *string `json:"custom_id"`
		}
		_ = json.Unmarshal(sc.Bytes(), &line)
		id := strconv.Itoa(len(ids))
		if line.CustomID != nil {
			id = *line.CustomID
		}
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

// FinishBatchJob ends the queued or running batch job id with success, as
// Mistral does once it has run every request: each request answered 200
// with a chat completion, in an output file of source "mistral" that the
// job names. It returns that file's id, or an error when the job is
// unknown or has ended.
func (s *Server) FinishBatchJob(id string) (string, error) {
	u, _ := s.settings()
	s.mu.Lock()
	j, ok := s.jobs.get(id)
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("mistraltest: no batch job %s", id)
	}
	j.settle()
	if j.final() {
		defer s.mu.Unlock()
		return "", fmt.Errorf("mistraltest: batch job %s is %s", id, j.status)
	}
	model, created, ids := "batch-model", j.created, slices.Clone(j.customIDs)
	if j.model != nil {
		model = *j.model
	}
	s.mu.Unlock()
	var buf bytes.Buffer
	outputs := make([]map[string]any, len(ids))
	for i, cid := range ids {
		outputs[i] = map[string]any{
			"id":        fmt.Sprintf("batch-%s-%d", id[:8], i),
			"custom_id": cid,
			"response": map[string]any{"status_code": 200, "body": map[string]any{
				"id": randomHex(16), "object": "chat.completion", "model": model, "created": created,
				"usage":   tokens(u.PromptTokens, u.CompletionTokens),
				"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": word}, "finish_reason": "stop"}},
			}},
			"error": nil,
		}
		line, _ := json.Marshal(outputs[i])
		buf.Write(line)
		buf.WriteByte('\n')
	}
	out, err := os.CreateTemp(s.dir, "batch-output-")
	if err != nil {
		return "", err
	}
	_, werr := out.Write(buf.Bytes())
	if err := errors.Join(werr, out.Close()); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	now := time.Now().Unix()
	f := &file{
		id: uuid.NewString(), filename: id + ".jsonl", purpose: "batch", sampleType: "batch_result", source: "mistral",
		mimetype: "application/jsonl", visibility: "workspace", signature: hex.EncodeToString(sum[:8]), path: out.Name(),
		bytes: int64(buf.Len()), lines: len(outputs), created: now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs.get(id); !ok || j.final() || j.status == "CANCELLATION_REQUESTED" {
		_ = os.Remove(f.path)
		return "", fmt.Errorf("mistraltest: batch job %s was deleted or cancelled meanwhile", id)
	}
	s.files.add(f.id, f)
	j.status, j.outputFile, j.completedAt, j.succeeded, j.outputs = "SUCCESS", &f.id, &now, j.total, outputs
	return f.id, nil
}

// listBatchJobs lists jobs, newest first unless order_by=created.
func (s *Server) listBatchJobs(c *call) {
	if !c.arrived("jobs_api_routes_batch_get_batch_jobs") {
		return
	}
	q := c.r.URL.Query()
	index, ok := c.intQuery("page", 0, 0, 1<<30)
	if !ok {
		return
	}
	size, ok := c.intQuery("page_size", 100, 1, 1<<30)
	if !ok {
		return
	}
	var after int64
	if v := q.Get("created_after"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			c.invalid("datetime_parsing", "Input should be a valid datetime", "query", "created_after")
			return
		}
		after = t.Unix()
	}
	order := q.Get("order_by")
	if order != "" && order != "created" && order != "-created" {
		c.invalid("enum", "Input should be 'created' or '-created'", "query", "order_by")
		return
	}
	s.mu.Lock()
	jobs := s.jobs.all()
	if order != "created" {
		slices.Reverse(jobs)
	}
	var matched []map[string]any
	for _, j := range jobs {
		j.settle()
		if q.Has("model") && (j.model == nil || *j.model != q.Get("model")) ||
			q.Has("agent_id") && (j.agentID == nil || *j.agentID != q.Get("agent_id")) ||
			q.Has("status") && !slices.Contains(q["status"], j.status) ||
			j.created < after {
			continue
		}
		matched = append(matched, j.json(false))
	}
	s.mu.Unlock()
	c.ok(map[string]any{"data": page(matched, index, size), "object": "list", "total": len(matched)})
}

// job looks up the job named by the path, answering 422 or 404 when there
// is none; it is returned locked, settled.
func (c *call) job() (*batchJob, bool) {
	j, ok := lookup(c, "job_id", "Batch job", &c.s.jobs)
	if ok {
		j.settle()
	}
	return j, ok
}

func (s *Server) getBatchJob(c *call) {
	if !c.arrived("jobs_api_routes_batch_get_batch_job") {
		return
	}
	j, ok := c.job()
	if !ok {
		return
	}
	out := j.json(c.r.URL.Query().Get("inline") == "true")
	s.mu.Unlock()
	c.ok(out)
}

func (s *Server) deleteBatchJob(c *call) {
	if !c.arrived("jobs_api_routes_batch_delete_batch_job") {
		return
	}
	j, ok := c.job()
	if !ok {
		return
	}
	s.jobs.remove(j.id)
	s.mu.Unlock()
	c.ok(map[string]any{"id": j.id, "object": "batch", "deleted": true})
}

// cancelBatchJob asks a queued or running job to stop; an ended job
// cannot be cancelled (400).
func (s *Server) cancelBatchJob(c *call) {
	if !c.arrived("jobs_api_routes_batch_cancel_batch_job") {
		return
	}
	j, ok := c.job()
	if !ok {
		return
	}
	if j.final() {
		status := j.status
		s.mu.Unlock()
		c.fail(http.StatusBadRequest, fmt.Sprintf("Batch job %s is %s and cannot be cancelled", j.id, status))
		return
	}
	j.status = "CANCELLATION_REQUESTED"
	out := j.json(false)
	s.mu.Unlock()
	c.ok(out)
}
