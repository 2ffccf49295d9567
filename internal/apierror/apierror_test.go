package apierror

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stewardhq/steward/internal/steward"
)

func TestEncode(t *testing.T) {
	invalid := steward.Invalid([]string{"query", "limit"}, "too big")
	invalid.Also = []*steward.Error{steward.Invalid(nil, "and this")}
	status, body := Encode(invalid)
	v, ok := body.(Validation)
	if status != 422 || !ok || len(v.Detail) != 2 || v.Detail[0].Loc[1] != "limit" || v.Detail[1].Loc[0] != "body" {
		t.Fatalf("invalid: %d %+v", status, body)
	}
	status, body = Encode(&steward.Error{Kind: steward.KindConflict, Message: "taken", Field: []string{"body", "name"}})
	b := body.(Body)
	if status != 409 || b.Type != "invalid_request_error" || *b.Code != "conflict" || *b.Param != "name" || b.Object != "error" {
		t.Fatalf("conflict: %d %+v", status, b)
	}
	for kind, want := range map[steward.Kind]int{steward.KindUnauthenticated: 401, steward.KindForbidden: 403, steward.KindNotFound: 404,
		steward.KindRateLimited: 429, steward.KindUnavailable: 503, steward.KindTooLarge: 413, steward.KindInternal: 500} {
		if got := Status(kind); got != want {
			t.Errorf("Status(%v) = %d, want %d", kind, got, want)
		}
	}
	if e := As(errors.New("driver exploded")); e.Kind != steward.KindInternal || e.Message != "internal error" {
		t.Fatalf("As(plain error) = %+v: the cause must not reach the client", e)
	}
	w := httptest.NewRecorder()
	Write(w, &steward.Error{Kind: steward.KindUnauthenticated, Message: "no key"})
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("Write: %d %v", w.Code, w.Header())
	}
}
