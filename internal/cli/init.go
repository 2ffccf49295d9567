package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/config"
)

// initOutput is what steward init --json prints.
type initOutput struct {
	EnterpriseAccountID string `json:"enterprise_account_id"`
	OrganizationID      string `json:"organization_id"`
	AdminUserID         string `json:"admin_user_id"`
	AdminAPIKey         string `json:"admin_api_key"`
	BackofficeKey       string `json:"backoffice_key"`
}

func runInit(ctx context.Context, env Env, args []string) error {
	fs := flagSet(env, "init", "[--json] [--org-name NAME] [--admin-email EMAIL] [--data-dir DIR | --database-url URL]")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	load := config.Flags(fs, env.Getenv, "data-dir", "database-url", "org-name", "admin-email", "log-level", "log-format")
	cfg, err := parse(env, fs, args, load)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := bootstrap.Run(ctx, db, bootstrap.Options{OrgName: cfg.OrgName, AdminEmail: cfg.AdminEmail, Actor: "steward init"})
	if errors.Is(err, bootstrap.ErrInitialised) {
		return errors.New(bootstrap.ErrInitialised.Message)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(initOutput{
			EnterpriseAccountID: r.EnterpriseAccount.ID,
			OrganizationID:      r.Organization.ID,
			AdminUserID:         r.Admin.ID,
			AdminAPIKey:         r.AdminKeySecret,
			BackofficeKey:       r.BackofficeSecret,
		})
	}
	fmt.Fprintf(env.Stdout, "Enterprise Account  %s\nOrganization        %s\nAdmin user          %s (%s)\nAdmin API key       %s\nBackoffice key      %s\n\nThe keys are shown once and stored only as hashes.\n",
		r.EnterpriseAccount.ID, r.Organization.ID, r.Admin.ID, r.Admin.Email, r.AdminKeySecret, r.BackofficeSecret)
	return nil
}
