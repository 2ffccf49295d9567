package scim

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/store"
)

// The operations on SCIM Users and Groups, each one transaction in which
// the directory's changes write their audit entries. The handlers in
// users.go and groups.go decode a request, call one of these and encode
// the answer. Errors are the directory's, or *Error in SCIM's format; a
// resource that does not exist in the caller's Organization is a 404.

// findUser returns one provisioned user.
func (s *Service) findUser(ctx context.Context, c *call, id string) (user, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (user, error) { return loadUser(ctx, tx, c.org.ID, id) })
}

// findUsers returns the page of users that q selects and their total.
func (s *Service) findUsers(ctx context.Context, c *call, q listQuery) (int, []user, error) {
	p, err := store.Read(ctx, s.db, func(tx *store.Tx) (listed[user], error) {
		total, users, err := readPage(ctx, tx, q, userSelect, userFrom, "u.created_at, u.user_id", scanUser)
		if err != nil {
			return listed[user]{}, err
		}
		return listed[user]{total, users}, fillUserGroups(ctx, tx, c.org.ID, users)
	})
	return p.total, p.items, err
}

// addUser provisions u and returns it as saved.
func (s *Service) addUser(ctx context.Context, c *call, u user) (user, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (user, error) { return provisionUser(ctx, tx, c.actor, c.org, u) })
}

// changeUser loads a user, lets change alter it, saves the result and
// returns it as saved.
func (s *Service) changeUser(ctx context.Context, c *call, id string, change func(u *user) error) (user, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (user, error) {
		before, err := loadUser(ctx, tx, c.org.ID, id)
		if err != nil {
			return user{}, err
		}
		after := before
		if err := change(&after); err != nil {
			return user{}, err
		}
		if err := checkUser(&after); err != nil {
			return user{}, err
		}
		if err := updateUser(ctx, tx, c.actor, c.org, before, after); err != nil {
			return user{}, err
		}
		return loadUser(ctx, tx, c.org.ID, after.ID)
	})
}

// removeUser deprovisions a user.
func (s *Service) removeUser(ctx context.Context, c *call, id string) error {
	_, err := store.Write(ctx, s.db, func(tx *store.Tx) (struct{}, error) {
		u, err := loadUser(ctx, tx, c.org.ID, id)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, deprovisionUser(ctx, tx, c.actor, c.org, u.ID)
	})
	return err
}

// namedGroup is a group with the display names of its members, by user id
// (empty when its members are left out).
type namedGroup struct {
	group
	names map[string]string
}

// findGroup returns one provisioned group with its members' names.
func (s *Service) findGroup(ctx context.Context, c *call, id string) (namedGroup, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (namedGroup, error) {
		names := map[string]string{}
		g, err := loadGroup(ctx, tx, c.org.ID, id, names)
		return namedGroup{g, names}, err
	})
}

// findGroups returns the page of groups that q selects, their total and,
// withMembers, their members and their names.
func (s *Service) findGroups(ctx context.Context, c *call, q listQuery, withMembers bool) (int, []group, map[string]string, error) {
	names := map[string]string{}
	p, err := store.Read(ctx, s.db, func(tx *store.Tx) (listed[group], error) {
		total, groups, err := readPage(ctx, tx, q, groupSelect, groupFrom, "g.created_at, g.group_id", scanGroup)
		if err != nil || !withMembers {
			return listed[group]{total, groups}, err
		}
		return listed[group]{total, groups}, fillMembers(ctx, tx, c.org.ID, groups, names)
	})
	return p.total, p.items, names, err
}

// addGroup provisions g under a new id and returns it as saved.
func (s *Service) addGroup(ctx context.Context, c *call, g group) (namedGroup, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (namedGroup, error) {
		g.ID = uuid.NewString()
		if err := provisionGroup(ctx, tx, c.actor, c.org, g); err != nil {
			return namedGroup{}, err
		}
		names := map[string]string{}
		if len(g.Members) == 0 {
			// The request holds the group as saved.
			g.Created, g.Modified = tx.Now, tx.Now
			return namedGroup{g, names}, nil
		}
		g, err := loadGroup(ctx, tx, c.org.ID, g.ID, names)
		return namedGroup{g, names}, err
	})
}

// changeGroup loads a group, lets change alter it, saves the result and
// returns it as saved; without withMembers, the members' names are not
// loaded, since the answer leaves them out.
func (s *Service) changeGroup(ctx context.Context, c *call, id string, withMembers bool, change func(g *group) error) (namedGroup, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (namedGroup, error) {
		before, err := loadGroup(ctx, tx, c.org.ID, id, nil)
		if err != nil {
			return namedGroup{}, err
		}
		after := before
		after.Members = slices.Clone(before.Members)
		if err := change(&after); err != nil {
			return namedGroup{}, err
		}
		if err := checkGroup(&after); err != nil {
			return namedGroup{}, err
		}
		if err := updateGroup(ctx, tx, c.actor, c.org, before, after); err != nil {
			return namedGroup{}, err
		}
		names := map[string]string{}
		if !withMembers {
			// The request holds the group as saved but its members' names,
			// which the response leaves out.
			after.Modified = tx.Now
			return namedGroup{after, names}, nil
		}
		after, err = loadGroup(ctx, tx, c.org.ID, after.ID, names)
		return namedGroup{after, names}, err
	})
}

// removeGroup deprovisions a group.
func (s *Service) removeGroup(ctx context.Context, c *call, id string) error {
	_, err := store.Write(ctx, s.db, func(tx *store.Tx) (struct{}, error) {
		g, err := loadGroup(ctx, tx, c.org.ID, id, nil)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, deprovisionGroup(ctx, tx, c.actor, c.org, g.ID)
	})
	return err
}

// listed is a page of a list and the list's total.
type listed[T any] struct {
	total int
	items []T
}
