package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/sso/saml"
	"github.com/stewardhq/steward/internal/sso/saml/samltest"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// samlIdPKeys is the test identity provider's key pair, made once.
var samlIdPKeys = sync.OnceValues(func() (saml.KeyPair, error) { return saml.GenerateKeyPair("idp", time.Now()) })

// samlIdP starts an identity provider named by host (see
// samltest.StartOn; "" is 127.0.0.1).
func samlIdP(t *testing.T, host string) *samltest.IdP {
	t.Helper()
	keys, err := samlIdPKeys()
	if err != nil {
		t.Fatal(err)
	}
	return samltest.StartOn(t, host, keys.CertificatePEM, keys.PrivateKeyPEM)
}

// samlSite is the server with an Organization whose SAML connection
// points at a real identity provider (samltest) that knows the bootstrap
// admin, carol (a member), dave (whose domain may join just in time) and
// eve (nobody here).
type samlSite struct {
	*env
	idp *samltest.IdP
	// start is the connection's start link, path only.
	start string
}

// newSAMLSite makes the site, its identity provider named by idpHost
// (see samltest.StartOn; "" is 127.0.0.1).
func newSAMLSite(t *testing.T, db *store.DB, idpHost string) *samlSite {
	t.Helper()
	e := newEnvWith(t, db, web.Config{}, func(base string) *sso.Service {
		return sso.New(sso.Config{DB: db, PublicURL: base, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	})
	site := &samlSite{env: e, idp: samlIdP(t, idpHost)}
	for _, u := range []samltest.User{
		{Name: "admin", Email: "admin@example.com"},
		{Name: "carol", Email: "carol@example.com"},
		{Name: "dave", Email: "dave@jit.example", GivenName: "Dave", Surname: "Jones"},
		{Name: "eve", Email: "eve@elsewhere.example"},
	} {
		u.Password = adminPassword
		site.idp.AddUser(t, u)
	}
	ctx := context.Background()
	err := db.Transact(ctx, func(tx *store.Tx) error {
		role := steward.RoleOrganizationMember
		_, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), e.boot.Organization,
			[]directory.NewMember{{Email: "carol@example.com", Roles: directory.RoleInput{RoleName: &role}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// The connection, through the Admin API, as an administrator makes it.
	body, _ := json.Marshal(map[string]any{"protocol": "saml", "saml": map[string]string{"idp_metadata_xml": string(site.idp.Metadata(t))},
		"jit": map[string]any{"domains": []string{"jit.example"}, "default_role": "member"}})
	req, _ := http.NewRequest(http.MethodPut, e.http.URL+"/v1/admin/sso", strings.NewReader(string(body)))
	req.Header.Set("x-api-key", e.boot.AdminKeySecret)
	req.Header.Set("Content-Type", "application/json")
	r := e.browser().do(req)
	if r.status != http.StatusOK {
		t.Fatalf("PUT /v1/admin/sso: %d %s", r.status, r.body)
	}
	var conn struct {
		StartURL string `json:"start_url"`
		SAML     struct {
			EntityID    string `json:"entity_id"`
			ACSURL      string `json:"acs_url"`
			MetadataURL string `json:"metadata_url"`
		} `json:"saml"`
	}
	if err := json.Unmarshal([]byte(r.body), &conn); err != nil {
		t.Fatal(err)
	}
	site.start = strings.TrimPrefix(conn.StartURL, e.http.URL)

	// The identity provider imports Steward's metadata from its URL.
	md := e.browser().get(strings.TrimPrefix(conn.SAML.MetadataURL, e.http.URL))
	if md.status != http.StatusOK || md.header.Get("Content-Type") != "application/samlmetadata+xml" ||
		!strings.Contains(md.body, `entityID="`+conn.SAML.EntityID+`"`) || !strings.Contains(md.body, `Location="`+conn.SAML.ACSURL+`"`) {
		t.Fatalf("GET %s: %d %s %s", conn.SAML.MetadataURL, md.status, md.header.Get("Content-Type"), md.body)
	}
	site.idp.Register(t, "steward", []byte(md.body), true)
	return site
}

// signInAtIdP starts a sign-in in b and signs in at the identity provider
// as user; it returns the ACS path and what the identity provider has the
// browser post there.
func (s *samlSite) signInAtIdP(t *testing.T, b *browser, user string) (string, url.Values) {
	t.Helper()
	r := b.get(s.start)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, s.idp.URL+"/sso?") {
		t.Fatalf("GET %s: %d to %q, want the identity provider", s.start, r.status, r.location)
	}
	acs, posted := samltest.SignIn(t, samltest.Browser(t), r.location, nil, user, adminPassword)
	return strings.TrimPrefix(acs, s.http.URL), posted
}

// post delivers the identity provider's post as a browser does: from the
// provider's site, without Steward's SameSite=Lax cookies (from a fresh
// jar), which answers with a page that posts it again from Steward, which
// b then sends with its cookies.
func (s *samlSite) post(t *testing.T, b *browser, acs string, posted url.Values) reply {
	t.Helper()
	hop := s.browser().post(acs, posted)
	if hop.status != http.StatusOK || !strings.Contains(hop.body, "data-autosubmit") {
		t.Fatalf("the provider's post: %d %s, want the page that posts it again", hop.status, hop.body)
	}
	action, again := samltest.Form(t, []byte(hop.body))
	if action != acs || again.Get("continued") != "1" || again.Get("SAMLResponse") != posted.Get("SAMLResponse") || again.Get("RelayState") != posted.Get("RelayState") {
		t.Fatalf("the page posts %v to %s, want the same fields to %s", again, action, acs)
	}
	return b.post(action, again)
}

// admitted posts the identity provider's answer as post does, and checks
// that it signs b in, back to /web/, as the user with email.
func (s *samlSite) admitted(t *testing.T, b *browser, acs string, posted url.Values, email string) {
	t.Helper()
	if r := s.post(t, b, acs, posted); r.status != http.StatusSeeOther || r.location != "/web/" {
		t.Fatalf("ACS: %d to %q, want 303 to /web/\n%s", r.status, r.location, r.body)
	}
	s.signedInAs(t, b, email)
}

// signedInAs checks that b's session is the user's.
func (s *samlSite) signedInAs(t *testing.T, b *browser, email string) {
	t.Helper()
	if r := b.get("/web/organizations"); r.status != http.StatusOK || !strings.Contains(r.body, email) {
		t.Fatalf("GET /web/organizations: %d, want %s signed in\n%s", r.status, email, r.body)
	}
}

// refused checks that r is the sign-in page saying why.
func refused(t *testing.T, r reply, want string) {
	t.Helper()
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, want) || strings.Contains(r.header.Get("Set-Cookie"), "steward_session=") {
		t.Fatalf("%d %s, want 401 saying %q and no session", r.status, r.body, want)
	}
}

func TestSAMLSignInThroughThePages(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := newSAMLSite(t, db, "")
		ctx := context.Background()

		t.Run("sign-in", func(t *testing.T) {
			b := s.browser()
			acs, posted := s.signInAtIdP(t, b, "admin")
			s.admitted(t, b, acs, posted, "admin@example.com")

			// The same response again, in the same browser: the sign-in it
			// answers is used up.
			refused(t, b.post(acs, url.Values{"SAMLResponse": {posted.Get("SAMLResponse")}, "RelayState": {posted.Get("RelayState")}, "continued": {"1"}}),
				"not started in this browser")
		})
		t.Run("same-site post", func(t *testing.T) {
			// An identity provider on the same site as Steward gets the
			// cookie sent with its post: no second post.
			b := s.browser()
			acs, posted := s.signInAtIdP(t, b, "admin")
			if r := b.post(acs, posted); r.status != http.StatusSeeOther {
				t.Fatalf("ACS: %d %s, want 303", r.status, r.body)
			}
			s.signedInAs(t, b, "admin@example.com")
		})
		t.Run("forged post", func(t *testing.T) {
			// Someone's own response, pushed to another browser: that
			// browser did not start the sign-in.
			acs, posted := s.signInAtIdP(t, s.browser(), "eve")
			victim := s.browser()
			refused(t, s.post(t, victim, acs, posted), "not started in this browser")
		})
		t.Run("replayed in the browser that started it", func(t *testing.T) {
			// An old response posted in a new sign-in of the same browser
			// answers another request.
			b := s.browser()
			acs, old := s.signInAtIdP(t, b, "admin")
			s.admitted(t, b, acs, old, "admin@example.com")
			_, fresh := s.signInAtIdP(t, b, "admin")
			old.Set("RelayState", fresh.Get("RelayState"))
			refused(t, s.post(t, b, acs, old), "does not answer a sign-in started here")
		})
		t.Run("unknown user", func(t *testing.T) {
			b := s.browser()
			acs, posted := s.signInAtIdP(t, b, "eve")
			refused(t, s.post(t, b, acs, posted), "you are not a member here")
		})
		t.Run("deactivated user", func(t *testing.T) {
			err := db.Transact(ctx, func(tx *store.Tx) error {
				var carol string
				if err := tx.QueryRow(ctx, `SELECT id FROM users WHERE email = ?`, "carol@example.com").Scan(&carol); err != nil {
					return err
				}
				return directory.SetMemberActive(ctx, tx, steward.SystemActor("test"), s.boot.Organization, carol, false)
			})
			if err != nil {
				t.Fatal(err)
			}
			b := s.browser()
			acs, posted := s.signInAtIdP(t, b, "carol")
			refused(t, s.post(t, b, acs, posted), "deactivated")
		})
		t.Run("just in time", func(t *testing.T) {
			b := s.browser()
			acs, posted := s.signInAtIdP(t, b, "dave")
			s.admitted(t, b, acs, posted, "dave@jit.example")
			var n int
			err := db.View(ctx, func(tx *store.Tx) error {
				return tx.QueryRow(ctx, `SELECT COUNT(*) FROM organization_members m JOIN users u ON u.id = m.user_id
					WHERE m.organization_id = ? AND u.email = ? AND u.first_name = ?`, s.boot.Organization.ID, "dave@jit.example", "Dave").Scan(&n)
			})
			if err != nil || n != 1 {
				t.Fatalf("dave is a member %d times (%v), want once", n, err)
			}
		})
	})
}

func TestSAMLMetadataOfUnknownConnection(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		if r := e.browser().get("/web/sso/saml/nothing/metadata"); r.status != http.StatusNotFound {
			t.Fatalf("metadata of no connection: %d %s, want 404", r.status, r.body)
		}
	})
}
