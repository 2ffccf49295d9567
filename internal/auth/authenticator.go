// Package auth authenticates: it turns the credential a request presents
// (an Admin API, Backoffice or Workspace key, a SCIM token, the check API's
// report token, a web session's cookie) into the steward.Principal it
// stands for. Every surface asks its Authenticator, and then
// steward.Authorize (the model gateway: its own checks).
//
// It also signs people in to the Admin Panel and the Backoffice, which is
// how the session credential is issued: passwords (argon2id), sessions and
// password reset links. A session is created from a verified Identity,
// whatever verified it, so that another way of signing in (OpenID Connect)
// only has to produce an Identity.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"

	"github.com/stewardhq/steward/internal/conns"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// MinReportTokenLen is the shortest Config.ReportToken accepted.
const MinReportTokenLen = 32

// Config is what an Authenticator reads credentials against.
type Config struct {
	DB *store.DB
	// LastUsed collects the last use of Admin API keys, Backoffice keys and
	// SCIM tokens; nil records none.
	LastUsed *keys.LastUsed
	// WorkspaceKeys checks Workspace keys from memory, for the model API,
	// the check API and product events; without it, a Workspace key there
	// is an internal error (a wiring mistake), answered 500 and logged.
	WorkspaceKeys *keys.Checker
	// Sessions say how long web sessions last; zero means
	// DefaultSessionSettings.
	Sessions SessionSettings
	// ReportToken, when set, is the secret of the check API's trusted
	// reporter: the proxy in front of the models, which sees what each
	// answer used. At least MinReportTokenLen characters.
	ReportToken string
}

// Authenticator turns the credential a request presents into the
// steward.Principal it stands for. Its methods differ in where they read
// the credential (each surface keeps its rule) and which kinds they read;
// each returns the anonymous principal when the request presents no
// credential, so that the surface answers that in its own words, and an
// *steward.Error when it presents one that is refused. A request it
// authenticates is admitted (see admit).
type Authenticator struct {
	db *store.DB
	// credentials verifies the stored kinds, from memory once seen.
	credentials *keys.Credentials
	workspace   *keys.Checker
	sessions    SessionSettings
	// report is the SHA-256 of Config.ReportToken; zero without one.
	report [sha256.Size]byte
}

// New returns an Authenticator; its error names a report token that is too
// short.
func New(cfg Config) (*Authenticator, error) {
	if cfg.ReportToken != "" && len(cfg.ReportToken) < MinReportTokenLen {
		return nil, fmt.Errorf("auth: the check API's report token must be at least %d characters", MinReportTokenLen)
	}
	if cfg.Sessions.TTL <= 0 {
		cfg.Sessions = DefaultSessionSettings
	}
	a := &Authenticator{db: cfg.DB, workspace: cfg.WorkspaceKeys, sessions: cfg.Sessions}
	if cfg.DB != nil {
		a.credentials = keys.NewCredentials(cfg.DB, cfg.LastUsed)
	}
	if cfg.ReportToken != "" {
		a.report = sha256.Sum256([]byte(cfg.ReportToken))
	}
	return a, nil
}

// Key authenticates by the Admin API's and the Backoffice API's rule: the
// key in x-api-key, else in Authorization, which must then be "Bearer
// <key>". Every stored kind is read (Admin API, Backoffice and Workspace
// keys, SCIM tokens); steward.Authorize decides which kind a route takes.
func (a *Authenticator) Key(r *http.Request) (steward.Principal, error) {
	token, err := presented(r, fromAPIKey)
	if err != nil {
		return steward.Principal{}, err
	}
	return a.stored(r.Context(), token)
}

// BearerKey authenticates by the SCIM service provider's rule: the key in
// Authorization: Bearer. Every stored kind is read, as by Key.
func (a *Authenticator) BearerKey(r *http.Request) (steward.Principal, error) {
	token, _ := presented(r, fromBearer)
	return a.stored(r.Context(), token)
}

// stored authenticates a key or token stored in the database.
func (a *Authenticator) stored(ctx context.Context, token string) (steward.Principal, error) {
	if token == "" {
		return steward.Principal{}, nil
	}
	p, err := a.credentials.Verify(ctx, token)
	if err != nil {
		return steward.Principal{}, err
	}
	admit(ctx, p)
	return p, nil
}

// errNoWorkspaceKeys answers a Workspace key that an Authenticator without
// Config.WorkspaceKeys was asked to check: a wiring mistake, logged.
var errNoWorkspaceKeys = steward.Internal(errors.New("auth: no keys.Checker checks Workspace keys"))

// WorkspaceKey authenticates by the model API's rule, which the check API
// and product events share: a Workspace key in Authorization: Bearer,
// checked from memory (keys.Checker). Any other kind of key is refused
// (403) without a lookup. It does not allocate on success, since every
// model request takes this path.
func (a *Authenticator) WorkspaceKey(r *http.Request) (steward.Principal, error) {
	token, _ := presented(r, fromBearer)
	return a.workspaceKey(r.Context(), token)
}

func (a *Authenticator) workspaceKey(ctx context.Context, token string) (steward.Principal, error) {
	if token == "" {
		return steward.Principal{}, nil
	}
	if a.workspace == nil {
		return steward.Principal{}, errNoWorkspaceKeys
	}
	k, err := a.workspace.Check(ctx, token)
	if err != nil {
		return steward.Principal{}, err
	}
	p := steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, CredentialID: k.ID, OrganizationID: k.OrganizationID,
		WorkspaceID: k.WorkspaceID, UserID: k.UserID, Product: k.Product, Models: k.Models}
	admit(ctx, p)
	return p, nil
}

// Reporter authenticates a check's report: the check API's report token in
// Authorization: Bearer, compared in constant time, which stands for a
// principal of kind steward.CredentialReportToken; any other token is read
// as WorkspaceKey reads it.
func (a *Authenticator) Reporter(r *http.Request) (steward.Principal, error) {
	token, _ := presented(r, fromBearer)
	if a.report != [sha256.Size]byte{} {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.report[:]) == 1 {
			p := steward.Principal{Kind: steward.CredentialReportToken}
			admit(r.Context(), p)
			return p, nil
		}
	}
	return a.workspaceKey(r.Context(), token)
}

// SignedIn is a request authenticated by a web session.
type SignedIn struct {
	Session Session
	// Token is the session's secret, from its cookie: it keys the
	// session's anti-forgery token and names the session to end.
	Token string
	// Principal is the signed-in person, not yet scoped to an Organization
	// or an Enterprise Account: each page scopes it to the one of its URL.
	Principal steward.Principal
}

// Session authenticates by the web pages' rule: the session whose secret
// is in the SessionCookie. A request without the cookie gets a zero
// SignedIn; a cookie that names no live session gets a KindUnauthenticated
// error.
func (a *Authenticator) Session(r *http.Request) (SignedIn, error) {
	token, err := presented(r, fromSessionCookie)
	if err != nil || token == "" {
		return SignedIn{}, err
	}
	sess, err := a.lookupSession(r.Context(), token)
	if err != nil {
		return SignedIn{}, err
	}
	s := SignedIn{Session: sess, Token: token, Principal: steward.Principal{Kind: steward.CredentialWebSession,
		CredentialID: sess.ID, CredentialName: sess.Email, UserID: sess.UserID}}
	admit(r.Context(), s.Principal)
	return s, nil
}

// admit is where a request becomes authenticated, whatever its credential:
// its connection no longer counts against the bound on unauthenticated
// ones (package conns), and its access log names the credential (Seen).
func admit(ctx context.Context, p steward.Principal) {
	conns.Authenticated(ctx)
	if s, ok := ctx.Value(seenKey{}).(*Seen); ok {
		s.credentialID = p.CredentialID
	}
}

// Seen is which credential authenticated a request, for its access log.
type Seen struct{ credentialID string }

type seenKey struct{}

// Watch returns ctx carrying s, which the authentication of the request
// fills in.
func Watch(ctx context.Context, s *Seen) context.Context {
	return context.WithValue(ctx, seenKey{}, s)
}

// CredentialID is the id of the credential that authenticated the request,
// "" when none did (or it has none, as the report token).
func (s *Seen) CredentialID() string { return s.credentialID }
