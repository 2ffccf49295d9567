package sso

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestValidate checks each rule of a connection's body, by the message of
// the field it names.
func TestValidate(t *testing.T) {
	org := OrgScope("o1")
	oidc := func(edit func(*Input)) Input {
		in := Input{Protocol: ProtocolOIDC, Issuer: "https://idp.example", ClientID: "steward", ClientSecretEnv: "STEWARD_SSO_ORG_O1"}
		edit(&in)
		return in
	}
	tests := []struct {
		name  string
		scope Scope
		in    Input
		field string
		want  string // "" for a valid input
	}{
		{"valid OpenID Connect", org, oidc(func(*Input) {}), "", ""},
		{"no protocol", org, Input{}, "body.protocol", "protocol is required"},
		{"unknown protocol", org, Input{Protocol: "ldap"}, "body.protocol", `unknown protocol "ldap"`},
		{"http issuer", org, oidc(func(in *Input) { in.Issuer = "http://idp.example" }), "body.oidc.issuer", "https://"},
		{"issuer with a query", org, oidc(func(in *Input) { in.Issuer = "https://idp.example/?x=1" }), "body.oidc.issuer", "without user, query or fragment"},
		{"both secret references", org, oidc(func(in *Input) { in.ClientSecretFile = "/run/secrets/STEWARD_SSO_ORG_O1" }), "body.oidc.client_secret_env", "exactly one"},
		{"neither secret reference", org, oidc(func(in *Input) { in.ClientSecretEnv = "" }), "body.oidc.client_secret_env", "exactly one"},
		{"a secret instead of a variable name", org, oidc(func(in *Input) { in.ClientSecretEnv = "s3cr3t-v@lue" }), "body.oidc.client_secret_env", "not the secret itself"},
		{"relative secret file", org, oidc(func(in *Input) { in.ClientSecretEnv, in.ClientSecretFile = "", "run/STEWARD_SSO_ORG_O1" }), "body.oidc.client_secret_file", "absolute path"},
		{"secret variable with a suffix", org, oidc(func(in *Input) { in.ClientSecretEnv = "STEWARD_SSO_ORG_O1_2026" }), "", ""},
		{"secret file", org, oidc(func(in *Input) { in.ClientSecretEnv, in.ClientSecretFile = "", "/run/secrets/STEWARD_SSO_ORG_O1" }), "", ""},
		{"the server's own variable", org, oidc(func(in *Input) { in.ClientSecretEnv = "STEWARD_DATABASE_URL" }), "body.oidc.client_secret_env", "must be STEWARD_SSO_ORG_O1"},
		{"another Organization's variable", org, oidc(func(in *Input) { in.ClientSecretEnv = "STEWARD_SSO_ORG_O2" }), "body.oidc.client_secret_env", "must be STEWARD_SSO_ORG_O1"},
		{"a variable that only starts like its own", org, oidc(func(in *Input) { in.ClientSecretEnv = "STEWARD_SSO_ORG_O12" }), "body.oidc.client_secret_env", "must be STEWARD_SSO_ORG_O1"},
		{"a server file", org, oidc(func(in *Input) { in.ClientSecretEnv, in.ClientSecretFile = "", "/etc/shadow" }), "body.oidc.client_secret_file", "named STEWARD_SSO_ORG_O1"},
		{"another Backoffice's file", EAScope("e1"), oidc(func(in *Input) { in.ClientSecretEnv, in.ClientSecretFile = "", "/run/secrets/STEWARD_SSO_EA_E2" }), "body.oidc.client_secret_file", "named STEWARD_SSO_EA_E1"},
		{"scope with a space", org, oidc(func(in *Input) { in.Scopes = []string{"a b"} }), "body.oidc.scopes.0", "not an OAuth scope"},
		{"too many scopes", org, oidc(func(in *Input) { in.Scopes = make([]string, MaxScopes+1) }), "body.oidc.scopes", "at most 20 scopes"},
		{"bad domain", org, oidc(func(in *Input) { in.JITDomains = []string{"example"} }), "body.jit.domains.0", "not a domain name"},
		{"JIT on a Backoffice", EAScope("e1"), oidc(func(in *Input) { in.JITDomains = []string{"example.com"} }), "body.jit.domains", "for Organizations"},
		{"bad claim name", org, oidc(func(in *Input) { in.ExternalIDClaim = "a b" }), "body.external_id_claim", "claim or attribute name"},
		{"SAML with both metadata", org, Input{Protocol: ProtocolSAML, IDPMetadataURL: "https://idp.example/md", IDPMetadataXML: "<EntityDescriptor/>"},
			"body.saml.idp_metadata_url", "exactly one"},
		{"SAML metadata that is not", org, Input{Protocol: ProtocolSAML, IDPMetadataXML: "<html/>"}, "body.saml.idp_metadata_xml", "EntityDescriptor"},
		{"valid SAML", org, Input{Protocol: ProtocolSAML, IDPMetadataURL: "https://idp.example/md"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.in.validate(tt.scope)
			if tt.want == "" {
				if len(errs) != 0 {
					t.Fatalf("got %v, want no error", errs)
				}
				return
			}
			for _, e := range errs {
				if strings.Join(e.Field, ".") == tt.field && strings.Contains(e.Message, tt.want) {
					return
				}
			}
			t.Fatalf("got %v, want %s saying %q", errs, tt.field, tt.want)
		})
	}
}

func TestValidateNormalizes(t *testing.T) {
	in := Input{Protocol: ProtocolOIDC, Issuer: "https://idp.example", ClientID: "c", ClientSecretEnv: "STEWARD_SSO_ORG_O",
		Scopes: []string{"openid", "email"}, JITDomains: []string{" Example.COM", "example.com"}}
	if errs := in.validate(OrgScope("o")); len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := strings.Join(in.Scopes, " "); got != "email" {
		t.Errorf("scopes %q, want openid left out (it is always asked for)", got)
	}
	if got := strings.Join(in.JITDomains, ","); got != "example.com" {
		t.Errorf("domains %q, want lower-cased and deduplicated", got)
	}
	if in.BreakGlass == nil {
		t.Error("break-glass users are nil, want an empty list")
	}
}

func TestUnverifiedIssuer(t *testing.T) {
	tests := []struct {
		payload string
		iss     string
		aud     string
		ok      bool
	}{
		{`{"iss":"https://idp","aud":"c1"}`, "https://idp", "c1", true},
		{`{"iss":"https://idp","aud":["c1","c2"]}`, "https://idp", "c1,c2", true},
		{`{"aud":"c1"}`, "", "", false},
		{`not json`, "", "", false},
	}
	for _, tt := range tests {
		raw := "e30." + base64URL(tt.payload) + ".sig"
		iss, aud, ok := unverifiedIssuer(raw)
		if iss != tt.iss || strings.Join(aud, ",") != tt.aud || ok != tt.ok {
			t.Errorf("%s: got %q %v %v, want %q %q %v", tt.payload, iss, aud, ok, tt.iss, tt.aud, tt.ok)
		}
	}
	if _, _, ok := unverifiedIssuer("a.b"); ok {
		t.Error("a token of two parts was read")
	}
}

func TestScope(t *testing.T) {
	if s := OrgScope("o1"); s.Organization() != "o1" || s.EnterpriseAccount() != "" || s != "org:o1" {
		t.Errorf("OrgScope: %q %q %q", s, s.Organization(), s.EnterpriseAccount())
	}
	if s := EAScope("e1"); s.EnterpriseAccount() != "e1" || s.Organization() != "" || s != "ea:e1" {
		t.Errorf("EAScope: %q %q %q", s, s.Organization(), s.EnterpriseAccount())
	}
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
