package sso

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/sso/saml"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Limits of a connection's settings.
const (
	MaxURLLen         = 2048
	MaxClientIDLen    = 255
	MaxScopes         = 20
	MaxScopeLen       = 100
	MaxDomains        = 50
	MaxBreakGlass     = 20
	MaxMetadataXMLLen = 256 << 10
	maxPathLen        = 1024
)

// Input is a scope's whole connection, as PUT sends it: what is not sent
// is empty (or the default), not kept.
type Input struct {
	Protocol         string
	Issuer           string
	ClientID         string
	ClientSecretEnv  string
	ClientSecretFile string
	// Scopes are requested beside openid; nil asks for email and profile.
	Scopes          []string
	IDPMetadataURL  string
	IDPMetadataXML  string
	ExternalIDClaim string
	JITDomains      []string
	// JITRole is a role's name, letter or id; "" is member.
	JITRole    string
	Enforce    bool
	BreakGlass []string
}

// DefaultScopes are asked for beside openid when Input.Scopes is nil.
var DefaultScopes = []string{"email", "profile"}

var (
	secretSuffix = regexp.MustCompile(`^(_[A-Z0-9_]{1,40})?$`)
	scopeToken   = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
	claimName    = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,100}$`)
	domainName   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

// SecretName is the name of the environment variable, or of the file, that
// holds the OpenID Connect client secret of scope's connection; a name may
// add a suffix to it (for a rotation). The name is the scope's own, so that
// the admin of one Organization can name neither another Organization's
// secret nor any other variable or file of the server (a database URL, a
// key), which Steward would otherwise send to the provider that admin
// chose.
func SecretName(scope Scope) string {
	return "STEWARD_SSO_" + strings.ToUpper(strings.NewReplacer(":", "_", "-", "_").Replace(string(scope)))
}

// ownsSecret reports whether name is scope's SecretName or that name with
// a suffix.
func (s Scope) ownsSecret(name string) bool {
	rest, ok := strings.CutPrefix(name, SecretName(s))
	return ok && secretSuffix.MatchString(rest)
}

func field(name ...string) []string { return append([]string{"body"}, name...) }

// validate checks in for scope and returns every problem at once.
func (in *Input) validate(scope Scope) []*steward.Error {
	var errs []*steward.Error
	bad := func(f []string, format string, args ...any) { errs = append(errs, steward.Invalid(f, format, args...)) }
	switch in.Protocol {
	case ProtocolOIDC:
		if msg := checkHTTPS(in.Issuer); msg != "" {
			bad(field("oidc", "issuer"), "issuer %s", msg)
		}
		if in.ClientID == "" || len(in.ClientID) > MaxClientIDLen || strings.ContainsFunc(in.ClientID, isControl) {
			bad(field("oidc", "client_id"), "client_id is required: the client id the provider gave Steward, at most %d characters", MaxClientIDLen)
		}
		switch {
		case (in.ClientSecretEnv == "") == (in.ClientSecretFile == ""):
			bad(field("oidc", "client_secret_env"), "send exactly one of client_secret_env (the name of an environment variable) and client_secret_file (the path of a file) that holds the client secret")
		case in.ClientSecretEnv != "" && !scope.ownsSecret(in.ClientSecretEnv):
			bad(field("oidc", "client_secret_env"), "client_secret_env must be the name of an environment variable, not the secret itself, and that name must be %s (or it followed by _ and up to 40 capitals, digits or _)", SecretName(scope))
		case in.ClientSecretFile != "" && (!filepath.IsAbs(in.ClientSecretFile) || len(in.ClientSecretFile) > maxPathLen || strings.ContainsFunc(in.ClientSecretFile, isControl) ||
			!scope.ownsSecret(filepath.Base(in.ClientSecretFile))):
			bad(field("oidc", "client_secret_file"), "client_secret_file must be an absolute path of at most %d characters whose file is named %s (or it followed by _ and up to 40 capitals, digits or _)", maxPathLen, SecretName(scope))
		}
		if in.Scopes == nil {
			in.Scopes = slices.Clone(DefaultScopes)
		}
		if len(in.Scopes) > MaxScopes {
			bad(field("oidc", "scopes"), "at most %d scopes, not %d", MaxScopes, len(in.Scopes))
		}
		for i, s := range in.Scopes {
			if len(s) > MaxScopeLen || !scopeToken.MatchString(s) {
				bad(field("oidc", "scopes", strconv.Itoa(i)), "%q is not an OAuth scope (printable characters without spaces or quotes, at most %d)", steward.Truncate(s, 50), MaxScopeLen)
			}
		}
		in.Scopes = slices.DeleteFunc(slices.Compact(in.Scopes), func(s string) bool { return s == "openid" })
		in.IDPMetadataURL, in.IDPMetadataXML = "", ""
	case ProtocolSAML:
		switch {
		case (in.IDPMetadataURL == "") == (in.IDPMetadataXML == ""):
			bad(field("saml", "idp_metadata_url"), "send exactly one of idp_metadata_url and idp_metadata_xml: the identity provider's SAML metadata")
		case in.IDPMetadataURL != "":
			if msg := checkHTTPS(in.IDPMetadataURL); msg != "" {
				bad(field("saml", "idp_metadata_url"), "idp_metadata_url %s", msg)
			}
		case len(in.IDPMetadataXML) > MaxMetadataXMLLen:
			bad(field("saml", "idp_metadata_xml"), "idp_metadata_xml must be the provider's SAML metadata, at most %d bytes", MaxMetadataXMLLen)
		default:
			if _, err := saml.CheckMetadata([]byte(in.IDPMetadataXML)); err != nil {
				bad(field("saml", "idp_metadata_xml"), "idp_metadata_xml cannot be used: %s", strings.TrimPrefix(err.Error(), "saml: "))
			}
		}
		in.Issuer, in.ClientID, in.ClientSecretEnv, in.ClientSecretFile, in.Scopes = "", "", "", "", nil
	case "":
		bad(field("protocol"), "protocol is required: oidc or saml")
	default:
		bad(field("protocol"), "unknown protocol %q: oidc or saml", steward.Truncate(in.Protocol, 50))
	}
	if in.ExternalIDClaim != "" && !claimName.MatchString(in.ExternalIDClaim) {
		bad(field("external_id_claim"), "external_id_claim must be a claim or attribute name (letters, digits and _.:/-, at most 100)")
	}
	if len(in.JITDomains) > MaxDomains {
		bad(field("jit", "domains"), "at most %d domains, not %d", MaxDomains, len(in.JITDomains))
	}
	for i, d := range in.JITDomains {
		in.JITDomains[i] = strings.ToLower(strings.TrimSpace(d))
		if len(d) > 253 || !domainName.MatchString(in.JITDomains[i]) {
			bad(field("jit", "domains", strconv.Itoa(i)), "%q is not a domain name such as example.com", steward.Truncate(d, 100))
		}
	}
	in.JITDomains = slices.Compact(in.JITDomains)
	if len(in.JITDomains) > 0 && scope.Organization() == "" {
		bad(field("jit", "domains"), "just-in-time creation is for Organizations: a Backoffice's members are added by its Enterprise Account")
	}
	// Lists are never null, in storage or in answers.
	in.Scopes, in.JITDomains, in.BreakGlass = nonNil(in.Scopes), nonNil(in.JITDomains), nonNil(in.BreakGlass)
	if len(in.BreakGlass) > MaxBreakGlass {
		bad(field("break_glass_user_ids"), "at most %d break-glass users, not %d", MaxBreakGlass, len(in.BreakGlass))
	}
	return errs
}

func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkHTTPS returns what is wrong with u as an https URL, "" if nothing.
func checkHTTPS(u string) string {
	p, err := url.Parse(u)
	switch {
	case u == "":
		return "is required"
	case len(u) > MaxURLLen:
		return "is longer than " + strconv.Itoa(MaxURLLen) + " characters"
	case err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "":
		return "must be an https:// URL without user, query or fragment"
	}
	return ""
}

// Get returns the connection of scope, or a KindNotFound error.
func (s *Service) Get(ctx context.Context, scope Scope) (Connection, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Connection, error) { return ConnectionOf(ctx, tx, scope) })
}

// Put sets the connection of scope to in, creating it, and audits it as
// sso.configuration.updated in the same transaction. Every problem of in
// is one KindInvalid error. A change of the identity provider (protocol,
// issuer, client, metadata) forgets who signed in through the connection,
// and turning enforcement on needs one of them: the actor if a person
// (the Admin Panel), otherwise any administrator of the scope (see
// docs/sso.md); without one it is KindConflict.
func (s *Service) Put(ctx context.Context, actor steward.Actor, scope Scope, in Input) (Connection, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (Connection, error) {
		errs := in.validate(scope)
		roleID, err := s.checkPeople(ctx, tx, scope, &in, &errs)
		if err != nil {
			return Connection{}, err
		}
		if err := steward.Invalids(errs); err != nil {
			return Connection{}, err
		}
		old, err := ConnectionOf(ctx, tx, scope)
		exists := err == nil
		if err != nil && !steward.IsKind(err, steward.KindNotFound) {
			return Connection{}, err
		}
		c := Connection{ID: old.ID, Scope: scope, Protocol: in.Protocol, ExternalIDClaim: in.ExternalIDClaim,
			OIDC: OIDCSettings{Issuer: in.Issuer, ClientID: in.ClientID, ClientSecretEnv: in.ClientSecretEnv, ClientSecretFile: in.ClientSecretFile, Scopes: in.Scopes},
			SAML: SAMLSettings{MetadataURL: in.IDPMetadataURL, MetadataXML: in.IDPMetadataXML, SPCertificate: old.SAML.SPCertificate, SPPrivateKey: old.SAML.SPPrivateKey},
			JIT:  JIT{Domains: in.JITDomains, RoleID: roleID}, Enforce: in.Enforce, BreakGlass: in.BreakGlass,
			CreatedAt: old.CreatedAt, UpdatedAt: tx.Now}
		if !exists {
			c.ID, c.CreatedAt = uuid.NewString(), tx.Now
		}
		if c.Protocol == ProtocolSAML && c.SAML.SPPrivateKey == "" {
			pair, err := saml.GenerateKeyPair(s.EntityID(c.ID), tx.Now)
			if err != nil {
				return Connection{}, err
			}
			c.SAML.SPCertificate, c.SAML.SPPrivateKey = pair.CertificatePEM, pair.PrivateKeyPEM
		}
		providerChanged := exists && (old.Protocol != c.Protocol || old.OIDC.Issuer != c.OIDC.Issuer || old.OIDC.ClientID != c.OIDC.ClientID ||
			old.SAML.MetadataURL != c.SAML.MetadataURL || old.SAML.MetadataXML != c.SAML.MetadataXML)
		if providerChanged {
			if _, err := tx.Exec(ctx, `DELETE FROM sso_sign_ins WHERE connection_id = ?`, c.ID); err != nil {
				return Connection{}, err
			}
		}
		if c.Enforce && (!old.Enforce || providerChanged) {
			if err := checkProven(ctx, tx, c, actor, !exists || providerChanged); err != nil {
				return Connection{}, err
			}
		}
		if err := saveConnection(ctx, tx, c, exists); err != nil {
			return Connection{}, err
		}
		meta := map[string]string{"protocol": c.Protocol, "enforce": strconv.FormatBool(c.Enforce), "jit_domains": strings.Join(c.JIT.Domains, ","),
			"break_glass_user_ids": strings.Join(c.BreakGlass, ",")}
		if c.Protocol == ProtocolOIDC {
			meta["issuer"], meta["client_id"] = c.OIDC.Issuer, c.OIDC.ClientID
		} else if c.SAML.MetadataURL != "" {
			meta["idp_metadata_url"] = c.SAML.MetadataURL
		}
		if !exists {
			meta["created"] = "true"
		}
		e := scopeEntry(scope, actor, audit.EventSSOConfigurationUpdated, meta, audit.TargetSSOConnection, map[string]string{"id": c.ID, "protocol": c.Protocol})
		return c, recordScoped(ctx, tx, e)
	})
}

// checkPeople resolves the JIT role and checks that every break-glass
// user is a member of scope, adding problems to errs; it returns the JIT
// role's id, "" without JIT domains.
func (s *Service) checkPeople(ctx context.Context, tx *store.Tx, scope Scope, in *Input, errs *[]*steward.Error) (string, error) {
	var roleID string
	if orgID := scope.Organization(); orgID != "" && len(in.JITDomains) > 0 {
		cat, err := directory.LoadCatalog(ctx, tx, orgID)
		if err != nil {
			return "", err
		}
		ref := in.JITRole
		if ref == "" {
			ref = steward.RoleOrganizationMember
		}
		ids, err := cat.Resolve(steward.ScopeOrganization, directory.RoleInput{RoleName: &ref}, field("jit"))
		if err != nil {
			ids, err = cat.Resolve(steward.ScopeOrganization, directory.RoleInput{Role: &ref}, field("jit"))
		}
		if err != nil {
			*errs = append(*errs, steward.Invalid(field("jit", "default_role"), "%q is not a role of this Organization (its name, letter or id)", steward.Truncate(ref, 100)))
		} else {
			roleID = ids[len(ids)-1]
		}
	}
	in.BreakGlass = slices.Compact(in.BreakGlass)
	for i, id := range in.BreakGlass {
		member := false
		if len(id) <= 64 {
			var err error
			if member, err = isMember(ctx, tx, scope, id); err != nil {
				return "", err
			}
		}
		if !member {
			*errs = append(*errs, steward.Invalid(field("break_glass_user_ids", strconv.Itoa(i)), "%q is not the id of a member here", steward.Truncate(id, 64)))
		}
	}
	return roleID, nil
}

// checkProven refuses to turn enforcement on before a successful sign-in
// through c: by the actor, when a person turns it on; by any administrator
// of the scope (an organization_admin, or a member of the Enterprise
// Account), when an API key does. fresh is a connection whose provider is
// new, through which nobody has signed in yet.
func checkProven(ctx context.Context, tx *store.Tx, c Connection, actor steward.Actor, fresh bool) error {
	const msg = "enforce can be turned on only after %s signed in through this connection, so that nobody is locked out: save the connection without enforce, sign in with single sign-on, then turn enforce on"
	if fresh {
		return steward.Errorf(steward.KindConflict, msg, "an administrator has")
	}
	var n int
	var err error
	switch {
	case actor.Type == steward.ActorHuman:
		err = tx.QueryRow(ctx, `SELECT COUNT(*) FROM sso_sign_ins WHERE connection_id = ? AND user_id = ?`, c.ID, actor.UserID).Scan(&n)
		if err == nil && n == 0 {
			return steward.Errorf(steward.KindConflict, msg, "you have")
		}
	case c.Scope.Organization() != "":
		err = tx.QueryRow(ctx, `SELECT COUNT(*) FROM sso_sign_ins s JOIN organization_member_roles r ON r.user_id = s.user_id AND r.organization_id = ?
			WHERE s.connection_id = ? AND r.role_id = ?`, c.Scope.Organization(), c.ID, steward.RoleIDOrganizationAdmin).Scan(&n)
	default:
		err = tx.QueryRow(ctx, `SELECT COUNT(*) FROM sso_sign_ins s JOIN enterprise_account_members m ON m.user_id = s.user_id AND m.enterprise_account_id = ?
			WHERE s.connection_id = ?`, c.Scope.EnterpriseAccount(), c.ID).Scan(&n)
	}
	if err == nil && n == 0 {
		return steward.Errorf(steward.KindConflict, msg, "an administrator has")
	}
	return err
}

func saveConnection(ctx context.Context, tx *store.Tx, c Connection, exists bool) error {
	args := []any{c.Protocol, c.OIDC.Issuer, c.OIDC.ClientID, c.OIDC.ClientSecretEnv, c.OIDC.ClientSecretFile, jsonList(c.OIDC.Scopes),
		c.ExternalIDClaim, c.SAML.MetadataURL, c.SAML.MetadataXML, c.SAML.SPCertificate, c.SAML.SPPrivateKey, jsonList(c.JIT.Domains), c.JIT.RoleID,
		c.Enforce, jsonList(c.BreakGlass), store.Micros(c.UpdatedAt)}
	if exists {
		_, err := tx.Exec(ctx, `UPDATE sso_connections SET protocol = ?, oidc_issuer = ?, oidc_client_id = ?, oidc_client_secret_env = ?, oidc_client_secret_file = ?,
			oidc_scopes = ?, external_id_claim = ?, saml_metadata_url = ?, saml_metadata_xml = ?, saml_sp_certificate = ?, saml_sp_private_key = ?,
			jit_domains = ?, jit_role_id = ?, enforce = ?, break_glass = ?, updated_at = ? WHERE id = ?`, append(args, c.ID)...)
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO sso_connections (protocol, oidc_issuer, oidc_client_id, oidc_client_secret_env, oidc_client_secret_file,
		oidc_scopes, external_id_claim, saml_metadata_url, saml_metadata_xml, saml_sp_certificate, saml_sp_private_key,
		jit_domains, jit_role_id, enforce, break_glass, updated_at, id, scope, created_at) VALUES (`+store.Placeholders(19)+`)`,
		append(args, c.ID, string(c.Scope), store.Micros(c.CreatedAt))...)
	return err
}

// Delete removes the connection of scope, and audits it as
// sso.configuration.deleted; KindNotFound when there is none. Sessions it
// started go on until they end.
func (s *Service) Delete(ctx context.Context, actor steward.Actor, scope Scope) error {
	return s.db.Transact(ctx, func(tx *store.Tx) error {
		c, err := ConnectionOf(ctx, tx, scope)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sso_connections WHERE id = ?`, c.ID); err != nil {
			return err
		}
		e := scopeEntry(scope, actor, audit.EventSSOConfigurationDeleted, map[string]string{"protocol": c.Protocol},
			audit.TargetSSOConnection, map[string]string{"id": c.ID, "protocol": c.Protocol})
		return recordScoped(ctx, tx, e)
	})
}

// PasswordRefused returns a KindForbidden error, saying to use single
// sign-on, when the user may not sign in or reset their password with a
// password: they are a member of a scope whose connection enforces SSO,
// and not one of its break-glass users. nil otherwise.
func PasswordRefused(ctx context.Context, tx *store.Tx, userID string) error {
	var refusal error
	err := tx.Each(ctx, `SELECT c.scope, c.break_glass FROM sso_connections c WHERE c.enforce AND (
			c.scope IN (SELECT 'org:' || organization_id FROM organization_members WHERE user_id = ?)
			OR c.scope IN (SELECT 'ea:' || enterprise_account_id FROM enterprise_account_members WHERE user_id = ?)) ORDER BY c.scope`,
		[]any{userID, userID}, func(rows *sql.Rows) error {
			var scope, breakGlass string
			if err := rows.Scan(&scope, &breakGlass); err != nil {
				return err
			}
			if refusal == nil && !slices.Contains(parseList(breakGlass), userID) {
				refusal = errUseSSO
			}
			return nil
		})
	if err != nil {
		return err
	}
	return refusal
}

// errUseSSO refuses a password to someone whose Organization signs in
// with single sign-on only.
var errUseSSO = steward.Errorf(steward.KindForbidden, "your Organization signs in with single sign-on: use “Sign in with SSO” instead of a password")
