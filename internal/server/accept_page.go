package server

import (
	"embed"
	"errors"
	"html/template"
	"net/http"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

//go:embed pages/*.html
var pageFiles embed.FS

var pages = template.Must(template.ParseFS(pageFiles, "pages/*.html"))

type acceptPage struct {
	Token, FirstName, LastName string
	Error                      string
	Done                       bool
	Email                      string
}

func renderAccept(w http.ResponseWriter, status int, p acceptPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "accept.html", p)
}

// handleAcceptPage shows the form that the invitation email links to.
func (s *Server) handleAcceptPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if token == "" {
		renderAccept(w, http.StatusBadRequest, acceptPage{Error: "This link has no invitation token: open the link from your invitation email."})
		return
	}
	renderAccept(w, http.StatusOK, acceptPage{Token: token})
}

// handleAcceptForm accepts the invitation from the form. The token is the
// credential, so a forged cross-site post cannot do anything its sender
// could not do with the token itself.
func (s *Server) handleAcceptForm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderAccept(w, http.StatusBadRequest, acceptPage{Error: "The form could not be read."})
		return
	}
	if err := steward.CheckValuesText("body", r.PostForm); err != nil {
		renderAccept(w, http.StatusUnprocessableEntity, acceptPage{Token: r.PostForm.Get("token"), Error: apierror.As(err).Message})
		return
	}
	p := acceptPage{Token: r.PostForm.Get("token"), FirstName: r.PostForm.Get("first_name"), LastName: r.PostForm.Get("last_name")}
	// The password is hashed before the transaction, so that no write
	// waits on argon2id. Someone who already has a password (from another
	// Organization) may leave it empty to keep theirs.
	pw, confirm := r.PostForm.Get("password"), r.PostForm.Get("password_confirm")
	var hash string
	var err error
	if pw != "" || confirm != "" {
		hash, err = auth.HashNewPassword(r.Context(), pw, confirm)
	}
	var res directory.Accepted
	if err == nil {
		err = s.deps.DB.Transact(r.Context(), func(tx *store.Tx) error {
			var err error
			if res, err = directory.AcceptInvitation(r.Context(), tx, p.Token, p.FirstName, p.LastName); err != nil {
				return err
			}
			if hash == "" {
				has, err := auth.HasPassword(r.Context(), tx, res.User.ID)
				if err == nil && !has {
					err = steward.Invalid([]string{"body", "password"}, "choose a password: you will sign in with it")
				}
				return err
			}
			actor := steward.Actor{Type: steward.ActorHuman, UserID: res.User.ID, Metadata: map[string]string{"email": res.User.Email}}
			return auth.SetPassword(r.Context(), tx, actor, res.User.ID, hash, auth.SetByInvitation)
		})
	}
	var e *steward.Error
	switch {
	case err == nil:
		renderAccept(w, http.StatusOK, acceptPage{Done: true, Email: res.User.Email})
	case errors.As(err, &e) && e.Kind != steward.KindInternal && e.Kind != steward.KindUnavailable:
		if e.Kind != steward.KindInvalid {
			p.Token = ""
		}
		p.Error = e.Message
		renderAccept(w, apierror.Status(e.Kind), p)
	default:
		writeError(w, r, err)
	}
}
