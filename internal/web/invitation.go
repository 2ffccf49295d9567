package web

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

//go:embed invitation/accept.html
var invitationFiles embed.FS

var invitationPage = template.Must(template.ParseFS(invitationFiles, "invitation/accept.html"))

// InvitationPage is the page that an invitation email links to, where the
// invited person accepts it and chooses a password. The invitation's
// one-time token is the credential, so the page needs no session and is
// served outside Prefix, at /invitations/accept (the server registers it,
// with or without the other pages).
type InvitationPage struct {
	db *store.DB
	// fail writes an error that is not the person's to fix.
	fail func(http.ResponseWriter, *http.Request, error)
}

// NewInvitationPage returns the page over db; fail writes the errors that
// are not the person's to fix (internal errors, outages).
func NewInvitationPage(db *store.DB, fail func(http.ResponseWriter, *http.Request, error)) *InvitationPage {
	return &InvitationPage{db: db, fail: fail}
}

type acceptPage struct {
	Token, FirstName, LastName string
	Error                      string
	Done                       bool
	// Email is the invited address; Organization the inviting
	// Organization's name.
	Email, Organization string
}

func renderAccept(w http.ResponseWriter, status int, p acceptPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = invitationPage.ExecuteTemplate(w, "accept.html", p)
}

// Show shows the form that the invitation email links to.
func (pg *InvitationPage) Show(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if token == "" {
		renderAccept(w, http.StatusBadRequest, acceptPage{Error: "This link has no invitation token: open the link from your invitation email."})
		return
	}
	inv, org, err := pg.pending(r, token)
	var e *steward.Error
	switch {
	case err == nil:
		renderAccept(w, http.StatusOK, acceptPage{Token: token, Email: inv.Email, Organization: org.Name})
	case errors.As(err, &e) && e.Kind != steward.KindInternal && e.Kind != steward.KindUnavailable:
		renderAccept(w, apierror.Status(e.Kind), acceptPage{Error: e.Message})
	default:
		pg.fail(w, r, err)
	}
}

// pending returns the invitation of token and its Organization, while it
// may be accepted (directory.PendingInvitation).
func (pg *InvitationPage) pending(r *http.Request, token string) (steward.Invitation, steward.Organization, error) {
	var inv steward.Invitation
	var org steward.Organization
	err := pg.db.View(r.Context(), func(tx *store.Tx) error {
		var err error
		inv, org, err = directory.PendingInvitation(r.Context(), tx, token)
		return err
	})
	return inv, org, err
}

// Accept accepts the invitation from the form. The token is the
// credential, so a forged cross-site post cannot do anything its sender
// could not do with the token itself.
func (pg *InvitationPage) Accept(w http.ResponseWriter, r *http.Request) {
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
		res, err = auth.AcceptInvitation(r.Context(), pg.db, p.Token, p.FirstName, p.LastName, hash)
	}
	var e *steward.Error
	switch {
	case err == nil:
		renderAccept(w, http.StatusOK, acceptPage{Done: true, Email: res.User.Email, Organization: pg.organizationName(r, res.OrganizationID)})
	case errors.As(err, &e) && e.Kind != steward.KindInternal && e.Kind != steward.KindUnavailable:
		if e.Kind == steward.KindInvalid {
			if inv, org, err := pg.pending(r, p.Token); err == nil {
				p.Email, p.Organization = inv.Email, org.Name
			}
		} else {
			p.Token = ""
		}
		p.Error = e.Message
		renderAccept(w, apierror.Status(e.Kind), p)
	default:
		pg.fail(w, r, err)
	}
}

// organizationName names an Organization on the welcome page; an
// Organization that cannot be read is left unnamed.
func (pg *InvitationPage) organizationName(r *http.Request, id string) string {
	var name string
	_ = pg.db.View(r.Context(), func(tx *store.Tx) error {
		org, err := directory.GetOrganization(r.Context(), tx, id)
		name = org.Name
		return err
	})
	return name
}
