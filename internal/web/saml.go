package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/sso/saml"
	"github.com/stewardhq/steward/internal/steward"
)

// ssoContinueData is the form that posts a SAML response once more, from
// Steward's own page.
type ssoContinueData struct {
	Action       string
	SAMLResponse string
	RelayState   string
}

// errResponseTooLarge refuses a SAMLResponse field over saml.MaxResponseSize.
var errResponseTooLarge = steward.Errorf(steward.KindUnauthenticated, "the identity provider's answer is too large")

// samlACS is where a SAML identity provider posts its response (HTTP-POST
// binding). The post comes from the provider's site, and browsers do not
// send Steward's SameSite=Lax cookies with another site's post, so the
// cookie that ties the sign-in to this browser is missing: the page then
// posts the same fields once more from Steward's own page (at once with
// the script, or with a button), which carries it. A post marked as that
// second one and still without the cookie is refused as not started in
// this browser, which is what a forged post is.
func (h *Handler) samlACS(w http.ResponseWriter, r *http.Request) {
	response := r.PostFormValue("SAMLResponse")
	if len(response) > saml.MaxResponseSize {
		h.ssoFailed(w, r, errResponseTooLarge)
		return
	}
	if _, err := r.Cookie(ssoStateCookie); err != nil && r.PostFormValue("continued") == "" {
		action := strings.Replace(sso.ACSPath, "{connection}", url.PathEscape(r.PathValue("connection")), 1)
		h.render(w, r, http.StatusOK, "sso_continue", page{Title: "Signing in",
			Data: ssoContinueData{Action: action, SAMLResponse: response, RelayState: r.PostFormValue("RelayState")}})
		return
	}
	h.ssoComplete(w, r, r.PostFormValue("RelayState"))
}

// samlMetadata serves a SAML connection's service provider metadata, for
// identity providers that import it by URL; it holds nothing secret.
func (h *Handler) samlMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := h.cfg.SSO.SAMLMetadata(r.Context(), r.PathValue("connection"))
	if steward.IsKind(err, steward.KindNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(md)
}
