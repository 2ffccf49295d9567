package steward

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	random := regexp.MustCompile(`^[0-9a-f]{32}$`)
	if got := RequestID("trace-123"); got != "trace-123" {
		t.Errorf("a reasonable id became %q", got)
	}
	if got := RequestID(strings.Repeat("a", 128)); got != strings.Repeat("a", 128) {
		t.Errorf("a 128-character id became %q", got)
	}
	for _, bad := range []string{"", strings.Repeat("a", 129), "has space", "tab\t", "line\nbreak", "café", "del\x7f"} {
		if got := RequestID(bad); !random.MatchString(got) {
			t.Errorf("RequestID(%q) = %q, want a new random id", bad, got)
		}
	}
	if a, b := RandomID(), RandomID(); a == b || !random.MatchString(a) {
		t.Errorf("RandomID gave %q and %q", a, b)
	}
}

func TestRequestIDInContext(t *testing.T) {
	if got := RequestIDFrom(context.Background()); got != "" {
		t.Errorf("a context without an id gave %q", got)
	}
	ctx := WithRequestID(context.Background(), "trace-123")
	if got := RequestIDFrom(WithPrincipal(ctx, Principal{})); got != "trace-123" {
		t.Errorf("RequestIDFrom = %q, want trace-123", got)
	}
}
