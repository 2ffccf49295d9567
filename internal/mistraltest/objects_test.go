package mistraltest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// ids returns the ids of a list's objects, in order.
func ids(t *testing.T, items []any) []string {
	t.Helper()
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = str(t, it.(map[string]any), "id")
	}
	return out
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestFiles: an upload is read as it streams and described as Mistral
// does; files are listed newest first, paged and filtered, read, served
// by a signed URL without a key, and gone once deleted.
func TestFiles(t *testing.T) {
	s := New(t)
	content := bytes.Repeat([]byte(`{"body":{}}`+"\n"), 3000)
	body, ct := multipartForm(t, map[string]string{"purpose": "batch", "expiry": "2"}, "big.jsonl", content)
	up := send(t, s, s.Key, "POST", "/v1/files", body, ct).want(t, 200).object(t)
	if num(t, up, "bytes") != len(content) || num(t, up, "num_lines") != 3000 || up["filename"] != "big.jsonl" ||
		up["purpose"] != "batch" || up["sample_type"] != "batch_request" || up["source"] != "upload" ||
		num(t, up, "expires_at") != num(t, up, "created_at")+7200 {
		t.Fatalf("upload answered %v", up)
	}
	if last, _ := s.Last("files_api_routes_upload_file"); last.BodySize <= int64(len(content)) || len(last.Body) != MaxRecordedBody && int64(len(last.Body)) != last.BodySize {
		t.Errorf("Last recorded %d of %d bytes", len(last.Body), last.BodySize)
	}
	big := str(t, up, "id")
	ocr := s.upload(t, "scan.pdf", "ocr", []byte("%PDF-1.4"))
	tune := s.upload(t, "train.jsonl", "fine-tune", []byte(`{"messages":[]}`))

	list := s.call(t, "GET", "/v1/files", nil).want(t, 200).object(t)
	if got := ids(t, list["data"].([]any)); strings.Join(got, ",") != strings.Join([]string{tune, ocr, big}, ",") || num(t, list, "total") != 3 {
		t.Fatalf("list %v, want the three files newest first", list)
	}
	paged := s.call(t, "GET", "/v1/files?page=1&page_size=2&include_total=false", nil).want(t, 200).object(t)
	if got := ids(t, paged["data"].([]any)); len(got) != 1 || got[0] != big || paged["total"] != nil {
		t.Fatalf("second page of two %v, want the oldest file and no total", paged)
	}
	for query, want := range map[string]string{"purpose=ocr": ocr, "search=TRAIN": tune, "sample_type=batch_request": big} {
		got := ids(t, s.call(t, "GET", "/v1/files?"+query, nil).want(t, 200).object(t)["data"].([]any))
		if len(got) != 1 || got[0] != want {
			t.Errorf("list ?%s = %v, want %s", query, got, want)
		}
	}

	if got := s.call(t, "GET", "/v1/files/"+big, nil).want(t, 200).object(t); got["deleted"] != false || num(t, got, "bytes") != len(content) {
		t.Errorf("retrieve %v", got)
	}
	download := s.call(t, "GET", "/v1/files/"+big+"/content", nil).want(t, 200)
	if !bytes.Equal(download.body, content) || download.contentType != "application/octet-stream" {
		t.Errorf("download: %d bytes as %s, want the %d uploaded", len(download.body), download.contentType, len(content))
	}
	url := str(t, s.call(t, "GET", "/v1/files/"+big+"/url?expiry=1", nil).want(t, 200).object(t), "url")
	if status, got := get(t, url); status != 200 || !bytes.Equal(got, content) {
		t.Errorf("signed URL %s: %d, %d bytes", url, status, len(got))
	}
	wantDetail(t, s.call(t, "GET", "/v1/files/"+big+"/url?expiry=169", nil), "expiry")

	if got := s.call(t, "DELETE", "/v1/files/"+big, nil).want(t, 200).object(t); got["deleted"] != true || got["id"] != big {
		t.Errorf("delete %v", got)
	}
	for _, path := range []string{"/v1/files/" + big, "/v1/files/" + big + "/content", "/v1/files/" + big + "/url"} {
		wantError(t, s.call(t, "GET", path, nil), 404, "not_found_error", big)
	}
	wantError(t, s.call(t, "DELETE", "/v1/files/"+big, nil), 404, "not_found_error", big)
	if status, _ := get(t, url); status != http.StatusNotFound {
		t.Errorf("the signed URL of a deleted file answered %d, want 404", status)
	}
	wantDetail(t, s.call(t, "GET", "/v1/files/not-a-uuid", nil), "file_id")

	body, ct = multipartForm(t, map[string]string{"purpose": "music"}, "a.mp3", []byte("x"))
	wantDetail(t, send(t, s, s.Key, "POST", "/v1/files", body, ct), "purpose")
	body, ct = multipartForm(t, map[string]string{"purpose": "batch"}, "", nil)
	wantDetail(t, send(t, s, s.Key, "POST", "/v1/files", body, ct), "file")
}

// TestBatchJobs: a job needs input files the server has (404 as Mistral
// answers otherwise); it is queued, listed, cancelled in two steps (the
// request, then its effect), finished by FinishBatchJob with an output
// file of source "mistral", and gone once deleted.
func TestBatchJobs(t *testing.T) {
	s := New(t)
	input := s.upload(t, "input.jsonl", "batch", []byte(batchInput))
	missing := uuid.NewString()
	create := func(files ...string) response {
		return s.call(t, "POST", "/v1/batch/jobs", map[string]any{"input_files": files, "endpoint": "/v1/chat/completions", "model": "mistral-small-latest"})
	}
	wantError(t, create(input, missing), 404, "not_found_error", missing)
	if n := len(s.call(t, "GET", "/v1/batch/jobs", nil).want(t, 200).object(t)["data"].([]any)); n != 0 {
		t.Fatalf("a refused job was kept: %d jobs", n)
	}
	wantDetail(t, s.call(t, "POST", "/v1/batch/jobs", map[string]any{"input_files": []string{input}, "endpoint": "/v1/images", "model": "m"}), "endpoint")

	job := create(input).want(t, 200).object(t)
	if job["status"] != "QUEUED" || num(t, job, "total_requests") != 2 || job["output_file"] != nil {
		t.Fatalf("created %v", job)
	}
	jobID := str(t, job, "id")
	inline := s.call(t, "POST", "/v1/batch/jobs", map[string]any{
		"requests": []any{map[string]any{"custom_id": "x", "body": map[string]any{}}}, "endpoint": "/v1/embeddings", "model": "mistral-embed",
	}).want(t, 200).object(t)
	inlineID := str(t, inline, "id")

	list := s.call(t, "GET", "/v1/batch/jobs", nil).want(t, 200).object(t)
	if got := ids(t, list["data"].([]any)); len(got) != 2 || got[0] != inlineID || num(t, list, "total") != 2 {
		t.Fatalf("list %v, want both jobs newest first", list)
	}
	if got := ids(t, s.call(t, "GET", "/v1/batch/jobs?model=mistral-embed", nil).want(t, 200).object(t)["data"].([]any)); len(got) != 1 || got[0] != inlineID {
		t.Errorf("list by model: %v", got)
	}

	cancelled := s.call(t, "POST", "/v1/batch/jobs/"+inlineID+"/cancel", nil).want(t, 200).object(t)
	if cancelled["status"] != "CANCELLATION_REQUESTED" {
		t.Fatalf("cancel answered %v", cancelled)
	}
	if got := s.call(t, "GET", "/v1/batch/jobs/"+inlineID, nil).want(t, 200).object(t); got["status"] != "CANCELLED" || got["completed_at"] == nil {
		t.Fatalf("after the cancellation: %v", got)
	}
	wantError(t, s.call(t, "POST", "/v1/batch/jobs/"+inlineID+"/cancel", nil), 400, "invalid_request_error", "CANCELLED")
	if _, err := s.FinishBatchJob(inlineID); err == nil {
		t.Error("FinishBatchJob finished a cancelled job")
	}
	if got := ids(t, s.call(t, "GET", "/v1/batch/jobs?status=QUEUED", nil).want(t, 200).object(t)["data"].([]any)); len(got) != 1 || got[0] != jobID {
		t.Errorf("queued jobs: %v", got)
	}

	output, err := s.FinishBatchJob(jobID)
	if err != nil {
		t.Fatal(err)
	}
	done := s.call(t, "GET", "/v1/batch/jobs/"+jobID+"?inline=true", nil).want(t, 200).object(t)
	outputs, _ := done["outputs"].([]any)
	if done["status"] != "SUCCESS" || done["output_file"] != output || num(t, done, "succeeded_requests") != 2 || len(outputs) != 2 ||
		outputs[1].(map[string]any)["custom_id"] != "b" {
		t.Fatalf("finished job %v", done)
	}
	file := s.call(t, "GET", "/v1/files/"+output, nil).want(t, 200).object(t)
	if file["source"] != "mistral" || file["sample_type"] != "batch_result" || num(t, file, "num_lines") != 2 {
		t.Errorf("output file %v", file)
	}
	if lines := strings.Count(string(s.call(t, "GET", "/v1/files/"+output+"/content", nil).want(t, 200).body), "\n"); lines != 2 {
		t.Errorf("the output file has %d lines, want 2", lines)
	}
	if _, err := s.FinishBatchJob(jobID); err == nil {
		t.Error("FinishBatchJob finished a job twice")
	}

	if got := s.call(t, "DELETE", "/v1/batch/jobs/"+jobID, nil).want(t, 200).object(t); got["deleted"] != true {
		t.Errorf("delete %v", got)
	}
	wantError(t, s.call(t, "GET", "/v1/batch/jobs/"+jobID, nil), 404, "not_found_error", jobID)
	wantError(t, s.call(t, "POST", "/v1/batch/jobs/"+jobID+"/cancel", nil), 404, "not_found_error", jobID)
}

// TestAgents: an update makes a new version, versions and aliases are
// listed and read, the current version switches, pages follow their
// cursor, and a deleted agent is gone.
func TestAgents(t *testing.T) {
	s := New(t)
	f := &fixture{s: s}
	first, second := f.newAgent(t), f.newAgent(t)
	updated := s.call(t, "PATCH", "/v1/agents/"+first, map[string]any{"instructions": "Answer in French.", "deployment_chat": true}).want(t, 200).object(t)
	if num(t, updated, "version") != 1 || updated["instructions"] != "Answer in French." || updated["deployment_chat"] != true ||
		updated["model"] != "mistral-small-latest" || len(updated["versions"].([]any)) != 2 {
		t.Fatalf("update answered %v", updated)
	}
	if got := s.call(t, "GET", "/v1/agents?deployment_chat=true", nil).want(t, 200).list(t); len(got) != 1 || got[0]["id"] != first {
		t.Errorf("list filtered by deployment_chat: %v", got)
	}
	versions := s.call(t, "GET", "/v1/agents/"+first+"/versions", nil).want(t, 200).list(t)
	if len(versions) != 2 || versions[0]["instructions"] != "Be brief." || num(t, versions[1], "version") != 1 {
		t.Fatalf("versions %v", versions)
	}
	if v := s.call(t, "GET", "/v1/agents/"+first+"/versions/0", nil).want(t, 200).object(t); v["instructions"] != "Be brief." {
		t.Errorf("version 0: %v", v)
	}
	wantError(t, s.call(t, "GET", "/v1/agents/"+first+"/versions/7", nil), 404, "not_found_error", "7")

	alias := s.call(t, "PUT", "/v1/agents/"+first+"/aliases?alias=stable&version=0", nil).want(t, 200).object(t)
	if alias["alias"] != "stable" || num(t, alias, "version") != 0 {
		t.Fatalf("alias %v", alias)
	}
	s.call(t, "PUT", "/v1/agents/"+first+"/aliases?alias=stable&version=1", nil).want(t, 200)
	aliases := s.call(t, "GET", "/v1/agents/"+first+"/aliases", nil).want(t, 200).list(t)
	if len(aliases) != 1 || num(t, aliases[0], "version") != 1 {
		t.Fatalf("aliases %v, want stable at version 1", aliases)
	}
	if v := s.call(t, "GET", "/v1/agents/"+first+"?agent_version=stable", nil).want(t, 200).object(t); num(t, v, "version") != 1 {
		t.Errorf("by alias: %v", v)
	}
	wantDetail(t, s.call(t, "PUT", "/v1/agents/"+first+"/aliases?alias=Bad!&version=0", nil), "alias")
	wantError(t, s.call(t, "PUT", "/v1/agents/"+first+"/aliases?alias=next&version=5", nil), 404, "not_found_error")
	s.call(t, "DELETE", "/v1/agents/"+first+"/aliases?alias=stable", nil).want(t, 204)
	wantError(t, s.call(t, "DELETE", "/v1/agents/"+first+"/aliases?alias=stable", nil), 404, "not_found_error", "stable")

	switched := s.call(t, "PATCH", "/v1/agents/"+first+"/version?version=0", nil).want(t, 200).object(t)
	if num(t, switched, "version") != 0 || switched["instructions"] != "Be brief." {
		t.Fatalf("switch %v", switched)
	}
	if v := s.call(t, "GET", "/v1/agents/"+first, nil).want(t, 200).object(t); num(t, v, "version") != 0 {
		t.Errorf("after the switch the agent is at %v", v["version"])
	}

	page1 := s.call(t, "GET", "/v1/agents/pages?page_size=1", nil).want(t, 200).object(t)
	token, _ := page1["next_page_token"].(string)
	if got := ids(t, page1["data"].([]any)); len(got) != 1 || got[0] != first || token == "" {
		t.Fatalf("first page %v", page1)
	}
	page2 := s.call(t, "GET", "/v1/agents/pages?page_size=1&page_token="+token, nil).want(t, 200).object(t)
	if got := ids(t, page2["data"].([]any)); len(got) != 1 || got[0] != second || page2["next_page_token"] != nil {
		t.Fatalf("second page %v", page2)
	}
	if got := s.call(t, "GET", "/v1/agents?page=0&page_size=10&deployment_chat=true", nil).want(t, 200).list(t); len(got) != 0 {
		t.Errorf("list filtered by deployment_chat after switching back to version 0: %v", got)
	}

	s.call(t, "DELETE", "/v1/agents/"+first, nil).want(t, 204)
	for _, path := range []string{"/v1/agents/" + first, "/v1/agents/" + first + "/versions", "/v1/agents/" + first + "/aliases"} {
		wantError(t, s.call(t, "GET", path, nil), 404, "not_found_error", first)
	}
	wantError(t, s.call(t, "POST", "/v1/agents/completions", map[string]any{"agent_id": first, "messages": hello}), 404, "not_found_error", first)
	wantDetail(t, s.call(t, "POST", "/v1/agents", map[string]any{"name": "no model"}), "model")
}

// TestConversations: entries accumulate through appends, a restart makes
// a new conversation from the entries before the one named, stored only
// when asked, and a conversation with an unknown agent is refused.
func TestConversations(t *testing.T) {
	s := New(t)
	f := &fixture{s: s}
	conv, firstEntry := f.newConversation(t)
	appended := s.call(t, "POST", "/v1/conversations/"+conv, map[string]any{"inputs": []any{map[string]any{"role": "user", "content": "Next"}}}).want(t, 200).object(t)
	if appended["conversation_id"] != conv || len(appended["outputs"].([]any)) != 1 {
		t.Fatalf("append answered %v", appended)
	}
	history := s.call(t, "GET", "/v1/conversations/"+conv+"/history", nil).want(t, 200).object(t)["entries"].([]any)
	if len(history) != 4 {
		t.Fatalf("history has %d entries, want 4", len(history))
	}
	types := []string{}
	for _, e := range history {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if strings.Join(types, ",") != "message.input,message.output,message.input,message.output" {
		t.Errorf("entry types %v", types)
	}
	messages := s.call(t, "GET", "/v1/conversations/"+conv+"/messages", nil).want(t, 200).object(t)["messages"].([]any)
	if len(messages) != 4 {
		t.Errorf("%d messages, want 4", len(messages))
	}

	third := str(t, history[2].(map[string]any), "id")
	restarted := s.call(t, "POST", "/v1/conversations/"+conv+"/restart", map[string]any{"from_entry_id": third, "inputs": "Instead"}).want(t, 200).object(t)
	newConv := str(t, restarted, "conversation_id")
	if newConv == conv {
		t.Fatal("a restart answered the same conversation")
	}
	if got := s.call(t, "GET", "/v1/conversations/"+newConv+"/history", nil).want(t, 200).object(t)["entries"].([]any); len(got) != 4 ||
		got[0].(map[string]any)["id"] != firstEntry || got[2].(map[string]any)["content"] != "Instead" {
		t.Errorf("restarted history %v, want the two entries before the third and the new ones", got)
	}
	wantError(t, s.call(t, "POST", "/v1/conversations/"+conv+"/restart", map[string]any{"from_entry_id": "msg_none"}), 404, "not_found_error", "msg_none")

	unstored := s.call(t, "POST", "/v1/conversations", map[string]any{"inputs": "Hi", "model": "m", "store": false}).want(t, 200).object(t)
	wantError(t, s.call(t, "GET", "/v1/conversations/"+str(t, unstored, "conversation_id"), nil), 404, "not_found_error")
	s.call(t, "POST", "/v1/conversations/"+conv, map[string]any{"inputs": "Not kept", "store": false}).want(t, 200)
	if got := s.call(t, "GET", "/v1/conversations/"+conv+"/history", nil).object(t)["entries"].([]any); len(got) != 4 {
		t.Errorf("an append with store false was kept: %d entries", len(got))
	}

	agent := f.newAgent(t)
	withAgent := s.call(t, "POST", "/v1/conversations", map[string]any{"inputs": "Hi", "agent_id": agent, "metadata": map[string]any{"team": "a"}}).want(t, 200).object(t)
	agentConv := s.call(t, "GET", "/v1/conversations/"+str(t, withAgent, "conversation_id"), nil).want(t, 200).object(t)
	if agentConv["agent_id"] != agent || agentConv["model"] != nil {
		t.Errorf("agent conversation %v", agentConv)
	}
	list := s.call(t, "GET", "/v1/conversations", nil).want(t, 200).list(t)
	if len(list) != 3 || list[0]["id"] != withAgent["conversation_id"] {
		t.Errorf("list %v, want three conversations newest first", list)
	}
	if got := s.call(t, "GET", `/v1/conversations?metadata={"team":"a"}`, nil).want(t, 200).list(t); len(got) != 1 {
		t.Errorf("list by metadata: %v", got)
	}
	wantError(t, s.call(t, "POST", "/v1/conversations", map[string]any{"inputs": "Hi", "agent_id": "ag_none"}), 404, "not_found_error", "ag_none")
	wantDetail(t, s.call(t, "POST", "/v1/conversations", map[string]any{"model": "m"}), "inputs")

	s.call(t, "DELETE", "/v1/conversations/"+conv, nil).want(t, 204)
	for _, path := range []string{"", "/history", "/messages"} {
		wantError(t, s.call(t, "GET", "/v1/conversations/"+conv+path, nil), 404, "not_found_error", conv)
	}
	wantError(t, s.call(t, "POST", "/v1/conversations/"+conv, map[string]any{"inputs": "Hi"}), 404, "not_found_error", conv)
}

// TestLibraries: documents are uploaded (the same content twice is the
// same document, 200), listed, renamed, read as text and through signed
// URLs, shared and unshared, and gone with their library.
func TestLibraries(t *testing.T) {
	s := New(t)
	f := &fixture{s: s}
	f.library = f.newLibrary(t)
	lib := "/v1/libraries/" + f.library
	body, ct := multipartForm(t, nil, "faq.md", []byte("# FAQ\nAsk away."))
	doc := send(t, s, s.Key, "POST", lib+"/documents", body, ct).want(t, 201).object(t)
	docID := str(t, doc, "id")
	if doc["extension"] != "md" || num(t, doc, "size") != 15 || doc["process_status"] != "done" {
		t.Fatalf("upload answered %v", doc)
	}
	body, ct = multipartForm(t, nil, "faq-copy.md", []byte("# FAQ\nAsk away."))
	if again := send(t, s, s.Key, "POST", lib+"/documents", body, ct).want(t, 200).object(t); again["id"] != docID {
		t.Errorf("the same content again gave %v, want document %s", again["id"], docID)
	}
	other := f.newDocument(t)
	if got := s.call(t, "GET", lib, nil).want(t, 200).object(t); num(t, got, "nb_documents") != 2 {
		t.Errorf("library %v, want 2 documents", got)
	}
	docs := s.call(t, "GET", lib+"/documents?page_size=1&page=0", nil).want(t, 200).object(t)
	pagination := docs["pagination"].(map[string]any)
	if got := ids(t, docs["data"].([]any)); len(got) != 1 || got[0] != other || pagination["has_more"] != true || num(t, pagination, "total_items") != 2 {
		t.Fatalf("first page of documents %v", docs)
	}
	if got := ids(t, s.call(t, "GET", lib+"/documents?search=faq", nil).want(t, 200).object(t)["data"].([]any)); len(got) != 1 || got[0] != docID {
		t.Errorf("search: %v", got)
	}

	renamed := s.call(t, "PATCH", lib+"/documents/"+docID, map[string]any{"name": "questions.md", "attributes": map[string]any{"lang": "en"}}).want(t, 200).object(t)
	if renamed["name"] != "questions.md" || renamed["attributes"].(map[string]any)["lang"] != "en" {
		t.Errorf("patch answered %v", renamed)
	}
	if got := s.call(t, "GET", lib+"/documents/"+docID+"/text_content", nil).want(t, 200).object(t); got["text"] != "# FAQ\nAsk away." {
		t.Errorf("text %v", got)
	}
	if got := s.call(t, "GET", lib+"/documents/"+docID+"/status", nil).want(t, 200).object(t); got["document_id"] != docID || got["process_status"] != "done" {
		t.Errorf("status %v", got)
	}
	for path, want := range map[string]string{"/signed-url": "# FAQ\nAsk away.", "/extracted-text-signed-url": "# FAQ\nAsk away."} {
		var url string
		if err := json.Unmarshal(s.call(t, "GET", lib+"/documents/"+docID+path, nil).want(t, 200).body, &url); err != nil {
			t.Fatalf("%s is not a JSON string: %v", path, err)
		}
		if status, got := get(t, url); status != 200 || string(got) != want {
			t.Errorf("%s %s: %d %q", path, url, status, got)
		}
	}
	s.call(t, "POST", lib+"/documents/"+docID+"/reprocess", nil).want(t, 204)

	who := uuid.NewString()
	share := s.call(t, "PUT", lib+"/share", map[string]any{"level": "Viewer", "share_with_uuid": who, "share_with_type": "User"}).want(t, 200).object(t)
	if share["role"] != "Viewer" || share["share_with_uuid"] != who {
		t.Fatalf("share answered %v", share)
	}
	s.call(t, "PUT", lib+"/share", map[string]any{"level": "Editor", "share_with_uuid": who, "share_with_type": "User"}).want(t, 200)
	shares := s.call(t, "GET", lib+"/share", nil).want(t, 200).object(t)["data"].([]any)
	if len(shares) != 2 || shares[0].(map[string]any)["role"] != "Owner" || shares[1].(map[string]any)["role"] != "Editor" {
		t.Fatalf("shares %v, want the owner and one editor", shares)
	}
	unshare := map[string]any{"share_with_uuid": who, "share_with_type": "User"}
	s.call(t, "DELETE", lib+"/share", unshare).want(t, 200)
	wantError(t, s.call(t, "DELETE", lib+"/share", unshare), 404, "not_found_error", who)

	s.call(t, "DELETE", lib+"/documents/"+other, nil).want(t, 204)
	wantError(t, s.call(t, "GET", lib+"/documents/"+other, nil), 404, "not_found_error", other)
	s.call(t, "DELETE", lib, nil).want(t, 200)
	for _, path := range []string{lib, lib + "/documents", lib + "/documents/" + docID, lib + "/share"} {
		wantError(t, s.call(t, "GET", path, nil), 404, "not_found_error", f.library)
	}
	wantDetail(t, s.call(t, "GET", "/v1/libraries/handbook", nil), "library_id")
}

// TestVoices: custom voices are made, listed apart from the presets,
// changed, heard and deleted; presets cannot change.
func TestVoices(t *testing.T) {
	s := New(t)
	sample := wav(320)
	made := s.call(t, "POST", "/v1/audio/voices", map[string]any{"name": "guide", "slug": "guide", "sample_audio": base64.StdEncoding.EncodeToString(sample)}).want(t, 200).object(t)
	id := str(t, made, "id")
	for kind, want := range map[string]int{"all": 3, "custom": 1, "preset": 2} {
		got := s.call(t, "GET", "/v1/audio/voices?type="+kind, nil).want(t, 200).object(t)
		if num(t, got, "total") != want || len(got["items"].([]any)) != want {
			t.Errorf("type=%s: %v, want %d voices", kind, got, want)
		}
	}
	paged := s.call(t, "GET", "/v1/audio/voices?limit=2&offset=2", nil).want(t, 200).object(t)
	if len(paged["items"].([]any)) != 1 || num(t, paged, "page") != 2 || num(t, paged, "total_pages") != 2 {
		t.Errorf("second page %v", paged)
	}
	if got := s.call(t, "GET", "/v1/audio/voices/guide", nil).want(t, 200).object(t); got["id"] != id {
		t.Errorf("by slug: %v", got)
	}
	changed := s.call(t, "PATCH", "/v1/audio/voices/"+id, map[string]any{"name": "tour guide", "languages": []string{"fr"}}).want(t, 200).object(t)
	if changed["name"] != "tour guide" || changed["languages"].([]any)[0] != "fr" || changed["slug"] != "guide" {
		t.Errorf("patch answered %v", changed)
	}
	heard := s.call(t, "GET", "/v1/audio/voices/"+id+"/sample", nil).want(t, 200)
	if !bytes.Equal(heard.body, sample) || heard.contentType != "audio/wav" {
		t.Errorf("sample: %d bytes as %s, want the %d given", len(heard.body), heard.contentType, len(sample))
	}
	preset := ids(t, s.call(t, "GET", "/v1/audio/voices?type=preset", nil).object(t)["items"].([]any))[0]
	wantError(t, s.call(t, "DELETE", "/v1/audio/voices/"+preset, nil), 403, "permission_error", preset)
	if got := s.call(t, "GET", "/v1/audio/voices/"+preset+"/sample", nil).want(t, 200); !bytes.HasPrefix(got.body, []byte("RIFF")) {
		t.Errorf("a preset's sample is not a WAV: %q", got.body[:min(len(got.body), 8)])
	}
	s.call(t, "DELETE", "/v1/audio/voices/"+id, nil).want(t, 200)
	wantError(t, s.call(t, "GET", "/v1/audio/voices/"+id, nil), 404, "not_found_error", id)
	wantError(t, s.call(t, "POST", "/v1/audio/speech", map[string]any{"input": "Hi", "voice_id": id}), 404, "not_found_error", id)
	wantDetail(t, s.call(t, "POST", "/v1/audio/voices", map[string]any{"name": "x", "sample_audio": "%%%"}), "sample_audio")
}

// TestModels: the list holds the base models and the fine-tuned ones
// added; a fine-tuned model is renamed, archived, unarchived and deleted;
// a base model cannot be deleted.
func TestModels(t *testing.T) {
	s := New(t)
	ft := s.AddFineTunedModel("mistral-small-latest")
	s.AddBaseModel("m", "completion_chat")
	list := s.call(t, "GET", "/v1/models", nil).want(t, 200).object(t)["data"].([]any)
	found := map[string]map[string]any{}
	for _, c := range list {
		found[c.(map[string]any)["id"].(string)] = c.(map[string]any)
	}
	if found[ft]["type"] != "fine-tuned" || found[ft]["root"] != "mistral-small-latest" || found["m"]["type"] != "base" ||
		found["m"]["capabilities"].(map[string]any)["completion_chat"] != true || found["mistral-embed"] == nil {
		t.Fatalf("model list %v", list)
	}
	if got := s.call(t, "GET", "/v1/models?model=m", nil).want(t, 200).object(t)["data"].([]any); len(got) != 1 {
		t.Errorf("list of model m: %v", got)
	}
	if got := s.call(t, "PATCH", "/v1/fine_tuning/models/"+ft, map[string]any{"name": "support"}).want(t, 200).object(t); got["name"] != "support" || got["model_type"] != "completion" {
		t.Errorf("rename answered %v", got)
	}
	s.call(t, "POST", "/v1/fine_tuning/models/"+ft+"/archive", nil).want(t, 200)
	if got := s.call(t, "GET", "/v1/models/"+ft, nil).want(t, 200).object(t); got["archived"] != true || got["name"] != "support" {
		t.Errorf("after archiving: %v", got)
	}
	if got := s.call(t, "DELETE", "/v1/fine_tuning/models/"+ft+"/archive", nil).want(t, 200).object(t); got["archived"] != false {
		t.Errorf("unarchive answered %v", got)
	}
	wantError(t, s.call(t, "POST", "/v1/fine_tuning/models/mistral-embed/archive", nil), 404, "not_found_error", "mistral-embed")
	wantError(t, s.call(t, "DELETE", "/v1/models/mistral-embed", nil), 403, "permission_error", "mistral-embed")
	if got := s.call(t, "DELETE", "/v1/models/"+ft, nil).want(t, 200).object(t); got["deleted"] != true || got["id"] != ft {
		t.Errorf("delete answered %v", got)
	}
	wantError(t, s.call(t, "GET", "/v1/models/"+ft, nil), 404, "not_found_error", ft)
	wantError(t, s.call(t, "PATCH", "/v1/fine_tuning/models/"+ft, map[string]any{"name": "x"}), 404, "not_found_error", ft)
}
