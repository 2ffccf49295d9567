package gateway

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/steward"
)

const (
	// maxUploadBytes caps a multipart request body (a transcription's
	// audio), which is forwarded as it arrives, never held whole.
	maxUploadBytes = 1 << 30
	// maxFormHeadBytes caps what is read of a multipart body before its
	// model field: it is held, to be sent upstream before the rest.
	maxFormHeadBytes = 1 << 20
	// maxFieldBytes caps a form field the gateway reads.
	maxFieldBytes = 1 << 10
)

// serveUpload handles a POST of a multipart form once the key is checked:
// it reads the form's head, its fields up to its file (or its end), which
// must hold its model field (Mistral's and OpenAI's SDKs send it first),
// and sends upstream what it read followed by the rest of the body as it
// arrives. A file the head names (file_id) must be the caller's
// Workspace's; the rest of the form may name no model or file again
// (formGuard). Whether the answer streams is the upstream's to say (its
// Content-Type), the stream field coming after the file.
func (x *exchange) serveUpload() {
	mt, params, err := mime.ParseMediaType(x.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		x.fail(steward.Invalid([]string{"body"}, "the body must be a multipart/form-data form"))
		return
	}
	body := http.MaxBytesReader(x.w, x.r.Body, maxUploadBytes)
	head := &formHead{}
	fields, err := readFormHead(multipart.NewReader(io.TeeReader(body, head), params["boundary"]))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = steward.Errorf(steward.KindTooLarge, "the request body exceeds %d bytes", maxUploadBytes)
		}
		x.fail(err)
		return
	}
	x.req = &request{model: fields.model, n: 1}
	if len(fields.files) > 0 && !(&forwarding{x: x}).ownsAll(inference.ObjectFile, fields.files) {
		return
	}
	if x.model() == nil || !x.reserve() {
		return
	}
	guard := newFormGuard(io.MultiReader(&head.buf, body), params["boundary"], fields)
	defer guard.Close()
	x.upload = guard
	x.forward(nil, false)
}

// formHead holds what is read of a form before its file, up to
// maxFormHeadBytes.
type formHead struct{ buf bytes.Buffer }

// errFormHead is formHead's refusal to hold more.
var errFormHead = errors.New("the form's head exceeds its bound")

func (h *formHead) Write(p []byte) (int, error) {
	if h.buf.Len()+len(p) > maxFormHeadBytes {
		return 0, errFormHead
	}
	return h.buf.Write(p)
}

// formFields are the fields of a form the gateway reads: its model, and
// the files it names (file_id), which the upstream reads instead of a
// file part.
type formFields struct {
	model string
	files []string
}

// errNoModel refuses a form whose model field is not in its head.
var errNoModel = steward.Invalid([]string{"body", "model"}, "Field required: the form's model field must come before its file, within its first %d bytes", maxFormHeadBytes)

// readFormHead reads a form's parts until its first file, or its end, and
// returns the fields read. A form without a model field there, with two,
// or with a head larger than maxFormHeadBytes is a validation error naming
// the field.
func readFormHead(form *multipart.Reader) (formFields, error) {
	var f formFields
	for {
		part, err := form.NextPart()
		var tooLarge *http.MaxBytesError
		switch {
		case (err == io.EOF || errors.Is(err, errFormHead)) && f.model == "":
			return f, errNoModel
		case err == io.EOF:
			return f, nil
		case errors.Is(err, errFormHead):
			return f, steward.Invalid([]string{"body"}, "the form's fields before its file exceed %d bytes", maxFormHeadBytes)
		case errors.As(err, &tooLarge):
			return f, err
		case err != nil:
			return f, steward.Invalid([]string{"body"}, "the body must be a multipart/form-data form")
		}
		name := part.FormName()
		if name != "model" && name != "file_id" {
			if part.FileName() == "" {
				continue
			}
			if f.model == "" {
				return f, errNoModel
			}
			return f, nil
		}
		v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		value := strings.TrimSpace(string(v))
		switch {
		case err != nil || len(v) > maxFieldBytes || value == "":
			return f, steward.Invalid([]string{"body", name}, "%s must be a non-empty string", name)
		case name == "file_id":
			f.files = append(f.files, value)
		case f.model != "":
			return f, steward.Invalid([]string{"body", "model"}, "model is given twice")
		default:
			f.model = value
		}
	}
}

// guardTail is how much of a form formGuard holds back until it has read
// the whole of it: more than its closing delimiter, so that the upstream
// never has a whole form the guard has not checked.
const guardTail = 4 << 10

// formGuard is a form sent upstream as it arrives, read again by a
// multipart parser of its own as it passes: the form may name a model or
// files only in its head, as the gateway read them there, since a field
// given again (after the file, which the head does not read) would be the
// one the upstream uses. It holds back the form's last guardTail bytes
// until the parser has read it all; a form that names another model or
// file then is cut before its end, and its upload fails with refused.
type formGuard struct {
	src  io.Reader
	want formFields
	pw   *io.PipeWriter
	// done is closed when the parser has read the form; refused is then
	// why the form may not be sent, nil when it may.
	done    chan struct{}
	refused error
	held    []byte
	eof     bool
	buf     []byte
	// failed ends every read once one has failed, so that nothing held
	// is sent after it.
	failed error
	// cut is the refusal of a form cut before its end, read by the
	// handler while the transport may still hold the form.
	mu  sync.Mutex
	cut error
}

func newFormGuard(src io.Reader, boundary string, want formFields) *formGuard {
	pr, pw := io.Pipe()
	g := &formGuard{src: src, want: want, pw: pw, done: make(chan struct{}), buf: make([]byte, 32<<10)}
	go g.parse(multipart.NewReader(pr, boundary), pr)
	return g
}

// parse reads the form's parts, counting its model and file_id fields,
// then drains the pipe so that the guard never blocks on it.
func (g *formGuard) parse(form *multipart.Reader, pr *io.PipeReader) {
	var models int
	var files []string
	var err error
	for {
		var part *multipart.Part
		if part, err = form.NextPart(); err != nil {
			break
		}
		switch part.FormName() {
		case "model":
			models++
		case "file_id":
			v, _ := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			files = append(files, strings.TrimSpace(string(v)))
		}
		_, _ = io.Copy(io.Discard, part)
	}
	switch {
	case err != io.EOF:
		// What the parser cannot read, it cannot say names nothing.
		g.refused = steward.Invalid([]string{"body"}, "the body must be a multipart/form-data form")
	case models != 1 || !slices.Equal(files, g.want.files):
		g.refused = steward.Invalid([]string{"body"}, "the form names its model and files (file_id) more than once: only before its file, once")
	}
	close(g.done)
	_, _ = io.Copy(io.Discard, pr)
}

// Read passes the form on as it arrives, but for its last guardTail bytes,
// which it passes once the parser has read the whole form and found it
// may be sent.
func (g *formGuard) Read(p []byte) (int, error) {
	if g.failed != nil {
		return 0, g.failed
	}
	for !g.eof && len(g.held) <= guardTail {
		n, err := g.src.Read(g.buf)
		if n > 0 {
			if _, werr := g.pw.Write(g.buf[:n]); werr != nil {
				g.failed = werr
				return 0, werr
			}
			g.held = append(g.held, g.buf[:n]...)
		}
		if err == io.EOF {
			g.eof = true
			_ = g.pw.Close()
			<-g.done
			if g.refused != nil {
				g.mu.Lock()
				g.cut = g.refused
				g.mu.Unlock()
				g.failed = g.refused
				return 0, g.refused
			}
		} else if err != nil {
			_ = g.pw.CloseWithError(err)
			g.failed = err
			return 0, err
		}
	}
	if len(g.held) == 0 {
		return 0, io.EOF
	}
	free := len(g.held)
	if !g.eof {
		free -= guardTail
	}
	n := copy(p, g.held[:free])
	g.held = g.held[:copy(g.held, g.held[n:])]
	return n, nil
}

// Close stops the parser of a form not read to its end.
func (g *formGuard) Close() error {
	_ = g.pw.CloseWithError(io.ErrClosedPipe)
	return nil
}

// uploadRefused is why an upload that failed was refused by its guard, or
// nil.
func (x *exchange) uploadRefused() error {
	g, ok := x.upload.(*formGuard)
	if !ok {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cut
}

// eventStream reports whether an answer's Content-Type is
// text/event-stream.
func eventStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}
