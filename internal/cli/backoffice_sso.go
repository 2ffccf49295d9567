package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// The Backoffice's single sign-on connection: its answer is a nested
// object, printed as JSON.

func runSSOGet(ctx context.Context, b *backoffice, args []string) error {
	if _, err := b.parse(args); err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodGet, "/v1/backoffice/sso", nil)
	if err != nil {
		return err
	}
	return b.printJSON(raw)
}

func runSSOSet(ctx context.Context, b *backoffice, args []string) error {
	data := b.fs.String("data", "", "the connection as JSON, @FILE to read it from a file, or - from standard input")
	if _, err := b.parse(args); err != nil {
		return err
	}
	if err := b.require("--data", *data); err != nil {
		return err
	}
	body, err := readData(*data)
	if err != nil {
		return err
	}
	if !json.Valid(body) {
		fmt.Fprintln(b.fs.Output(), "--data is not JSON")
		b.fs.Usage()
		return errUsage
	}
	raw, err := b.call(ctx, http.MethodPut, "/v1/backoffice/sso", json.RawMessage(body))
	if err != nil {
		return err
	}
	return b.printJSON(raw)
}

func runSSODelete(ctx context.Context, b *backoffice, args []string) error {
	if _, err := b.parse(args); err != nil {
		return err
	}
	raw, err := b.call(ctx, http.MethodDelete, "/v1/backoffice/sso", nil)
	if err != nil {
		return err
	}
	if *b.asJSON {
		return b.printJSON(raw)
	}
	fmt.Fprintln(b.env.Stdout, "deleted the single sign-on connection")
	return nil
}
