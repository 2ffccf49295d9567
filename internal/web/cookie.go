package web

import "net/http"

// secure reports whether cookies are marked Secure: on every request with
// --secure-cookies, otherwise on those the client sent over HTTPS, to
// Steward or to a trusted proxy.
func (h *Handler) secure(r *http.Request) bool { return h.cfg.SecureCookies || h.cfg.Proxies.HTTPS(r) }

// setCookie sets one of Steward's cookies, all of which are for these
// pages only, out of reach of scripts and of other sites' form posts.
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix + "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
}
