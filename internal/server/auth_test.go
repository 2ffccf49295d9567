package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/store"
)

func TestAdminAuthentication(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		admin := h.boot.AdminKeySecret
		for _, tc := range []struct {
			name    string
			headers []string
			status  int
			typ     string
			message string
		}{
			{"x-api-key", []string{"x-api-key", admin}, 200, "", ""},
			{"bearer", []string{"Authorization", "Bearer " + admin}, 200, "", ""},
			{"bearer lower case", []string{"Authorization", "bearer " + admin}, 200, "", ""},
			{"no credential", nil, 401, "authentication_error", "missing API key"},
			{"malformed key", []string{"x-api-key", "not-a-key"}, 401, "authentication_error", "invalid API key"},
			{"bad checksum", []string{"x-api-key", admin[:len(admin)-1] + flipChar(admin[len(admin)-1])}, 401, "authentication_error", "invalid API key"},
			{"unknown well-formed key", []string{"x-api-key", keys.New(keys.PrefixAdmin)}, 401, "authentication_error", "invalid API key"},
			{"basic auth", []string{"Authorization", "Basic YTpi"}, 401, "authentication_error", "Bearer"},
			{"backoffice key", []string{"x-api-key", h.boot.BackofficeSecret}, 403, "permission_error", "requires an Admin API key"},
			{"backoffice key as bearer", []string{"Authorization", "Bearer " + h.boot.BackofficeSecret}, 403, "permission_error", "requires an Admin API key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, prefix := range []string{"/v1/admin", "/api/admin"} {
					r := h.do("GET", prefix+"/audit-logs", nil, tc.headers...)
					if tc.status == 200 {
						if r.status != 200 {
							t.Fatalf("%s: status %d, body %s", prefix, r.status, r.body)
						}
						continue
					}
					e := expectError(t, r, tc.status, tc.typ)
					if !strings.Contains(e.Message, tc.message) {
						t.Errorf("%s: message %q does not say %q", prefix, e.Message, tc.message)
					}
					if strings.Contains(string(r.body), admin) || strings.Contains(string(r.body), h.boot.BackofficeSecret) {
						t.Errorf("error body echoes a secret: %s", r.body)
					}
				}
			})
		}
	})
}

func flipChar(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestRevokedAndExpiredAdminKeysAreRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		// setColumn changes the key behind the product's back, and
		// publishes the change as a revocation does, so that the
		// authenticator's memory of the key follows.
		setColumn := func(column string, micros int64) {
			t.Helper()
			err := h.db.Transact(ctx, func(tx *store.Tx) error {
				tx.Notify(store.Change{Topic: keys.TopicCredentials, OrganizationID: h.boot.Organization.ID, ID: h.boot.AdminKey.ID})
				_, err := tx.Exec(ctx, `UPDATE admin_api_keys SET `+column+` = ? WHERE id = ?`, micros, h.boot.AdminKey.ID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		setColumn("expires_at", store.Micros(h.db.Now())-1)
		e := expectError(t, h.get("/v1/admin/audit-logs", h.boot.AdminKeySecret), http.StatusUnauthorized, "authentication_error")
		if !strings.Contains(e.Message, "expired") {
			t.Errorf("expired key message %q does not say it expired", e.Message)
		}
		setColumn("expires_at", store.Micros(h.db.Now())+3600e6)
		if r := h.get("/v1/admin/audit-logs", h.boot.AdminKeySecret); r.status != 200 {
			t.Fatalf("key with future expiry: status %d", r.status)
		}
		setColumn("revoked_at", store.Micros(h.db.Now()))
		e = expectError(t, h.get("/v1/admin/audit-logs", h.boot.AdminKeySecret), http.StatusUnauthorized, "authentication_error")
		if !strings.Contains(e.Message, "revoked") {
			t.Errorf("revoked key message %q does not say it was revoked", e.Message)
		}
	})
}

func TestLastUsedIsRecordedWithoutAWritePerRequest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		lastUsed := func() *int64 {
			var v *int64
			err := h.db.View(ctx, func(tx *store.Tx) error {
				return tx.QueryRow(ctx, `SELECT last_used_at FROM admin_api_keys WHERE id = ?`, h.boot.AdminKey.ID).Scan(&v)
			})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		for range 3 {
			h.get("/v1/admin/audit-logs", h.boot.AdminKeySecret)
		}
		if v := lastUsed(); v != nil {
			t.Fatalf("last_used_at written before a flush: %d", *v)
		}
		if err := h.lastUsed.Flush(ctx, h.db); err != nil {
			t.Fatal(err)
		}
		if v := lastUsed(); v == nil {
			t.Fatal("last_used_at not written by the flush")
		}
	})
}
