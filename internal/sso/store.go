package sso

import (
	"context"
	"encoding/json"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

const connectionColumns = `id, scope, protocol, oidc_issuer, oidc_client_id, oidc_client_secret_env, oidc_client_secret_file, oidc_scopes,
	external_id_claim, saml_metadata_url, saml_metadata_xml, saml_sp_certificate, saml_sp_private_key, jit_domains, jit_role_id, enforce,
	break_glass, created_at, updated_at`

// errNoConnection answers for a scope or a link without a connection.
var errNoConnection = steward.Errorf(steward.KindNotFound, "no single sign-on connection is configured here")

func scanConnection(r store.Scanner) (Connection, error) {
	var c Connection
	var scope, scopes, domains, breakGlass string
	var created, updated int64
	err := r.Scan(&c.ID, &scope, &c.Protocol, &c.OIDC.Issuer, &c.OIDC.ClientID, &c.OIDC.ClientSecretEnv, &c.OIDC.ClientSecretFile, &scopes,
		&c.ExternalIDClaim, &c.SAML.MetadataURL, &c.SAML.MetadataXML, &c.SAML.SPCertificate, &c.SAML.SPPrivateKey, &domains, &c.JIT.RoleID, &c.Enforce,
		&breakGlass, &created, &updated)
	c.Scope = Scope(scope)
	c.OIDC.Scopes, c.JIT.Domains, c.BreakGlass = parseList(scopes), parseList(domains), parseList(breakGlass)
	c.CreatedAt, c.UpdatedAt = store.Time(created), store.Time(updated)
	return c, err
}

// connectionByID returns a connection, or errNoConnection.
func connectionByID(ctx context.Context, tx *store.Tx, id string) (Connection, error) {
	if len(id) > 64 {
		return Connection{}, errNoConnection
	}
	c, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM sso_connections WHERE id = ?`, id))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return Connection{}, errNoConnection
	}
	return c, err
}

// ConnectionOf returns the connection of a scope, or a KindNotFound error.
func ConnectionOf(ctx context.Context, tx *store.Tx, scope Scope) (Connection, error) {
	c, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM sso_connections WHERE scope = ?`, string(scope)))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return Connection{}, errNoConnection
	}
	return c, err
}

func jsonList(list []string) string {
	if list == nil {
		list = []string{}
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// scopeEntry is an audit entry in the chain of scope.
func scopeEntry(scope Scope, actor steward.Actor, event string, meta map[string]string, targetType string, target map[string]string) audit.Entry {
	return audit.Entry{OrganizationID: scope.Organization(), EnterpriseAccountID: scope.EnterpriseAccount(), Actor: actor,
		EventType: event, EventMetadata: meta, TargetType: targetType, TargetMetadata: target}
}

// recordScoped records e, filling in the Enterprise Account of an
// Organization's entry as every entry of it carries one.
func recordScoped(ctx context.Context, tx *store.Tx, e audit.Entry) error {
	if e.OrganizationID != "" && e.EnterpriseAccountID == "" {
		if err := tx.QueryRow(ctx, `SELECT enterprise_account_id FROM organizations WHERE id = ?`, e.OrganizationID).Scan(&e.EnterpriseAccountID); err != nil {
			return err
		}
	}
	return audit.Record(ctx, tx, e)
}
