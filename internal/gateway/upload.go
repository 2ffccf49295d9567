package gateway

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

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
// it reads the form up to its model field, which must come before any
// file (as Mistral's and OpenAI's SDKs send it), and sends upstream what
// it read followed by the rest of the body as it arrives. Whether the
// answer streams is the upstream's to say (its Content-Type), the stream
// field coming after the file.
func (x *exchange) serveUpload() {
	mt, params, err := mime.ParseMediaType(x.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		x.fail(steward.Invalid([]string{"body"}, "the body must be a multipart/form-data form"))
		return
	}
	body := http.MaxBytesReader(x.w, x.r.Body, maxUploadBytes)
	head := &formHead{}
	model, err := formModel(multipart.NewReader(io.TeeReader(body, head), params["boundary"]))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = steward.Errorf(steward.KindTooLarge, "the request body exceeds %d bytes", maxUploadBytes)
		}
		x.fail(err)
		return
	}
	x.req = &request{model: model, n: 1}
	if x.model() == nil || !x.reserve() {
		return
	}
	x.upload = io.MultiReader(&head.buf, body)
	x.forward(nil, false)
}

// formHead holds what is read of a form before its model field, up to
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

// formModel reads a form's parts until its model field and returns it. A
// file before it, or a form that has none within maxFormHeadBytes, is a
// validation error naming the field.
func formModel(form *multipart.Reader) (string, error) {
	for {
		part, err := form.NextPart()
		var tooLarge *http.MaxBytesError
		switch {
		case err == io.EOF || errors.Is(err, errFormHead):
			return "", steward.Invalid([]string{"body", "model"}, "Field required: the form's model field must come before its file, within its first %d bytes", maxFormHeadBytes)
		case errors.As(err, &tooLarge):
			return "", err
		case err != nil:
			return "", steward.Invalid([]string{"body"}, "the body must be a multipart/form-data form")
		}
		if part.FormName() != "model" {
			if part.FileName() != "" {
				return "", steward.Invalid([]string{"body", "model"}, "Field required: the form's model field must come before its file, within its first %d bytes", maxFormHeadBytes)
			}
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		model := strings.TrimSpace(string(v))
		if err != nil || len(v) > maxFieldBytes || model == "" {
			return "", steward.Invalid([]string{"body", "model"}, "model must be a non-empty string")
		}
		return model, nil
	}
}

// eventStream reports whether an answer's Content-Type is
// text/event-stream.
func eventStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}
