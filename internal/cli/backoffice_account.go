package cli

import (
	"context"
	"net/http"
)

// enterpriseAccount is the Enterprise Account of the Backoffice API.
type enterpriseAccount struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

func runAccountGet(ctx context.Context, b *backoffice, args []string) error {
	if _, err := b.parse(args); err != nil {
		return err
	}
	return b.printAccount(b.call(ctx, http.MethodGet, "/v1/backoffice/enterprise-account", nil))
}

func runAccountRename(ctx context.Context, b *backoffice, args []string) error {
	name := b.fs.String("name", "", "new name of the Enterprise Account")
	if _, err := b.parse(args); err != nil {
		return err
	}
	if err := b.require("--name", *name); err != nil {
		return err
	}
	return b.printAccount(b.call(ctx, http.MethodPatch, "/v1/backoffice/enterprise-account", map[string]string{"name": *name}))
}

func (b *backoffice) printAccount(raw []byte, err error) error {
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	var a enterpriseAccount
	if err := b.decode(raw, &a); err != nil {
		return err
	}
	return b.table([]string{"ID", "NAME", "CREATED"}, [][]string{{clean(a.ID), clean(a.Name), when(a.CreatedAt, "-")}})
}
