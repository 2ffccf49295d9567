package auth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/conns"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// reportToken is the check API's report token of every test.
const reportToken = "report-token-of-the-proxy-0123456789"

// fixture is an Authenticator over a bootstrapped database, with a
// credential of every kind.
type fixture struct {
	a    *auth.Authenticator
	boot bootstrap.Result
	// owner owns workspaceKey, a key for Vibe in the default Workspace.
	owner                       string
	workspaceKey                steward.APIKey
	workspaceSecret, scimSecret string
	scimToken                   keys.SCIMToken
	session                     auth.Session
	sessionToken                string
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	actor := steward.SystemActor("test")
	boot, err := bootstrap.Run(ctx, db, bootstrap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checker, err := keys.NewChecker(ctx, db, directory.NewAccess(db))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{DB: db, WorkspaceKeys: checker, ReportToken: reportToken})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{a: a, boot: boot}
	err = db.Transact(ctx, func(tx *store.Tx) error {
		res, err := directory.CreateMembers(ctx, tx, actor, boot.Organization, []directory.NewMember{{Email: "dev@example.com"}})
		if err != nil {
			return err
		}
		f.owner = res.EmailToUserID["dev@example.com"]
		f.workspaceKey, f.workspaceSecret, err = keys.CreateKey(ctx, tx, actor, boot.Organization,
			keys.NewKey{WorkspaceID: boot.DefaultWorkspace.ID, UserID: f.owner, Product: "Vibe"})
		if err != nil {
			return err
		}
		if f.scimToken, f.scimSecret, err = keys.CreateSCIMToken(ctx, tx, actor, boot.Organization, "Okta", nil); err != nil {
			return err
		}
		f.session, f.sessionToken, err = a.StartSession(ctx, tx, auth.Identity{UserID: boot.Admin.ID, Method: auth.MethodPassword})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// request is a request with the given headers (name, value, ...).
func request(headers ...string) *http.Request {
	r := httptest.NewRequest("POST", "/", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// TestEachSurfaceReadsItsOwnRule: every method reads the credential where
// its surface always has, reads only the kinds it reads, and turns each
// into the principal of its kind; no credential is the anonymous principal.
func TestEachSurfaceReadsItsOwnRule(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin, backoffice, ws, scim := f.boot.AdminKeySecret, f.boot.BackofficeSecret, f.workspaceSecret, f.scimSecret
		cookie := auth.SessionCookie + "=" + f.sessionToken
		adminP := steward.Principal{Kind: steward.CredentialAdminAPIKey, CredentialID: f.boot.AdminKey.ID, CredentialName: f.boot.AdminKey.Name,
			OrganizationID: f.boot.Organization.ID, EnterpriseAccountID: f.boot.EnterpriseAccount.ID}
		backofficeP := steward.Principal{Kind: steward.CredentialBackofficeKey, CredentialID: f.boot.BackofficeKey.ID, CredentialName: f.boot.BackofficeKey.Name,
			EnterpriseAccountID: f.boot.EnterpriseAccount.ID}
		scimP := steward.Principal{Kind: steward.CredentialSCIMToken, CredentialID: f.scimToken.ID, CredentialName: "Okta",
			OrganizationID: f.boot.Organization.ID, EnterpriseAccountID: f.boot.EnterpriseAccount.ID}
		// The model API's Workspace key: its Workspace and product, from
		// memory.
		wsP := steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, CredentialID: f.workspaceKey.ID, OrganizationID: f.boot.Organization.ID,
			WorkspaceID: f.boot.DefaultWorkspace.ID, UserID: f.owner, Product: "Vibe"}
		// The Admin API's view of a Workspace key, read to refuse it by
		// its kind.
		wsStoredP := steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, CredentialID: f.workspaceKey.ID,
			OrganizationID: f.boot.Organization.ID, EnterpriseAccountID: f.boot.EnterpriseAccount.ID}
		reporterP := steward.Principal{Kind: steward.CredentialReportToken}
		const (
			notBearer  = "the Authorization header must be \"Bearer <key>\""
			invalidKey = "invalid API key"
			wrongKind  = "only a Workspace API key can call the models: Admin API and Backoffice keys cannot"
		)
		type method func(*http.Request) (steward.Principal, error)
		for _, tc := range []struct {
			name    string
			method  method
			headers []string
			want    steward.Principal
			err     string
		}{
			{"Key: an Admin API key in x-api-key", f.a.Key, []string{"x-api-key", admin}, adminP, ""},
			{"Key: an Admin API key as Bearer", f.a.Key, []string{"Authorization", "bearer " + admin}, adminP, ""},
			{"Key: x-api-key before Authorization", f.a.Key, []string{"x-api-key", backoffice, "Authorization", "Basic x"}, backofficeP, ""},
			{"Key: another scheme", f.a.Key, []string{"Authorization", "Basic " + admin}, steward.Principal{}, notBearer},
			{"Key: a scheme alone", f.a.Key, []string{"Authorization", "Bearer"}, steward.Principal{}, notBearer},
			{"Key: Bearer and nothing", f.a.Key, []string{"Authorization", "Bearer  "}, steward.Principal{}, ""},
			{"Key: a SCIM token", f.a.Key, []string{"x-api-key", scim}, scimP, ""},
			{"Key: a Workspace key, to be refused by its kind", f.a.Key, []string{"x-api-key", ws}, wsStoredP, ""},
			{"Key: an unknown key", f.a.Key, []string{"x-api-key", keys.New(keys.PrefixAdmin)}, steward.Principal{}, invalidKey},
			{"Key: a session's cookie is no key", f.a.Key, []string{"Cookie", cookie}, steward.Principal{}, ""},
			{"Key: nothing", f.a.Key, nil, steward.Principal{}, ""},
			{"BearerKey: a SCIM token", f.a.BearerKey, []string{"Authorization", "Bearer " + scim}, scimP, ""},
			{"BearerKey: an Admin API key, to be refused by its kind", f.a.BearerKey, []string{"Authorization", "Bearer " + admin}, adminP, ""},
			{"BearerKey: x-api-key is not read", f.a.BearerKey, []string{"x-api-key", scim}, steward.Principal{}, ""},
			{"BearerKey: another scheme is no credential", f.a.BearerKey, []string{"Authorization", "Basic " + scim}, steward.Principal{}, ""},
			{"WorkspaceKey: a Workspace key", f.a.WorkspaceKey, []string{"Authorization", "Bearer " + ws}, wsP, ""},
			{"WorkspaceKey: x-api-key is not read", f.a.WorkspaceKey, []string{"x-api-key", ws}, steward.Principal{}, ""},
			{"WorkspaceKey: another scheme is no credential", f.a.WorkspaceKey, []string{"Authorization", "Basic " + ws}, steward.Principal{}, ""},
			{"WorkspaceKey: an Admin API key", f.a.WorkspaceKey, []string{"Authorization", "Bearer " + admin}, steward.Principal{}, wrongKind},
			{"WorkspaceKey: a SCIM token", f.a.WorkspaceKey, []string{"Authorization", "Bearer " + scim}, steward.Principal{}, wrongKind},
			{"WorkspaceKey: the report token is no key", f.a.WorkspaceKey, []string{"Authorization", "Bearer " + reportToken}, steward.Principal{}, invalidKey},
			{"Reporter: the report token", f.a.Reporter, []string{"Authorization", "Bearer " + reportToken}, reporterP, ""},
			{"Reporter: another token", f.a.Reporter, []string{"Authorization", "Bearer " + reportToken + "x"}, steward.Principal{}, invalidKey},
			{"Reporter: a Workspace key", f.a.Reporter, []string{"Authorization", "Bearer " + ws}, wsP, ""},
			{"Reporter: nothing", f.a.Reporter, nil, steward.Principal{}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := tc.method(request(tc.headers...))
				if tc.err != "" {
					var e *steward.Error
					if !errors.As(err, &e) || e.Message != tc.err {
						t.Fatalf("err = %v, want %q", err, tc.err)
					}
				} else if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got != tc.want {
					t.Errorf("principal = %+v, want %+v", got, tc.want)
				}
			})
		}
	})
}

// TestSessionsAreReadFromTheirCookie: a live session's cookie is the
// signed-in person; no cookie is no credential; a cookie that names no
// session is refused.
func TestSessionsAreReadFromTheirCookie(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		s, err := f.a.Session(request("Cookie", auth.SessionCookie+"="+f.sessionToken))
		want := steward.Principal{Kind: steward.CredentialWebSession, CredentialID: f.session.ID, CredentialName: f.boot.Admin.Email, UserID: f.boot.Admin.ID}
		if err != nil || s.Principal != want || s.Token != f.sessionToken || s.Session.ID != f.session.ID {
			t.Fatalf("Session = %+v, %v; want the admin's, %+v", s, err, want)
		}
		for _, tc := range []struct {
			name    string
			headers []string
			err     bool
		}{
			{"no cookie", nil, false},
			{"a key is no session", []string{"x-api-key", f.boot.AdminKeySecret}, false},
			{"an empty cookie", []string{"Cookie", auth.SessionCookie + "="}, true},
			{"an unknown session", []string{"Cookie", auth.SessionCookie + "=not-a-session"}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, err := f.a.Session(request(tc.headers...))
				switch {
				case tc.err && !steward.IsKind(err, steward.KindUnauthenticated):
					t.Fatalf("err = %v, want unauthenticated", err)
				case !tc.err && err != nil:
					t.Fatalf("err = %v", err)
				case s != auth.SignedIn{}:
					t.Fatalf("Session = %+v, want none", s)
				}
			})
		}
	})
}

func TestNewRefusesAShortReportToken(t *testing.T) {
	_, err := auth.New(auth.Config{ReportToken: "0123456789"})
	if err == nil || !strings.Contains(err.Error(), "report token must be at least 32 characters") {
		t.Fatalf("err %v, want one saying the report token is too short", err)
	}
}

// connect connects a client to l and returns the server's end.
func connect(t *testing.T, l *conns.Listener) net.Conn {
	t.Helper()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server
}

// TestAuthenticationIsAdmitted: whatever surface authenticates a request,
// its connection stops counting as unauthenticated (a newer one does not
// close it) and its access log names the credential; a request refused
// or without a credential gets neither.
func TestAuthenticationIsAdmitted(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, tc := range []struct {
			name         string
			authenticate func(*http.Request) error
			headers      []string
			admitted     bool
			credentialID string
		}{
			{"an Admin API key", keyOnly(f.a.Key), []string{"x-api-key", f.boot.AdminKeySecret}, true, f.boot.AdminKey.ID},
			{"a SCIM token", keyOnly(f.a.BearerKey), []string{"Authorization", "Bearer " + f.scimSecret}, true, f.scimToken.ID},
			{"a Workspace key", keyOnly(f.a.WorkspaceKey), []string{"Authorization", "Bearer " + f.workspaceSecret}, true, f.workspaceKey.ID},
			{"the report token", keyOnly(f.a.Reporter), []string{"Authorization", "Bearer " + reportToken}, true, ""},
			{"a session", func(r *http.Request) error { _, err := f.a.Session(r); return err },
				[]string{"Cookie", auth.SessionCookie + "=" + f.sessionToken}, true, f.session.ID},
			{"an unknown key", keyOnly(f.a.Key), []string{"x-api-key", keys.New(keys.PrefixAdmin)}, false, ""},
			{"a key of the wrong kind", keyOnly(f.a.WorkspaceKey), []string{"Authorization", "Bearer " + f.boot.AdminKeySecret}, false, ""},
			{"no credential", keyOnly(f.a.Key), nil, false, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tcp, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				l := conns.NewListener(tcp, 1)
				defer l.Close()
				server := connect(t, l)
				var seen auth.Seen
				r := request(tc.headers...)
				r = r.WithContext(auth.Watch(conns.Context(r.Context(), server), &seen))
				err = tc.authenticate(r)
				if tc.admitted && err != nil {
					t.Fatalf("err = %v", err)
				}
				// Accepting a newer connection closes the older one
				// unless it is authenticated; a write to a closed one
				// fails at once.
				connect(t, l)
				if _, err := server.Write([]byte("x")); (err == nil) != tc.admitted {
					t.Errorf("a write on the connection after a newer one: %v; want it open: %v", err, tc.admitted)
				}
				if got := seen.CredentialID(); got != tc.credentialID {
					t.Errorf("the access log names credential %q, want %q", got, tc.credentialID)
				}
			})
		}
	})
}

// keyOnly is an authentication that keeps only its error.
func keyOnly(m func(*http.Request) (steward.Principal, error)) func(*http.Request) error {
	return func(r *http.Request) error {
		_, err := m(r)
		return err
	}
}

// TestWorkspaceKeysDoNotAllocate: the model API's key check, from the
// request to its principal, admission included, allocates nothing, with or
// without allow lists of models.
func TestWorkspaceKeysDoNotAllocate(t *testing.T) {
	db, _ := storetest.OpenSQLite(t)
	f := newFixture(t, db)
	r := request("Authorization", "Bearer "+f.workspaceSecret)
	var seen auth.Seen
	r = r.WithContext(auth.Watch(r.Context(), &seen))
	check := func(want *steward.ModelAllowList) {
		t.Helper()
		allocs := testing.AllocsPerRun(100, func() {
			p, err := f.a.WorkspaceKey(r)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Models.Equal(want) {
				t.Fatalf("the principal allows %v, want %v", p.Models.Names(), want.Names())
			}
		})
		if allocs != 0 {
			t.Fatalf("WorkspaceKey allocates %v times per call, want 0", allocs)
		}
	}
	check(nil)
	ctx, svc, served := context.Background(), keys.NewService(db), []string{"a", "b"}
	actor, org := steward.SystemActor("test"), f.boot.Organization
	if _, err := svc.SetWorkspaceModels(ctx, actor, org.ID, f.boot.DefaultWorkspace.ID, steward.NewModelAllowList(served), served); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetKeyModels(ctx, actor, org.ID, f.workspaceKey.ID, steward.NewModelAllowList([]string{"b"}), served); err != nil {
		t.Fatal(err)
	}
	check(steward.NewModelAllowList([]string{"b"}))
}

// BenchmarkWorkspaceKey measures the authentication of every model
// request: the Authorization header read, the key checked from memory
// (keys.Checker), the principal made and the request admitted.
//
//	go test ./internal/auth -run '^$' -bench WorkspaceKey -cpu 1,2
func BenchmarkWorkspaceKey(b *testing.B) {
	db, _ := storetest.OpenSQLite(b)
	f := newFixture(b, db)
	r := request("Authorization", "Bearer "+f.workspaceSecret)
	if _, err := f.a.WorkspaceKey(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.a.WorkspaceKey(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
