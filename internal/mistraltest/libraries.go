package mistraltest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// library is a library of documents, with whom it is shared.
type library struct {
	id, name, ownerType string
	created, updated    time.Time
	chunkSize           *int
	docs                table[*document]
	shares              []*sharing
}

// document is a document of a library: processed as soon as it is
// uploaded.
type document struct {
	id, name, mime, ext, hash, path string
	size                            int64
	created, processed              time.Time
	attributes, expiresAt           json.RawMessage
}

// sharing is one entity's access to a library.
type sharing struct {
	role, withType, withUUID string
}

// maxDocumentText bounds the text content the server reads of a document.
const maxDocumentText = 16 << 20

func (s *Server) libraryJSON(l *library) map[string]any {
	var size int64
	for _, d := range l.docs.all() {
		size += d.size
	}
	owner := s.user
	if l.ownerType == "Workspace" {
		owner = s.workspace
	}
	return map[string]any{
		"id":           l.id,
		"name":         l.name,
		"created_at":   timestamp(l.created),
		"updated_at":   timestamp(l.updated),
		"owner_id":     owner,
		"owner_type":   l.ownerType,
		"total_size":   size,
		"nb_documents": len(l.docs.byID),
		"chunk_size":   l.chunkSize,
	}
}

func (s *Server) documentJSON(l *library, d *document) map[string]any {
	return map[string]any{
		"id":                      d.id,
		"library_id":              l.id,
		"hash":                    d.hash,
		"mime_type":               d.mime,
		"extension":               d.ext,
		"size":                    d.size,
		"name":                    d.name,
		"summary":                 nil,
		"created_at":              timestamp(d.created),
		"last_processed_at":       timestamp(d.processed),
		"number_of_pages":         nil,
		"process_status":          "done",
		"processing_status":       "Completed",
		"uploaded_by_id":          s.user,
		"uploaded_by_type":        "User",
		"tokens_processing_total": (d.size + 3) / 4,
		"attributes":              d.attributes,
		"expires_at":              d.expiresAt,
	}
}

func (s *Server) sharingJSON(l *library, sh *sharing) map[string]any {
	return map[string]any{
		"library_id":      l.id,
		"user_id":         nil,
		"org_id":          s.org,
		"role":            sh.role,
		"share_with_type": sh.withType,
		"share_with_uuid": sh.withUUID,
	}
}

// listLibraries lists libraries newest first, paged by page_token (or the
// deprecated page), filtered by search.
func (s *Server) listLibraries(c *call) {
	if !c.arrived("libraries_list_v1") {
		return
	}
	q := c.r.URL.Query()
	size, ok := c.intQuery("page_size", 100, 1, 100)
	if !ok {
		return
	}
	index, ok := c.intQuery("page", 0, 0, 1<<30)
	if !ok {
		return
	}
	offset := index * size
	if q.Has("page_token") {
		if offset, ok = offsetOf(q.Get("page_token")); !ok {
			c.invalid("value_error", "Invalid page token", "query", "page_token")
			return
		}
	}
	s.mu.Lock()
	all := s.libraries.all()
	slices.Reverse(all)
	var matched []map[string]any
	for _, l := range all {
		if !q.Has("search") || contains(l.name, q.Get("search")) {
			matched = append(matched, s.libraryJSON(l))
		}
	}
	s.mu.Unlock()
	data := []map[string]any{}
	if offset < len(matched) {
		data = matched[offset:min(offset+size, len(matched))]
	}
	var next any
	if offset+size < len(matched) {
		next = pageToken(offset + size)
	}
	c.ok(map[string]any{"data": data, "next_page_token": next})
}

func (s *Server) createLibrary(c *call) {
	var req struct {
		Name      *string `json:"name"`
		ChunkSize *int    `json:"chunk_size"`
		OwnerType *string `json:"owner_type"`
	}
	if !c.read("libraries_create_v1", &req, func() []field { return []field{{"name", req.Name == nil}} }) {
		return
	}
	ownerType := "User"
	if req.OwnerType != nil {
		ownerType = *req.OwnerType
	}
	switch {
	case ownerType != "User" && ownerType != "Workspace":
		c.invalid("enum", "Input should be 'User' or 'Workspace'", "body", "owner_type")
		return
	case req.ChunkSize != nil && (*req.ChunkSize < 256 || *req.ChunkSize > 32768):
		c.invalid("less_than_equal", "Input should be from 256 to 32768", "body", "chunk_size")
		return
	}
	now := time.Now()
	l := &library{id: uuid.NewString(), name: *req.Name, ownerType: ownerType, created: now, updated: now, chunkSize: req.ChunkSize}
	s.mu.Lock()
	s.libraries.add(l.id, l)
	out := s.libraryJSON(l)
	s.mu.Unlock()
	writeJSON(c.w, http.StatusCreated, out)
}

// library looks up the library named by the path, answering 422 or 404
// when there is none; it is returned with the server locked.
func (c *call) library() (*library, bool) {
	return lookup(c, "library_id", "Library", &c.s.libraries)
}

func (s *Server) getLibrary(c *call) {
	if !c.arrived("libraries_get_v1") {
		return
	}
	if l, ok := c.library(); ok {
		out := s.libraryJSON(l)
		s.mu.Unlock()
		c.ok(out)
	}
}

// deleteLibrary deletes the library with its documents and answers it, as
// Mistral still does (200 with the library).
func (s *Server) deleteLibrary(c *call) {
	if !c.arrived("libraries_delete_v1") {
		return
	}
	l, ok := c.library()
	if !ok {
		return
	}
	out := s.libraryJSON(l)
	s.libraries.remove(l.id)
	docs := l.docs.all()
	s.mu.Unlock()
	for _, d := range docs {
		_ = os.Remove(d.path)
	}
	c.ok(out)
}

func (s *Server) patchLibrary(c *call) { c.updateLibrary("libraries_patch_v1") }

func (s *Server) putLibrary(c *call) { c.updateLibrary("libraries_update_v1") }

// updateLibrary renames the library, for PATCH and the deprecated PUT.
func (c *call) updateLibrary(op string) {
	var req struct {
		Name *string `json:"name"`
	}
	if !c.read(op, &req, nil) {
		return
	}
	l, ok := c.library()
	if !ok {
		return
	}
	if req.Name != nil {
		l.name = *req.Name
	}
	l.updated = time.Now()
	out := c.s.libraryJSON(l)
	c.s.mu.Unlock()
	c.ok(out)
}

// listDocuments lists a library's documents, sorted by created_at (or
// name), newest first unless sort_order=asc.
func (s *Server) listDocuments(c *call) {
	if !c.arrived("libraries_documents_list_v1") {
		return
	}
	q := c.r.URL.Query()
	size, ok := c.intQuery("page_size", 100, 1, 100)
	if !ok {
		return
	}
	index, ok := c.intQuery("page", 0, 0, 1<<30)
	if !ok {
		return
	}
	l, ok := c.library()
	if !ok {
		return
	}
	var docs []*document
	for _, d := range l.docs.all() {
		if !q.Has("search") || contains(d.name, q.Get("search")) {
			docs = append(docs, d)
		}
	}
	if q.Get("sort_by") == "name" {
		slices.SortStableFunc(docs, func(a, b *document) int { return strings.Compare(a.name, b.name) })
	}
	if q.Get("sort_order") != "asc" {
		slices.Reverse(docs)
	}
	all := make([]map[string]any, len(docs))
	for i, d := range docs {
		all[i] = s.documentJSON(l, d)
	}
	s.mu.Unlock()
	pages := (len(all) + size - 1) / size
	c.ok(map[string]any{
		"pagination": map[string]any{
			"total_items": len(all), "total_pages": pages, "current_page": index, "page_size": size, "has_more": index+1 < pages,
		},
		"data": page(all, index, size),
	})
}

// uploadDocument stores the form's file in the library: 201 with the new
// document, or 200 with the one the library already has with the same
// content.
func (s *Server) uploadDocument(c *call) {
	form, err := c.readForm(true)
	defer form.discard()
	if !c.arrived("libraries_documents_upload_v1") {
		return
	}
	switch {
	case err != nil:
		c.invalid("value_error", err.Error(), "body")
		return
	case form.file == nil:
		c.missing("file")
		return
	}
	l, ok := c.library()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	up := form.file
	for _, d := range l.docs.all() {
		if d.hash == up.sha256 {
			c.ok(s.documentJSON(l, d))
			return
		}
	}
	now := time.Now()
	d := &document{
		id: uuid.NewString(), name: up.name, mime: up.mime, ext: strings.TrimPrefix(filepath.Ext(up.name), "."),
		hash: up.sha256, path: up.path, size: up.size, created: now, processed: now,
		attributes: json.RawMessage("null"), expiresAt: json.RawMessage("null"),
	}
	up.kept = true
	l.docs.add(d.id, d)
	l.updated = now
	writeJSON(c.w, http.StatusCreated, s.documentJSON(l, d))
}

// document looks up the library and document the path names, answering
// 422 or 404 when there is none; they are returned with the server
// locked.
func (c *call) document() (*library, *document, bool) {
	id, ok := c.uuidParam("document_id")
	if !ok {
		return nil, nil, false
	}
	l, ok := c.library()
	if !ok {
		return nil, nil, false
	}
	d, ok := l.docs.get(id)
	if !ok {
		c.s.mu.Unlock()
		c.notFound("Document", id)
	}
	return l, d, ok
}

func (s *Server) getDocument(c *call) {
	if !c.arrived("libraries_documents_get_v1") {
		return
	}
	if l, d, ok := c.document(); ok {
		out := s.documentJSON(l, d)
		s.mu.Unlock()
		c.ok(out)
	}
}

func (s *Server) patchDocument(c *call) { c.updateDocument("libraries_documents_patch_v1") }

func (s *Server) putDocument(c *call) { c.updateDocument("libraries_documents_update_v1") }

// updateDocument sets the document's name, attributes and expiry, for
// PATCH and the deprecated PUT.
func (c *call) updateDocument(op string) {
	body, err := c.decodeObject()
	if !c.arrived(op) {
		return
	}
	if err != nil {
		c.invalidBody(err)
		return
	}
	var name string
	if present(body, "name") {
		if json.Unmarshal(body["name"], &name) != nil {
			c.invalid("string_type", "Input should be a valid string", "body", "name")
			return
		}
	}
	l, d, ok := c.document()
	if !ok {
		return
	}
	if name != "" {
		d.name = name
	}
	if raw, ok := body["attributes"]; ok {
		d.attributes = raw
	}
	if raw, ok := body["expires_at"]; ok {
		d.expiresAt = raw
	}
	out := c.s.documentJSON(l, d)
	c.s.mu.Unlock()
	c.ok(out)
}

func (s *Server) deleteDocument(c *call) {
	if !c.arrived("libraries_documents_delete_v1") {
		return
	}
	l, d, ok := c.document()
	if !ok {
		return
	}
	l.docs.remove(d.id)
	l.updated = time.Now()
	s.mu.Unlock()
	_ = os.Remove(d.path)
	c.w.WriteHeader(http.StatusNoContent)
}

// text is the document's text: its content when that is UTF-8, else none.
func (d *document) text() string {
	in, err := os.Open(d.path)
	if err != nil {
		return ""
	}
	defer in.Close()
	b, err := io.ReadAll(io.LimitReader(in, maxDocumentText))
	if err != nil || !utf8.Valid(b) {
		return ""
	}
	return string(b)
}

func (s *Server) documentText(c *call) {
	if !c.arrived("libraries_documents_get_text_content_v1") {
		return
	}
	if _, d, ok := c.document(); ok {
		s.mu.Unlock()
		c.ok(map[string]string{"text": d.text()})
	}
}

func (s *Server) documentStatus(c *call) {
	if !c.arrived("libraries_documents_get_status_v1") {
		return
	}
	if _, d, ok := c.document(); ok {
		s.mu.Unlock()
		c.ok(map[string]string{"document_id": d.id, "process_status": "done", "processing_status": "Completed"})
	}
}

// documentURLTTL is how long a document's signed URL works.
const documentURLTTL = 30 * time.Minute

// documentURL answers a signed URL of the document, as a JSON string.
func (s *Server) documentURL(c *call) {
	if !c.arrived("libraries_documents_get_signed_url_v1") {
		return
	}
	if _, d, ok := c.document(); ok {
		s.mu.Unlock()
		c.ok(s.sign(signedContent{path: d.path, name: d.name}, documentURLTTL))
	}
}

// documentTextURL answers a signed URL of the document's text.
func (s *Server) documentTextURL(c *call) {
	if !c.arrived("libraries_documents_get_extracted_text_signed_url_v1") {
		return
	}
	if _, d, ok := c.document(); ok {
		s.mu.Unlock()
		c.ok(s.sign(signedContent{text: d.text()}, documentURLTTL))
	}
}

func (s *Server) reprocessDocument(c *call) {
	if !c.arrived("libraries_documents_reprocess_v1") {
		return
	}
	if _, d, ok := c.document(); ok {
		d.processed = time.Now()
		s.mu.Unlock()
		c.w.WriteHeader(http.StatusNoContent)
	}
}

// listShares lists the library's owner, then those it is shared with.
func (s *Server) listShares(c *call) {
	if !c.arrived("libraries_share_list_v1") {
		return
	}
	l, ok := c.library()
	if !ok {
		return
	}
	owner := &sharing{role: "Owner", withType: "User", withUUID: s.user}
	if l.ownerType == "Workspace" {
		owner = &sharing{role: "Owner", withType: "Workspace", withUUID: s.workspace}
	}
	data := []map[string]any{s.sharingJSON(l, owner)}
	for _, sh := range l.shares {
		data = append(data, s.sharingJSON(l, sh))
	}
	s.mu.Unlock()
	c.ok(map[string]any{"data": data})
}

// shareRequest holds a sharing request and its deletion.
type shareRequest struct {
	Level    string `json:"level"`
	WithUUID string `json:"share_with_uuid"`
	WithType string `json:"share_with_type"`
}

// readShare decodes a sharing request to op, answering when it lacks a
// field (level only when withLevel).
func (c *call) readShare(op string, withLevel bool) (shareRequest, bool) {
	var req shareRequest
	err := c.decode(&req)
	if !c.arrived(op) {
		return req, false
	}
	_, uerr := uuid.Parse(req.WithUUID)
	switch {
	case err != nil:
		c.invalidBody(err)
	case withLevel && req.Level == "":
		c.missing("level")
	case req.WithType == "":
		c.missing("share_with_type")
	case uerr != nil:
		c.invalid("uuid_parsing", "Input should be a valid UUID", "body", "share_with_uuid")
	default:
		return req, true
	}
	return req, false
}

// putShare shares the library with an entity, or changes its level.
func (s *Server) putShare(c *call) {
	req, ok := c.readShare("libraries_share_create_v1", true)
	if !ok {
		return
	}
	l, ok := c.library()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	i := slices.IndexFunc(l.shares, func(sh *sharing) bool { return sh.withUUID == req.WithUUID && sh.withType == req.WithType })
	if i < 0 {
		l.shares = append(l.shares, &sharing{withType: req.WithType, withUUID: req.WithUUID})
		i = len(l.shares) - 1
	}
	l.shares[i].role = req.Level
	c.ok(s.sharingJSON(l, l.shares[i]))
}

// deleteShare ends an entity's access and answers it (404 when it had
// none).
func (s *Server) deleteShare(c *call) {
	req, ok := c.readShare("libraries_share_delete_v1", false)
	if !ok {
		return
	}
	l, ok := c.library()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	i := slices.IndexFunc(l.shares, func(sh *sharing) bool { return sh.withUUID == req.WithUUID && sh.withType == req.WithType })
	if i < 0 {
		c.notFound("Sharing with", req.WithUUID)
		return
	}
	out := s.sharingJSON(l, l.shares[i])
	l.shares = slices.Delete(l.shares, i, i+1)
	c.ok(out)
}
