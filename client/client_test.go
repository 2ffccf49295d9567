package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/stewardhq/steward/client"
	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// checked is an HTTP client whose every answer is validated against
// Steward's and Mistral's OpenAPI documents.
type checked struct {
	t        *testing.T
	http     *http.Client
	contract *apitest.Contract
}

func (c checked) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.contract.Check(c.t, req, resp, body)
	return resp, nil
}

// newServer starts Steward's real handler over db and returns a client of
// it authenticated by the bootstrap Admin API key.
func newServer(t *testing.T, db *store.DB) (*client.Admin, bootstrap.Result, string) {
	t.Helper()
	return newServerWith(t, db, true)
}

// newServerWith is newServer, whose answers are validated against the
// OpenAPI documents only when check is true.
func newServerWith(t *testing.T, db *store.DB, check bool) (*client.Admin, bootstrap.Result, string) {
	t.Helper()
	boot, err := bootstrap.Run(context.Background(), db, bootstrap.Options{Actor: "test"})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	srv, err := server.New(server.Deps{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBodyBytes: 4 << 20})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	var doer client.HttpRequestDoer = hs.Client()
	if check {
		doer = checked{t, hs.Client(), apitest.Load(t)}
	}
	c, err := client.New(hs.URL, boot.AdminKeySecret, client.WithDoer(doer))
	if err != nil {
		t.Fatal(err)
	}
	return c, boot, hs.URL
}

// TestMembersPagesThroughTenThousand adds 10,000 users in ten requests and
// reads them back through the iterator, 100 pages of 100.
func TestMembersPagesThroughTenThousand(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Validating a hundred pages of a hundred members against the
		// documents would take longer than the walk: TestIterators
		// validates the same answers on a short list.
		c, boot, _ := newServerWith(t, db, false)
		const n = 10_000
		start := time.Now()
		for batch := 0; batch < n/1000; batch++ {
			users := make([]client.OrganizationMemberCreate, 1000)
			for i := range users {
				users[i] = client.OrganizationMemberCreate{Email: fmt.Sprintf("user%05d@example.com", batch*1000+i), FirstName: "U", LastName: "Ser"}
			}
			if _, err := c.UsersApiAdminUsersCreateUsersWithResponse(ctx, users); err != nil {
				t.Fatalf("create users: %v", err)
			}
		}
		seeded := time.Now()
		seen := map[string]bool{}
		for m, err := range c.Members(ctx, "") {
			if err != nil {
				t.Fatalf("Members: %v", err)
			}
			if m.Email == nil {
				t.Fatalf("member %s has no email", m.Uuid)
			}
			if seen[*m.Email] {
				t.Fatalf("%s yielded twice", *m.Email)
			}
			seen[*m.Email] = true
		}
		t.Logf("seeded %v, walked %v", seeded.Sub(start), time.Since(seeded))
		if got, want := len(seen), n+1; got != want {
			t.Fatalf("Members yielded %d members, want %d (10,000 and the bootstrap admin)", got, want)
		}
		if !seen[boot.Admin.Email] || !seen["user09999@example.com"] {
			t.Errorf("the first or the last member is missing")
		}
	})
}

// TestIterators walks the other paged lists, and stops early without
// another request.
func TestIterators(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, boot, _ := newServer(t, db)
		for i := range 3 {
			if _, err := c.UsersApiAdminWorkspacesCreateWorkspaceWithResponse(ctx, client.AdminWorkspaceIn{
				Name: fmt.Sprintf("ws-%d", i), AdminUserId: openapi_types.UUID(uuidOf(t, boot.Admin.ID))}); err != nil {
				t.Fatalf("create workspace: %v", err)
			}
		}
		count := func(seq func(func(any, error) bool)) int {
			n := 0
			for _, err := range seq {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			return n
		}
		if got, want := count(anySeq(c.Workspaces(ctx, false))), 4; got != want {
			t.Errorf("Workspaces: %d, want %d (three and the default one)", got, want)
		}
		if got := count(anySeq(c.UserGroups(ctx))); got != 0 {
			t.Errorf("UserGroups: %d, want 0", got)
		}
		if got := count(anySeq(c.APIKeys(ctx, ""))); got != 0 {
			t.Errorf("APIKeys: %d, want 0", got)
		}
		entries := count(anySeq(c.AuditLogs(ctx, client.UsersApiAdminAuditLogsGetAuditLogsParams{})))
		if entries < 3 {
			t.Errorf("AuditLogs: %d entries, want at least the 3 Workspace creations", entries)
		}
		for range c.Workspaces(ctx, false) {
			break
		}
	})
}

func anySeq[T any](seq func(func(T, error) bool)) func(func(any, error) bool) {
	return func(yield func(any, error) bool) {
		seq(func(v T, err error) bool { return yield(v, err) })
	}
}

func uuidOf(t *testing.T, s string) [16]byte {
	t.Helper()
	var u openapi_types.UUID
	if err := u.UnmarshalText([]byte(s)); err != nil {
		t.Fatalf("uuid %q: %v", s, err)
	}
	return u
}

// TestErrors checks that both of Mistral's error shapes become *APIError,
// matched by errors.Is, against the real handler.
func TestErrors(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c, _, url := newServer(t, db)
		_, err := c.UsersApiAdminUserGroupsGetUserGroupWithResponse(ctx, openapi_types.UUID{1})
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("unknown group: %v, want an *APIError matching ErrNotFound", err)
		}
		if apiErr.Type != "not_found_error" || apiErr.Message == "" || apiErr.RequestID == "" {
			t.Errorf("unknown group: %+v, want Mistral's error object and a request id", apiErr)
		}
		_, err = c.UsersApiAdminUsersGetUsersWithResponse(ctx, &client.UsersApiAdminUsersGetUsersParams{PageSize: new(1000)})
		if !errors.As(err, &apiErr) || !errors.Is(err, client.ErrInvalid) {
			t.Fatalf("page_size 1000: %v, want an *APIError matching ErrInvalid", err)
		}
		if len(apiErr.Detail) != 1 || fmt.Sprint(apiErr.Detail[0].Loc) != "[query page_size]" {
			t.Errorf("page_size 1000: detail %+v, want one entry at query.page_size", apiErr.Detail)
		}
		bad, err := client.New(url, "sk-wrong")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bad.UsersApiAdminUsersGetUsersWithResponse(ctx, nil); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("wrong key: %v, want ErrUnauthorized", err)
		}
	})
}

// TestGeneratedCodeIsFresh fails when admin.gen.go is not what the
// generator makes of api/openapi.yaml: run go generate ./client.
func TestGeneratedCodeIsFresh(t *testing.T) {
	out := filepath.Join(t.TempDir(), "admin.gen.go")
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", "oapi-codegen.yaml", "-o", out, "../api/openapi.yaml")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("admin.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("admin.gen.go is stale: run go generate ./client and commit the result")
	}
}
