package sso

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/sso/saml"
	"github.com/stewardhq/steward/internal/sso/saml/samltest"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

const (
	samlPublicURL = "https://steward.example.com"
	samlPassword  = "correct horse battery staple"
)

// idpKeys is the identity provider's key pair, generated once: RSA key
// generation is much of these tests' time.
var idpKeys = sync.OnceValues(func() (saml.KeyPair, error) { return saml.GenerateKeyPair("idp", time.Now()) })

// samlEnv is an Organization with a SAML connection to a real identity
// provider (samltest), its admin alice and its member carol, who are also
// users of the identity provider, as are dave, whose domain allows
// just-in-time creation, and eve, who is nobody here.
type samlEnv struct {
	db     *store.DB
	s      *Service
	idp    *samltest.IdP
	org    steward.Organization
	conn   Connection
	alice  steward.User
	carol  string
	system steward.Actor
}

func newSAMLEnv(t *testing.T, db *store.DB) *samlEnv {
	t.Helper()
	ctx := context.Background()
	keys, err := idpKeys()
	if err != nil {
		t.Fatal(err)
	}
	env := &samlEnv{db: db, system: steward.Actor{Type: steward.ActorOther, Metadata: map[string]string{"name": "test"}}}
	env.idp = samltest.Start(t, keys.CertificatePEM, keys.PrivateKeyPEM)
	for _, u := range []samltest.User{
		{Name: "alice", Email: "alice@acme.example", GivenName: "Alice", Surname: "Martin"},
		{Name: "carol", Email: "carol@acme.example"},
		{Name: "dave", Email: "dave@jit.example", GivenName: "Dave", Surname: "Jones"},
		{Name: "eve", Email: "eve@elsewhere.example"},
	} {
		u.Password = samlPassword
		env.idp.AddUser(t, u)
	}
	env.s = New(Config{DB: db, PublicURL: samlPublicURL, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	err = db.Transact(ctx, func(tx *store.Tx) error {
		ea, err := directory.CreateEnterpriseAccount(ctx, tx, env.system, "Acme Group")
		if err != nil {
			return err
		}
		org, ws, err := directory.CreateOrganization(ctx, tx, env.system, ea.ID, "Acme")
		if err != nil {
			return err
		}
		env.org = org
		if env.alice, err = directory.AddOrganizationAdmin(ctx, tx, env.system, org, ws, "alice@acme.example"); err != nil {
			return err
		}
		role := steward.RoleOrganizationMember
		res, err := directory.CreateMembers(ctx, tx, env.system, org, []directory.NewMember{{Email: "carol@acme.example", Roles: directory.RoleInput{RoleName: &role}}})
		if err != nil {
			return err
		}
		env.carol = res.EmailToUserID["carol@acme.example"]
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	env.conn, err = env.s.Put(ctx, env.system, OrgScope(env.org.ID), Input{Protocol: ProtocolSAML,
		IDPMetadataXML: string(env.idp.Metadata(t)), JITDomains: []string{"jit.example"}, JITRole: "member"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	md, err := env.s.SAMLMetadata(ctx, env.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	env.idp.Register(t, "steward", md, true)
	return env
}

// signIn starts a sign-in through the connection, signs in at the identity
// provider as user, and returns what the identity provider posts to the
// ACS.
func (env *samlEnv) signIn(t *testing.T, user string) url.Values {
	t.Helper()
	redirect, _, err := env.s.Begin(context.Background(), env.conn.ID, "/web/home")
	if err != nil {
		t.Fatal(err)
	}
	acs, posted := samltest.SignIn(t, samltest.Browser(t), redirect, nil, user, samlPassword)
	if want := env.s.ACSURL(env.conn.ID); acs != want {
		t.Fatalf("the identity provider posts to %s, want %s", acs, want)
	}
	return posted
}

// post hands the posted form to Finish, as the ACS page does.
func (env *samlEnv) post(t *testing.T, posted url.Values) (SignIn, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, env.s.ACSURL(env.conn.ID), strings.NewReader(posted.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetPathValue("connection", env.conn.ID)
	if err := r.ParseForm(); err != nil {
		t.Fatal(err)
	}
	return env.s.Finish(context.Background(), r, posted.Get("RelayState"))
}

// lastAudit returns the type and metadata of the Organization's last audit
// entry.
func (env *samlEnv) lastAudit(t *testing.T) (event, meta string) {
	t.Helper()
	err := env.db.View(context.Background(), func(tx *store.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT event_type, event_metadata FROM audit_log WHERE organization_id = ? ORDER BY log_id DESC LIMIT 1`, env.org.ID).
			Scan(&event, &meta)
	})
	if err != nil {
		t.Fatal(err)
	}
	return event, meta
}

// wantRefused checks that err is a refusal saying want, audited as a
// failed sign-in with it.
func (env *samlEnv) wantRefused(t *testing.T, err error, want string) {
	t.Helper()
	if !steward.IsKind(err, steward.KindUnauthenticated) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Finish error = %v, want a refusal saying %q", err, want)
	}
	event, meta := env.lastAudit(t)
	if event != audit.EventUserLoginSSOFailed || !strings.Contains(meta, want) {
		t.Errorf("last audit entry %s %s, want %s saying %q", event, meta, audit.EventUserLoginSSOFailed, want)
	}
}

func TestSAMLSignIn(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		env := newSAMLEnv(t, db)
		in, err := env.post(t, env.signIn(t, "alice"))
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if in.UserID != env.alice.ID || in.Email != "alice@acme.example" || in.Scope != env.conn.Scope || in.ConnectionID != env.conn.ID || in.Next != "/web/home" {
			t.Errorf("SignIn = %+v, want alice in %s, back to /web/home", in, env.conn.Scope)
		}
		if in.Subject != "alice@acme.example" || in.SessionID == "" {
			t.Errorf("subject %q, session %q: want the NameID and the SessionIndex", in.Subject, in.SessionID)
		}
		if event, meta := env.lastAudit(t); event != audit.EventUserLoginSSO || !strings.Contains(meta, `"protocol":"saml"`) {
			t.Errorf("last audit entry %s %s, want %s by saml", event, meta, audit.EventUserLoginSSO)
		}
	})
}

func TestSAMLRefusals(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		env := newSAMLEnv(t, db)
		ctx := context.Background()

		t.Run("unknown user", func(t *testing.T) {
			_, err := env.post(t, env.signIn(t, "eve"))
			env.wantRefused(t, err, "not a member here")
		})
		t.Run("deactivated user", func(t *testing.T) {
			err := db.Transact(ctx, func(tx *store.Tx) error {
				return directory.SetMemberActive(ctx, tx, env.system, env.org, env.carol, false)
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = env.post(t, env.signIn(t, "carol"))
			env.wantRefused(t, err, "deactivated")
		})
		t.Run("same response twice", func(t *testing.T) {
			posted := env.signIn(t, "alice")
			if _, err := env.post(t, posted); err != nil {
				t.Fatalf("first post: %v", err)
			}
			_, err := env.post(t, posted)
			if !errors.Is(err, errNoPending) {
				t.Fatalf("second post: %v, want %v", err, errNoPending)
			}
		})
		t.Run("replayed assertion", func(t *testing.T) {
			// A second sign-in under way for the same request, as another
			// process that kept it would hold: only the assertion's id
			// stops the second use.
			posted := env.signIn(t, "alice")
			var twin Pending
			err := db.Transact(ctx, func(tx *store.Tx) error {
				p, err := takePending(ctx, tx, posted.Get("RelayState"))
				if err != nil {
					return err
				}
				if err := savePending(ctx, tx, p); err != nil {
					return err
				}
				twin = p
				twin.State = "twin-" + p.State
				return savePending(ctx, tx, twin)
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.post(t, posted); err != nil {
				t.Fatalf("first post: %v", err)
			}
			posted.Set("RelayState", twin.State)
			_, err = env.post(t, posted)
			env.wantRefused(t, err, "already been used")
		})
		t.Run("response for another sign-in", func(t *testing.T) {
			first := env.signIn(t, "alice")
			second := env.signIn(t, "alice")
			first.Set("RelayState", second.Get("RelayState"))
			_, err := env.post(t, first)
			env.wantRefused(t, err, "does not answer a sign-in started here")
		})
		t.Run("posted to another connection", func(t *testing.T) {
			posted := env.signIn(t, "alice")
			r := httptest.NewRequest(http.MethodPost, "/web/sso/saml/other/acs", strings.NewReader(posted.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetPathValue("connection", "other")
			_, err := env.s.Finish(ctx, r, posted.Get("RelayState"))
			env.wantRefused(t, err, "another connection")
		})
	})
}

func TestSAMLJustInTime(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		env := newSAMLEnv(t, db)
		ctx := context.Background()
		in, err := env.post(t, env.signIn(t, "dave"))
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		var first, last string
		var roles int
		err = db.View(ctx, func(tx *store.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT first_name, last_name FROM users WHERE id = ? AND email = ?`, in.UserID, "dave@jit.example").Scan(&first, &last); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT COUNT(*) FROM organization_members WHERE organization_id = ? AND user_id = ?`, env.org.ID, in.UserID).Scan(&roles)
		})
		if err != nil {
			t.Fatal(err)
		}
		if first != "Dave" || last != "Jones" || roles != 1 {
			t.Errorf("dave created as %q %q, member %d times; want Dave Jones, a member", first, last, roles)
		}
		// The second time, dave is matched, not created again.
		again, err := env.post(t, env.signIn(t, "dave"))
		if err != nil || again.UserID != in.UserID {
			t.Fatalf("second sign-in = %+v, %v; want the same user %s", again, err, in.UserID)
		}
	})
}

func TestSAMLMetadata(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		env := newSAMLEnv(t, db)
		ctx := context.Background()
		md, err := env.s.SAMLMetadata(ctx, env.conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`entityID="` + env.s.EntityID(env.conn.ID) + `"`, `Location="` + env.s.ACSURL(env.conn.ID) + `"`} {
			if !strings.Contains(string(md), want) {
				t.Errorf("metadata lacks %s:\n%s", want, md)
			}
		}
		if strings.Contains(string(md), "PRIVATE KEY") {
			t.Error("the metadata carries the private key")
		}
		if _, err := env.s.SAMLMetadata(ctx, "nobody"); !steward.IsKind(err, steward.KindNotFound) {
			t.Errorf("metadata of an unknown connection: %v, want not found", err)
		}
	})
}

// TestSAMLMetadataChecked puts connections whose metadata XML Steward
// cannot sign in with, and checks that each is refused for its field.
func TestSAMLMetadataChecked(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		env := newSAMLEnv(t, db)
		good := string(env.idp.Metadata(t))
		for _, tt := range []struct{ name, xml, want string }{
			{"an empty EntityDescriptor", `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example"/>`, "no identity provider"},
			{"not XML", "metadata", "not SAML metadata"},
			{"no signing certificate", strings.NewReplacer("<KeyDescriptor", "<!--", "</KeyDescriptor>", "-->").Replace(good), "no signing certificate"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := env.s.Put(context.Background(), env.system, OrgScope(env.org.ID), Input{Protocol: ProtocolSAML, IDPMetadataXML: tt.xml})
				var se *steward.Error
				if !errors.As(err, &se) || se.Kind != steward.KindInvalid || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Put = %v, want invalid saying %q", err, tt.want)
				}
				if !strings.Contains(strings.Join(se.Field, "."), "idp_metadata_xml") && !strings.Contains(err.Error(), "idp_metadata_xml") {
					t.Errorf("the error %v does not name idp_metadata_xml", err)
				}
			})
		}
	})
}
