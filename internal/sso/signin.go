package sso

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"

	"github.com/stewardhq/steward/internal/directory"
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
