package sso

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stewardhq/steward/internal/steward"
)

// discoveryTTL is how long a provider's discovery document is trusted
// before it is fetched again. Its signing keys are not cached by this: the
// key set fetches them again whenever a token names a key it lacks, which
// is how a provider's key rotation is followed.
const discoveryTTL = time.Hour

// maxSecretLen caps a client secret read from a file.
const maxSecretLen = 4096

// oidcFlow signs in through an OpenID Connect provider: authorization code
// with PKCE (S256), state and nonce, the ID token checked by go-oidc
// (issuer, audience, expiry, signature through the provider's JWKS).
type oidcFlow struct {
	s *Service

	mu        sync.Mutex
	providers map[string]cachedProvider
}

var _ flow = (*oidcFlow)(nil)

// cachedProvider is a connection's discovered provider, for its issuer.
type cachedProvider struct {
	issuer string
	p      *oidc.Provider
	at     time.Time
}

func newOIDCFlow(s *Service) *oidcFlow {
	return &oidcFlow{s: s, providers: map[string]cachedProvider{}}
}

// errProvider is a provider Steward could not talk to; the cause is logged.
var errProvider = steward.Errorf(steward.KindUnavailable, "the identity provider could not be reached: try again, or ask your administrator to check the single sign-on settings")

// provider returns the connection's provider, discovered at most
// discoveryTTL ago. The requests go through the service's client, whose
// timeout bounds them.
func (f *oidcFlow) provider(ctx context.Context, c Connection) (*oidc.Provider, error) {
	f.mu.Lock()
	cp, ok := f.providers[c.ID]
	f.mu.Unlock()
	if ok && cp.issuer == c.OIDC.Issuer && time.Since(cp.at) < discoveryTTL {
		return cp.p, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, f.s.client), c.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: discovery of %s: %w", c.OIDC.Issuer, err)
	}
	f.mu.Lock()
	f.providers[c.ID] = cachedProvider{issuer: c.OIDC.Issuer, p: p, at: time.Now()}
	f.mu.Unlock()
	return p, nil
}

// config is the OAuth 2.0 client of the connection, its secret read now.
func (f *oidcFlow) config(ctx context.Context, c Connection) (*oidc.Provider, *oauth2.Config, error) {
	p, err := f.provider(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	secret, err := f.s.clientSecret(c)
	if err != nil {
		return nil, nil, err
	}
	scopes := append([]string{oidc.ScopeOpenID}, c.OIDC.Scopes...)
	return p, &oauth2.Config{ClientID: c.OIDC.ClientID, ClientSecret: secret, Endpoint: p.Endpoint(),
		RedirectURL: f.s.RedirectURI(), Scopes: scopes}, nil
}

func (f *oidcFlow) begin(ctx context.Context, c Connection, p *Pending) (string, error) {
	_, conf, err := f.config(ctx, c)
	if err != nil {
		return "", err
	}
	if p.Nonce, err = randomString(24); err != nil {
		return "", err
	}
	p.Verifier = oauth2.GenerateVerifier()
	return conf.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), nil
}

func (f *oidcFlow) finish(ctx context.Context, c Connection, r *http.Request, pend Pending) (Identity, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return Identity{}, refused("the identity provider refused the sign-in: %s %s", steward.Truncate(e, 100), steward.Truncate(q.Get("error_description"), 300))
	}
	code := q.Get("code")
	if code == "" {
		return Identity{}, refused("the identity provider sent no authorization code")
	}
	p, conf, err := f.config(ctx, c)
	if err != nil {
		return Identity{}, err
	}
	cctx := oidc.ClientContext(ctx, f.s.client)
	tok, err := conf.Exchange(cctx, code, oauth2.VerifierOption(pend.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Identity{}, refused("the identity provider refused the authorization code: %s", steward.Truncate(re.ErrorCode, 100))
		}
		return Identity{}, fmt.Errorf("sso: token request to %s: %w", c.OIDC.Issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, refused("the identity provider sent no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: c.OIDC.ClientID, Now: f.s.now}).Verify(cctx, raw)
	if err != nil {
		return Identity{}, refused("the ID token was refused: %s", steward.Truncate(err.Error(), 300))
	}
	if idt.Nonce == "" || idt.Nonce != pend.Nonce {
		return Identity{}, refused("the ID token was refused: its nonce is not this sign-in's")
	}
	if err := f.s.replay.Use(ctx, "oidc-nonce:"+c.ID+":"+idt.Nonce, idt.Expiry.Add(time.Minute)); errors.Is(err, ErrReplayed) {
		return Identity{}, refused("the ID token was refused: it was used before")
	} else if err != nil {
		return Identity{}, err
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, refused("the ID token was refused: %s", steward.Truncate(err.Error(), 300))
	}
	// A provider that issues an access token may leave the profile and
	// e-mail claims to its userinfo endpoint, as the specification lets it.
	if _, ok := claims["email"]; !ok && p.UserInfoEndpoint() != "" {
		info, err := p.UserInfo(cctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("sso: userinfo of %s: %w", c.OIDC.Issuer, err)
		}
		if info.Subject != idt.Subject {
			return Identity{}, refused("the identity provider's userinfo is about another subject than its ID token")
		}
		var more map[string]any
		if err := info.Claims(&more); err != nil {
			return Identity{}, fmt.Errorf("sso: userinfo of %s: %w", c.OIDC.Issuer, err)
		}
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	str := func(k string) string { v, _ := claims[k].(string); return v }
	id := Identity{Subject: idt.Subject, Email: str("email"), EmailVerified: isTrue(claims["email_verified"]),
		GivenName: str("given_name"), FamilyName: str("family_name"), SessionID: str("sid"), IDToken: raw}
	if c.ExternalIDClaim != "" {
		id.ExternalID = str(c.ExternalIDClaim)
	}
	return id, nil
}

// isTrue reads a boolean claim sent as true or "true".
func isTrue(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

// clientSecret reads the connection's client secret from its environment
// variable or file, at each use, so that a rotated secret is used at once.
// A name that is not the scope's own (see SecretName) is not read.
func (s *Service) clientSecret(c Connection) (string, error) {
	o := c.OIDC
	switch {
	case !c.Scope.ownsSecret(o.ClientSecretEnv) && !c.Scope.ownsSecret(filepath.Base(o.ClientSecretFile)):
		return "", fmt.Errorf("sso: the client secret of connection %s is not named %s", c.ID, SecretName(c.Scope))
	case o.ClientSecretEnv != "":
		if v := s.getenv(o.ClientSecretEnv); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("sso: the client secret's environment variable %s is empty or unset", o.ClientSecretEnv)
	case o.ClientSecretFile != "":
		b, err := os.ReadFile(o.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("sso: the client secret's file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" || len(v) > maxSecretLen {
			return "", fmt.Errorf("sso: the client secret's file %s is empty or longer than %d bytes", o.ClientSecretFile, maxSecretLen)
		}
		return v, nil
	}
	return "", errors.New("sso: the connection names no client secret")
}
