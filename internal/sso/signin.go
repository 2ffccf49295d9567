package sso

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Choice is a connection someone may sign in through, with the name of
// the Organization or Enterprise Account it opens.
type Choice struct {
	ConnectionID string
	Scope        Scope
	Name         string
}

// ForEmail returns the connections the person with this address signs in
// through: those of the Organizations and Enterprise Accounts they are a
// member of, else those whose JIT domains hold the address's domain. A
// malformed address is KindInvalid.
func (s *Service) ForEmail(ctx context.Context, email string) ([]Choice, error) {
	_, normalized, err := directory.NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return nil, err
	}
	var out []Choice
	err = s.db.View(ctx, func(tx *store.Tx) error {
		scan := func(rows *sql.Rows) error {
			var c Choice
			var scope string
			if err := rows.Scan(&c.ConnectionID, &scope, &c.Name); err != nil {
				return err
			}
			c.Scope = Scope(scope)
			out = append(out, c)
			return nil
		}
		err := tx.Each(ctx, `SELECT c.id, c.scope, o.name FROM sso_connections c JOIN organizations o ON c.scope = 'org:' || o.id
				JOIN organization_members m ON m.organization_id = o.id JOIN users u ON u.id = m.user_id WHERE u.email_normalized = ?
			UNION ALL SELECT c.id, c.scope, a.name FROM sso_connections c JOIN enterprise_accounts a ON c.scope = 'ea:' || a.id
				JOIN enterprise_account_members m ON m.enterprise_account_id = a.id JOIN users u ON u.id = m.user_id WHERE u.email_normalized = ?
			ORDER BY 3, 1`, []any{normalized, normalized}, scan)
		if err != nil || len(out) > 0 {
			return err
		}
		_, domain, _ := strings.Cut(normalized, "@")
		var jit []Choice
		err = tx.Each(ctx, `SELECT c.id, c.scope, o.name, c.jit_domains FROM sso_connections c JOIN organizations o ON c.scope = 'org:' || o.id
			WHERE c.jit_domains <> '[]' ORDER BY o.name, c.id`, nil, func(rows *sql.Rows) error {
			var c Choice
			var scope, domains string
			if err := rows.Scan(&c.ConnectionID, &scope, &c.Name, &domains); err != nil {
				return err
			}
			if containsFold(parseList(domains), domain) {
				c.Scope = Scope(scope)
				jit = append(jit, c)
			}
			return nil
		})
		out = jit
		return err
	})
	return out, err
}

// endSessionClaims is the part of an OpenID Connect discovery document
// that RP-initiated logout reads.
type endSessionClaims struct {
	EndSessionEndpoint string `json:"end_session_endpoint"`
}

// LogoutURL returns where to send the browser so that the provider ends
// its session too, when the web session sessionID was started by an
// OpenID Connect provider that supports RP-initiated logout; the provider
// sends the browser back to returnTo, which must be registered there as a
// post-logout redirect URI. "" when there is nothing to end. Call it
// before the session is ended.
func (s *Service) LogoutURL(ctx context.Context, sessionID, returnTo string) (string, error) {
	var connID, idToken sql.NullString
	var c Connection
	err := s.db.View(ctx, func(tx *store.Tx) error {
		err := tx.QueryRow(ctx, `SELECT sso_connection_id, sso_id_token FROM web_sessions WHERE id = ?`, sessionID).Scan(&connID, &idToken)
		if err != nil || !connID.Valid {
			return err
		}
		c, err = connectionByID(ctx, tx, connID.String)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.Is(err, errNoConnection):
		return "", nil
	case err != nil:
		return "", err
	case c.Protocol != ProtocolOIDC:
		return "", nil
	}
	p, err := s.oidc.provider(ctx, c)
	if err != nil {
		return "", err
	}
	var claims endSessionClaims
	if err := p.Claims(&claims); err != nil || claims.EndSessionEndpoint == "" {
		return "", err
	}
	u, err := url.Parse(claims.EndSessionEndpoint)
	if err != nil || u.Scheme != "https" {
		return "", nil
	}
	q := u.Query()
	q.Set("client_id", c.OIDC.ClientID)
	q.Set("post_logout_redirect_uri", returnTo)
	if idToken.Valid {
		q.Set("id_token_hint", idToken.String)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// errBadLogoutToken answers a back-channel logout whose token is not a
// valid logout token of a connection.
var errBadLogoutToken = steward.Invalid([]string{"body", "logout_token"}, "the logout token is not valid")

// BackChannelLogout ends the sessions that an OpenID Connect provider's
// logout token (OpenID Connect Back-Channel Logout 1.0) names: those its
// connection started for the token's sid, or else for its subject. The
// token is found a connection by its issuer and audience, then verified by
// go-oidc with the connection's keys (signature, issuer, audience, expiry,
// the logout event, no nonce); its jti is accepted once. It returns how
// many sessions ended; an invalid token is KindInvalid.
func (s *Service) BackChannelLogout(ctx context.Context, raw string) (int64, error) {
	iss, aud, ok := unverifiedIssuer(raw)
	if !ok {
		return 0, errBadLogoutToken
	}
	var conns []Connection
	err := s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		conns, err = store.All(ctx, tx, `SELECT `+connectionColumns+` FROM sso_connections WHERE protocol = ? AND oidc_issuer = ?`,
			[]any{ProtocolOIDC, iss}, scanConnection)
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, c := range conns {
		if !slices.Contains(aud, c.OIDC.ClientID) {
			continue
		}
		p, err := s.oidc.provider(ctx, c)
		if err != nil {
			return 0, s.providerError(ctx, c, "logout", err)
		}
		tok, err := p.Verifier(&oidc.Config{ClientID: c.OIDC.ClientID, Now: s.now}).VerifyLogout(oidc.ClientContext(ctx, s.client), raw)
		if err != nil {
			s.log.Info("sso: back-channel logout refused", "connection_id", c.ID, "reason", err.Error())
			return 0, errBadLogoutToken
		}
		until := tok.Expiry
		if until.IsZero() {
			until = s.now().Add(PendingTTL)
		}
		if err := s.replay.Use(ctx, "oidc-logout:"+c.ID+":"+tok.TokenID, until); errors.Is(err, ErrReplayed) {
			return 0, errBadLogoutToken
		} else if err != nil {
			return 0, err
		}
		q, arg := `DELETE FROM web_sessions WHERE sso_connection_id = ? AND sso_subject = ?`, tok.Subject
		if tok.SessionID != "" {
			q, arg = `DELETE FROM web_sessions WHERE sso_connection_id = ? AND sso_sid = ?`, tok.SessionID
		}
		var n int64
		err = s.db.Transact(ctx, func(tx *store.Tx) error {
			res, err := tx.Exec(ctx, q, c.ID, arg)
			if err == nil {
				n, err = res.RowsAffected()
			}
			return err
		})
		return n, err
	}
	return 0, errBadLogoutToken
}

// unverifiedIssuer reads the issuer and audience of a JWT without
// verifying it, only to find the connection whose keys verify it.
func unverifiedIssuer(raw string) (iss string, aud []string, ok bool) {
	parts := strings.Split(raw, ".")
	if len(raw) > 16<<10 || len(parts) != 3 {
		return "", nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", nil, false
	}
	var claims struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Iss == "" {
		return "", nil, false
	}
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil {
		return claims.Iss, []string{one}, true
	}
	return claims.Iss, aud, json.Unmarshal(claims.Aud, &aud) == nil
}
