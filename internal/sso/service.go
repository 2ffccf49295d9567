package sso

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Paths of the web pages' single sign-on routes, which the providers are
// told about.
const (
	// CallbackPath is the OpenID Connect redirect URI of every connection.
	CallbackPath = "/web/sso/oidc/callback"
	// BackChannelLogoutPath is the OpenID Connect back-channel logout URI
	// of every connection.
	BackChannelLogoutPath = "/web/sso/oidc/backchannel-logout"
	// StartPath is the start of a connection's sign-in, with the
	// connection's id for "{connection}".
	StartPath = "/web/sso/{connection}/start"
	// ACSPath and MetadataPath are the SAML service provider's assertion
	// consumer service and metadata, with the connection's id.
	ACSPath      = "/web/sso/saml/{connection}/acs"
	MetadataPath = "/web/sso/saml/{connection}/metadata"
)

// outboundTimeout bounds each request to a provider (discovery, keys,
// token), when Config.Client is not given.
const outboundTimeout = 10 * time.Second

// Config is what a Service needs.
type Config struct {
	DB *store.DB
	// PublicURL is where people reach Steward (http(s)://host[:port]),
	// from which the URLs given to the providers are made.
	PublicURL string
	// Client makes the requests to the providers; nil gets one with a
	// 10-second timeout.
	Client *http.Client
	// Getenv reads the client secrets' environment variables; nil is
	// os.Getenv.
	Getenv func(string) string
	Log    *slog.Logger
	// Now is the clock ID tokens' expiry is checked against; nil is
	// time.Now.
	Now func() time.Time
}

// Service configures single sign-on and runs its sign-ins.
type Service struct {
	db        *store.DB
	publicURL string
	client    *http.Client
	getenv    func(string) string
	log       *slog.Logger
	now       func() time.Time
	replay    *Replay
	// oidc and saml are the protocols' halves of a sign-in.
	oidc *oidcFlow
	saml *samlFlow
}

// New returns the service.
func New(cfg Config) *Service {
	s := &Service{db: cfg.DB, publicURL: strings.TrimSuffix(cfg.PublicURL, "/"), client: cfg.Client, getenv: cfg.Getenv,
		log: cfg.Log, now: cfg.Now, replay: NewReplay(cfg.DB)}
	if s.client == nil {
		s.client = &http.Client{Timeout: outboundTimeout}
	}
	if s.getenv == nil {
		s.getenv = os.Getenv
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.oidc = newOIDCFlow(s)
	s.saml = newSAMLFlow(s)
	return s
}

// Replay is the guard against identifiers used twice.
func (s *Service) Replay() *Replay { return s.replay }

// PublicURL is where people reach Steward, without a trailing slash.
func (s *Service) PublicURL() string { return s.publicURL }

// RedirectURI is the OpenID Connect redirect URI to register at the
// provider.
func (s *Service) RedirectURI() string { return s.publicURL + CallbackPath }

// connectionURL is one of the connection's paths, absolute.
func (s *Service) connectionURL(path, connID string) string {
	return s.publicURL + strings.Replace(path, "{connection}", connID, 1)
}

// StartURL is the link that starts a sign-in through the connection, for
// the provider's dashboard (a bookmark app).
func (s *Service) StartURL(connID string) string { return s.connectionURL(StartPath, connID) }

// ACSURL is the connection's SAML assertion consumer service, where the
// identity provider posts its responses.
func (s *Service) ACSURL(connID string) string { return s.connectionURL(ACSPath, connID) }

// MetadataURL is where the connection's SAML service provider metadata is
// served.
func (s *Service) MetadataURL(connID string) string { return s.connectionURL(MetadataPath, connID) }

// EntityID is the connection's SAML service provider entity id (the
// audience of the identity provider's assertions): its metadata's URL.
func (s *Service) EntityID(connID string) string { return s.MetadataURL(connID) }

// Begin starts a sign-in through the connection connID, to open next once
// signed in, and returns the provider's URL to send the browser to and the
// sign-in's state, which the web pages also keep in a cookie of the
// browser so that a callback is accepted only from the browser that
// started it. An unknown connection is KindNotFound; a provider it cannot
// reach, KindUnavailable.
func (s *Service) Begin(ctx context.Context, connID, next string) (redirectURL, state string, err error) {
	var c Connection
	err = s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		c, err = connectionByID(ctx, tx, connID)
		return err
	})
	if err != nil {
		return "", "", err
	}
	f, err := s.flow(c)
	if err != nil {
		return "", "", err
	}
	if state, err = randomString(32); err != nil {
		return "", "", err
	}
	p := Pending{State: state, ConnectionID: c.ID, Next: next, ExpiresAt: s.now().Add(PendingTTL)}
	u, err := f.begin(ctx, c, &p)
	if err != nil {
		return "", "", s.providerError(ctx, c, "begin", err)
	}
	return u, state, s.db.Transact(ctx, func(tx *store.Tx) error { return savePending(ctx, tx, p) })
}

// flow returns the flow of c's protocol. Put accepts no other protocol, so
// another one in the database is an error of Steward's own.
func (s *Service) flow(c Connection) (flow, error) {
	switch c.Protocol {
	case ProtocolOIDC:
		return s.oidc, nil
	case ProtocolSAML:
		return s.saml, nil
	}
	return nil, fmt.Errorf("sso: connection %s has the unknown protocol %q", c.ID, c.Protocol)
}

// SignIn is a person the provider vouched for and Steward let in: the web
// pages start the session from it.
type SignIn struct {
	UserID       string
	Email        string
	Scope        Scope
	ConnectionID string
	// Subject, SessionID and IDToken are the provider's, kept with the
	// session for its logout.
	Subject   string
	SessionID string
	IDToken   string
	// Next is the page the sign-in was started for.
	Next string
}

// Finish completes the sign-in whose state the callback request r
// carries: it uses the pending sign-in up, has its protocol's flow check
// the provider's answer, and lets the person in (see admit). Refusals are
// *steward.Error with a message for the person, logged and, once the
// connection is known, audited as user.login.sso_failed with the reason;
// a sign-in let in is audited as user.login.sso.
func (s *Service) Finish(ctx context.Context, r *http.Request, state string) (SignIn, error) {
	var p Pending
	var c Connection
	err := s.db.Transact(ctx, func(tx *store.Tx) error {
		var err error
		if p, err = takePending(ctx, tx, state); err != nil {
			return err
		}
		c, err = connectionByID(ctx, tx, p.ConnectionID)
		return err
	})
	if err != nil {
		s.log.Info("sso: sign-in refused", "request_id", steward.RequestIDFrom(ctx), "reason", err.Error())
		return SignIn{}, err
	}
	f, err := s.flow(c)
	if err != nil {
		return SignIn{}, err
	}
	id, err := f.finish(ctx, c, r, p)
	if err != nil {
		return SignIn{}, s.fail(ctx, c, Identity{}, s.providerError(ctx, c, "finish", err))
	}
	var in SignIn
	err = s.db.Transact(ctx, func(tx *store.Tx) error {
		var err error
		in, err = s.admit(ctx, tx, c, id)
		return err
	})
	if err != nil {
		return SignIn{}, s.fail(ctx, c, id, err)
	}
	in.Next = p.Next
	return in, nil
}

// providerError keeps a refusal's message for the person, and turns any
// other error of a flow (the provider unreachable, a secret missing) into
// errProvider after logging it.
func (s *Service) providerError(ctx context.Context, c Connection, step string, err error) error {
	var se *steward.Error
	if errors.As(err, &se) {
		return err
	}
	s.log.Error("sso: provider", "request_id", steward.RequestIDFrom(ctx), "connection_id", c.ID, "step", step, "err", err)
	return errProvider
}

// fail logs and audits a refused sign-in through c (user.login.sso_failed
// with the reason), and returns err.
func (s *Service) fail(ctx context.Context, c Connection, id Identity, err error) error {
	var se *steward.Error
	if !errors.As(err, &se) || se.Kind == steward.KindInternal {
		return err
	}
	s.log.Info("sso: sign-in refused", "request_id", steward.RequestIDFrom(ctx), "connection_id", c.ID, "email", id.Email, "reason", se.Message)
	meta := map[string]string{"reason": se.Message, "connection_id": c.ID, "protocol": c.Protocol}
	target := map[string]string{"email": id.Email, "subject": id.Subject}
	e := scopeEntry(c.Scope, steward.Actor{Type: steward.ActorOther, Metadata: map[string]string{"name": "single sign-on", "email": id.Email}},
		audit.EventUserLoginSSOFailed, meta, audit.TargetUser, target)
	if aerr := s.db.Transact(ctx, func(tx *store.Tx) error { return recordScoped(ctx, tx, e) }); aerr != nil {
		s.log.Error("sso: audit of a refused sign-in", "request_id", steward.RequestIDFrom(ctx), "err", aerr)
	}
	return err
}

// Refusals of admit, in plain words.
var (
	errUnknownUser = refused("your identity provider vouched for you, but you are not a member here: ask an administrator to invite you")
	errUnverified  = refused("your identity provider did not say that your e-mail address is verified, so it cannot be matched to a member")
	errDeactivated = refused("your account here is deactivated: ask an administrator")
)

// admit decides who the provider's identity id is in c's scope: the member
// whose SCIM externalId is id.ExternalID (when the connection names its
// claim and the provider sent it), else the member with id's address when
// the provider says it is verified; a member deactivated by SCIM is
// refused. Someone who is no member is created, with the JIT role, when
// the address's domain is one of the JIT domains. It records the sign-in
// (for enforcement) and audits it.
func (s *Service) admit(ctx context.Context, tx *store.Tx, c Connection, id Identity) (SignIn, error) {
	userID, err := s.match(ctx, tx, c, id)
	if err != nil {
		return SignIn{}, err
	}
	if userID == "" {
		if userID, err = s.createJIT(ctx, tx, c, id); err != nil {
			return SignIn{}, err
		}
	}
	if err := checkActive(ctx, tx, c.Scope, userID); err != nil {
		return SignIn{}, err
	}
	var email string
	if err := tx.QueryRow(ctx, `SELECT email FROM users WHERE id = ?`, userID).Scan(&email); err != nil {
		return SignIn{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sso_sign_ins (connection_id, user_id, last_at) VALUES (?, ?, ?)
		ON CONFLICT (connection_id, user_id) DO UPDATE SET last_at = excluded.last_at`, c.ID, userID, store.Micros(tx.Now)); err != nil {
		return SignIn{}, err
	}
	actor := steward.Actor{Type: steward.ActorHuman, UserID: userID, Metadata: map[string]string{"email": email}}
	e := scopeEntry(c.Scope, actor, audit.EventUserLoginSSO, map[string]string{"connection_id": c.ID, "protocol": c.Protocol},
		audit.TargetUser, map[string]string{"id": userID, "email": email})
	if err := recordScoped(ctx, tx, e); err != nil {
		return SignIn{}, err
	}
	return SignIn{UserID: userID, Email: email, Scope: c.Scope, ConnectionID: c.ID, Subject: id.Subject, SessionID: id.SessionID, IDToken: id.IDToken}, nil
}

// match returns the member of c's scope that id names, "" when none is
// (and JIT may create one).
func (s *Service) match(ctx context.Context, tx *store.Tx, c Connection, id Identity) (string, error) {
	if c.ExternalIDClaim != "" && id.ExternalID != "" {
		var userID string
		q := `SELECT s.user_id FROM scim_users s WHERE s.organization_id = ? AND s.external_id = ?`
		arg := c.Scope.Organization()
		if arg == "" {
			q = `SELECT s.user_id FROM scim_users s JOIN organizations o ON o.id = s.organization_id WHERE o.enterprise_account_id = ? AND s.external_id = ? ORDER BY s.created_at`
			arg = c.Scope.EnterpriseAccount()
		}
		err := tx.QueryRow(ctx, q, arg, id.ExternalID).Scan(&userID)
		switch {
		case err == nil:
			return userID, s.requireMember(ctx, tx, c.Scope, userID)
		case !errors.Is(err, sql.ErrNoRows):
			return "", err
		}
	}
	if !id.EmailVerified {
		return "", errUnverified
	}
	_, normalized, err := directory.NormalizeEmail([]string{"email"}, id.Email)
	if err != nil {
		return "", refused("your identity provider sent no usable e-mail address")
	}
	var userID string
	err = tx.QueryRow(ctx, `SELECT id FROM users WHERE email_normalized = ?`, normalized).Scan(&userID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", err
	}
	member, err := isMember(ctx, tx, c.Scope, userID)
	if err != nil || !member {
		return "", err
	}
	return userID, nil
}

// requireMember refuses a user who is not a member of scope.
func (s *Service) requireMember(ctx context.Context, tx *store.Tx, scope Scope, userID string) error {
	member, err := isMember(ctx, tx, scope, userID)
	if err == nil && !member {
		return errUnknownUser
	}
	return err
}

// isMember reports whether the user is a member of the scope: of the
// Organization, or of the Enterprise Account.
func isMember(ctx context.Context, tx *store.Tx, scope Scope, userID string) (bool, error) {
	q, arg := `SELECT COUNT(*) FROM organization_members WHERE organization_id = ? AND user_id = ?`, scope.Organization()
	if arg == "" {
		q, arg = `SELECT COUNT(*) FROM enterprise_account_members WHERE enterprise_account_id = ? AND user_id = ?`, scope.EnterpriseAccount()
	}
	var n int
	err := tx.QueryRow(ctx, q, arg, userID).Scan(&n)
	return n > 0, err
}

// checkActive refuses a member whom SCIM deactivated: in the
// Organization, or, for a Backoffice, in any Organization of the
// Enterprise Account.
func checkActive(ctx context.Context, tx *store.Tx, scope Scope, userID string) error {
	q, arg := `SELECT COUNT(*) FROM organization_members WHERE organization_id = ? AND user_id = ? AND deactivated_at IS NOT NULL`, scope.Organization()
	if arg == "" {
		q, arg = `SELECT COUNT(*) FROM organization_members m JOIN organizations o ON o.id = m.organization_id
			WHERE o.enterprise_account_id = ? AND m.user_id = ? AND m.deactivated_at IS NOT NULL`, scope.EnterpriseAccount()
	}
	var n int
	if err := tx.QueryRow(ctx, q, arg, userID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return errDeactivated
	}
	return nil
}

// createJIT makes the person a member of c's Organization with the JIT
// role when their verified address's domain is allowed, audited as the
// Admin API's creation is (user.create), by the connection.
func (s *Service) createJIT(ctx context.Context, tx *store.Tx, c Connection, id Identity) (string, error) {
	orgID := c.Scope.Organization()
	_, domain, _ := strings.Cut(strings.ToLower(id.Email), "@")
	if orgID == "" || c.JIT.RoleID == "" || !containsFold(c.JIT.Domains, domain) {
		return "", errUnknownUser
	}
	org, err := directory.GetOrganization(ctx, tx, orgID)
	if err != nil {
		return "", err
	}
	role := c.JIT.RoleID
	actor := steward.Actor{Type: steward.ActorOther, Metadata: map[string]string{"name": "single sign-on (just-in-time)", "connection_id": c.ID}}
	res, err := directory.CreateMembers(ctx, tx, actor, org, []directory.NewMember{{
		Email: id.Email, FirstName: steward.Truncate(id.GivenName, 100), LastName: steward.Truncate(id.FamilyName, 100), Roles: directory.RoleInput{Role: &role},
	}})
	if err != nil {
		return "", err
	}
	for _, userID := range res.EmailToUserID {
		return userID, nil
	}
	return "", refused("your identity provider sent no usable e-mail address")
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// parseList reads a JSON array of strings stored by this package.
func parseList(s string) []string {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil || out == nil {
		return []string{}
	}
	return out
}
