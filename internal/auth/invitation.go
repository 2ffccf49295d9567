package auth

import (
	"context"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// AcceptInvitation accepts the invitation of token and, in the same
// transaction, sets the new member's password to hash (made by
// HashNewPassword) with its audit entry. An empty hash keeps the password
// of someone who already has one (from another Organization); anyone else
// is KindInvalid on body.password. Its other errors are
// directory.AcceptInvitation's.
func AcceptInvitation(ctx context.Context, db *store.DB, token, firstName, lastName, hash string) (directory.Accepted, error) {
	return store.Write(ctx, db, func(tx *store.Tx) (directory.Accepted, error) {
		res, err := directory.AcceptInvitation(ctx, tx, token, firstName, lastName)
		if err != nil {
			return res, err
		}
		if hash == "" {
			has, err := HasPassword(ctx, tx, res.User.ID)
			if err == nil && !has {
				err = steward.Invalid([]string{"body", "password"}, "choose a password: you will sign in with it")
			}
			return res, err
		}
		actor := steward.Actor{Type: steward.ActorHuman, UserID: res.User.ID, Metadata: map[string]string{"email": res.User.Email}}
		return res, SetPassword(ctx, tx, actor, res.User.ID, hash, SetByInvitation)
	})
}
