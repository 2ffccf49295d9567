package web

import (
	"net/http"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "forgot", page{Title: "Reset your password", CSRF: h.formToken(w, r), Data: signInData{}})
}

func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) {
	email := r.PostFormValue("email")
	err := checkForm(r)
	if err == nil {
		err = h.throttleReset(w, r, email)
	}
	if err == nil {
		err = h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
			if userID, err := auth.UserByEmail(r.Context(), tx, email); err == nil && userID != "" {
				if err := sso.PasswordRefused(r.Context(), tx, userID); err != nil {
					return err
				}
			}
			return auth.RequestReset(r.Context(), tx, email, h.cfg.Reset)
		})
	}
	if err != nil {
		h.formAgain(w, r, "forgot", page{Title: "Reset your password", Data: signInData{Email: email}}, err)
		return
	}
	h.render(w, r, http.StatusOK, "forgot", page{Title: "Reset your password", Data: signInData{Email: email, Sent: true}})
}

// resetPage opens a reset link: the form that sets the password of the
// account it names, or why the link cannot (it has no token, or one that
// is unknown, used or expired).
func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	p := page{Title: "Choose a new password", CSRF: h.formToken(w, r), Data: signInData{}}
	if token == "" {
		p.Error = "This link has no reset token: open the link from the email."
		h.render(w, r, http.StatusOK, "reset", p)
		return
	}
	var email string
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		var err error
		_, email, err = auth.ResetAccount(r.Context(), tx, token)
		return err
	})
	if err != nil {
		msg, status, ok := clientError(err)
		if !ok {
			h.fail(w, r, nil, err)
			return
		}
		p.Error = msg
		h.render(w, r, status, "reset", p)
		return
	}
	p.Data = signInData{Token: token, Email: email}
	h.render(w, r, http.StatusOK, "reset", p)
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) {
	token, pw := r.PostFormValue("token"), r.PostFormValue("password")
	err := checkForm(r)
	var hash string
	if err == nil {
		hash, err = auth.HashNewPassword(r.Context(), pw, r.PostFormValue("password_confirm"))
	}
	if err == nil {
		err = h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
			userID, _, err := auth.ResetAccount(r.Context(), tx, token)
			if err != nil {
				return err
			}
			if err := sso.PasswordRefused(r.Context(), tx, userID); err != nil {
				return err
			}
			_, err = auth.ResetPassword(r.Context(), tx, token, hash)
			return err
		})
	}
	if err != nil {
		h.formAgain(w, r, "reset", page{Title: "Choose a new password", Data: signInData{Token: token, Email: r.PostFormValue("email")}}, err)
		return
	}
	http.Redirect(w, r, Prefix+"/signin?done=password_set", http.StatusSeeOther)
}

func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	h.render(w, r, http.StatusOK, "password", c.page("Change your password", ""))
	return nil
}

// changePassword sets a new password for the signed-in person after
// checking the current one (throttled like a sign-in). Every session of
// the person ends, this one included.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	pw := r.PostFormValue("password")
	a, err := h.beginSignIn(w, r, c.sess.Email)
	if err == nil {
		_, err = auth.VerifyPassword(r.Context(), h.cfg.DB, c.sess.Email, r.PostFormValue("current"))
		a.end(r.Context(), err)
		if steward.IsKind(err, steward.KindUnauthenticated) {
			err = steward.Invalid([]string{"body", "current"}, "the current password is wrong")
		}
	}
	var hash string
	if err == nil {
		hash, err = auth.HashNewPassword(r.Context(), pw, r.PostFormValue("password_confirm"))
	}
	if err == nil {
		err = h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
			return auth.SetPassword(r.Context(), tx, c.p.Actor(), c.sess.UserID, hash, auth.SetByChange)
		})
	}
	if err != nil {
		msg, status, ok := clientError(err)
		if !ok {
			return err
		}
		p := c.page("Change your password", "")
		p.Error = msg
		h.render(w, r, status, "password", p)
		return nil
	}
	h.setCookie(w, r, auth.SessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"/signin?done=password_set", http.StatusSeeOther)
	return nil
}
