package keys

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// TopicKeys is the change topic of Workspace API keys.
const TopicKeys = "keys"

// MaxListLimit is the most keys one list returns.
const MaxListLimit = 100

// maxKeyName bounds key names, as Mistral's document does.
const maxKeyName = 255

// fold lower-cases s and strips its accents, for searches that ignore both.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(out)
}

// hiddenKey shows the first and last four characters of a key.
func hiddenKey(secret string) string { return secret[:4] + "..." + secret[len(secret)-4:] }

// DateLayout is how expiration dates are written.
const DateLayout = "2006-01-02"

// Date returns the start (UTC) of a day written as YYYY-MM-DD.
func Date(s string) (time.Time, error) { return time.Parse(DateLayout, s) }

const keyColumns = `k.id, k.organization_id, k.workspace_id, w.name, k.user_id, k.name, k.hidden_key, k.product, k.created_by,
	k.created_at, k.expires_at, k.last_used_at, k.previous_expires_at`

func scanKey(row interface{ Scan(...any) error }) (steward.APIKey, error) {
	var k steward.APIKey
	var createdBy *string
	var created int64
	var expires, used, prev sql.NullInt64
	if err := row.Scan(&k.ID, &k.OrganizationID, &k.WorkspaceID, &k.WorkspaceName, &k.UserID, &k.Name, &k.HiddenKey, &k.Product,
		&createdBy, &created, &expires, &used, &prev); err != nil {
		return k, err
	}
	if createdBy != nil {
		k.CreatedBy = *createdBy
	}
	k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.PreviousExpiresAt = store.Time(created), store.TimePtr(expires), store.TimePtr(used), store.TimePtr(prev)
	return k, nil
}

// GetKey returns a Workspace API key of the Organization that is not
// deleted, or a KindNotFound error.
func GetKey(ctx context.Context, tx *store.Tx, orgID, id string) (steward.APIKey, error) {
	if _, err := uuid.Parse(id); err != nil {
		return steward.APIKey{}, noKey(id)
	}
	k, err := scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
		WHERE k.organization_id = ? AND k.id = ? AND k.deleted_at IS NULL`, orgID, id))
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return k, noKey(id)
	}
	return k, err
}

func noKey(id string) error {
	return steward.Errorf(steward.KindNotFound, "no API key %s in this Organization", id)
}

// ListKeys returns the Organization's keys, newest first, from offset, at
// most limit (clamped to MaxListLimit) of them; name, when given, matches
// part of a key's name or its last four characters, ignoring case and
// accents.
func ListKeys(ctx context.Context, tx *store.Tx, orgID, name string, limit, offset int) ([]steward.APIKey, error) {
	where, args := "organization_id = ? AND deleted_at IS NULL", []any{orgID}
	if name != "" {
		f := fold(name)
		pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f) + "%"
		where += ` AND (name_folded LIKE ? ESCAPE '\' OR last4_folded LIKE ? ESCAPE '\')`
		args = append(args, pattern, pattern)
	}
	// The page is chosen from api_keys alone, along the api_keys_live index
	// (newest first, in reverse), so that the rows an offset steps over are
	// index entries only; then only its keys are read and joined.
	var out []steward.APIKey
	err := tx.Each(ctx, `SELECT `+keyColumns+` FROM (SELECT id FROM api_keys WHERE `+where+`
		ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?) page
		JOIN api_keys k ON k.id = page.id JOIN workspaces w ON w.id = k.workspace_id
		ORDER BY k.created_at DESC, k.id DESC`, append(args, min(max(limit, 1), MaxListLimit), max(offset, 0)), func(rows *sql.Rows) error {
		k, err := scanKey(rows)
		if err != nil {
			return err
		}
		out = append(out, k)
		return nil
	})
	return out, err
}

// NewKey is a Workspace API key to create.
type NewKey struct {
	WorkspaceID string
	UserID      string
	Name        *string
	// Expiration is YYYY-MM-DD, or empty for none (subject to policy).
	Expiration string
	// Product is one of Products; empty means API.
	Product string
}

// Products are the products a key can be for, as Mistral's APIKeyProduct
// names them.
var Products = []string{"API", "Mistral Code", "Vibe"}

// CodingProduct reports whether a key's product is a coding product, whose
// model tokens the coding analytics count.
func CodingProduct(product string) bool { return product == "Mistral Code" || product == "Vibe" }

// CreateKey issues a Workspace API key for a member who may use the
// Workspace, applies the expiration policy (a missing or later expiration
// becomes the policy's maximum), and audits it as api_key.create. It
// returns the key and its secret, which exists nowhere else afterwards.
func CreateKey(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, in NewKey) (steward.APIKey, string, error) {
	var errs []*steward.Error
	if in.Name != nil && len([]rune(*in.Name)) > maxKeyName {
		errs = append(errs, steward.Invalid([]string{"body", "name"}, "name must be at most %d characters", maxKeyName))
	}
	var expires *time.Time
	if in.Expiration != "" {
		d, err := Date(in.Expiration)
		switch {
		case err != nil:
			errs = append(errs, steward.Invalid([]string{"body", "expiration"}, "expiration must be a date such as 2027-01-31"))
		case !d.After(tx.Now):
			errs = append(errs, steward.Invalid([]string{"body", "expiration"}, "expiration must be a date after today"))
		default:
			expires = &d
		}
	}
	product := cmp.Or(in.Product, Products[0])
	if !slices.Contains(Products, product) {
		errs = append(errs, steward.Invalid([]string{"body", "product"}, "product must be one of %s, not %q", strings.Join(Products, ", "), in.Product))
	}
	if err := steward.Invalids(errs); err != nil {
		return steward.APIKey{}, "", err
	}
	ws, err := directory.ActiveWorkspace(ctx, tx, org.ID, in.WorkspaceID)
	if err != nil {
		return steward.APIKey{}, "", err
	}
	owner, err := directory.GetMember(ctx, tx, org.ID, in.UserID)
	if err != nil {
		return steward.APIKey{}, "", err
	}
	g, err := directory.LoadGraph(ctx, tx, org.ID, in.UserID)
	if err != nil {
		return steward.APIKey{}, "", err
	}
	if !g.WorkspacePermissions(in.UserID, ws.ID).Has(steward.PermModelsUse) {
		return steward.APIKey{}, "", steward.Invalid([]string{"body", "user_id"},
			"%s cannot use Workspace %s: give them a role there that allows using the models", owner.User.Email, ws.Name)
	}
	maxDays, err := EffectiveMaxDays(ctx, tx, org.ID, ws.ID)
	if err != nil {
		return steward.APIKey{}, "", err
	}
	clamped := false
	if maxDays > 0 {
		limit := startOfDay(tx.Now).AddDate(0, 0, maxDays)
		if expires == nil || expires.After(limit) {
			expires, clamped = &limit, true
		}
	}
	secret := New(PrefixWorkspace)
	k := steward.APIKey{
		ID: uuid.NewString(), OrganizationID: org.ID, WorkspaceID: ws.ID, WorkspaceName: ws.Name, UserID: in.UserID,
		Name: in.Name, HiddenKey: hiddenKey(secret), Product: product, CreatedBy: createdBy(actor), CreatedAt: tx.Now, ExpiresAt: expires,
	}
	folded := ""
	if k.Name != nil {
		folded = fold(*k.Name)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, organization_id, workspace_id, user_id, name, name_folded, key_hash, hidden_key,
		last4_folded, product, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, org.ID, ws.ID, k.UserID, k.Name, folded, steward.HashToken(secret), k.HiddenKey, strings.ToLower(secret[len(secret)-4:]),
		k.Product, k.CreatedBy, store.Micros(tx.Now), store.MicrosPtr(expires)); err != nil {
		return steward.APIKey{}, "", err
	}
	keyChanged(tx, org.ID, k.ID)
	meta := map[string]string{"workspace_name": ws.Name, "owner": owner.User.Email, "product": k.Product}
	if expires != nil {
		meta["expiration"] = expires.Format(DateLayout)
	}
	if clamped {
		meta["expiration_clamped_to_policy_days"] = strconv.Itoa(maxDays)
	}
	err = audit.Record(ctx, tx, keyEntry(actor, org, audit.EventAPIKeyCreate, k, meta))
	return k, secret, err
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// createdBy names who created a key, as the key lists show it.
func createdBy(actor steward.Actor) string {
	switch {
	case actor.Metadata["email"] != "":
		return actor.Metadata["email"]
	case actor.Metadata["api_key_name"] != "":
		return "admin API key " + actor.Metadata["api_key_name"]
	default:
		return actor.Metadata["name"]
	}
}

// keyChanged tells the key check's caches, in this process and others,
// that key id of Organization orgID was created, rotated or deleted.
func keyChanged(tx *store.Tx, orgID, id string) {
	tx.Notify(store.Change{Topic: TopicKeys, OrganizationID: orgID, ID: id})
}

func keyEntry(actor steward.Actor, org steward.Organization, event string, k steward.APIKey, meta map[string]string) audit.Entry {
	target := map[string]string{"id": k.ID, "hidden_key": k.HiddenKey, "user_id": k.UserID}
	if k.Name != nil {
		target["name"] = *k.Name
	}
	return audit.Entry{
		EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, WorkspaceID: k.WorkspaceID,
		Actor: actor, EventType: event, EventMetadata: meta, TargetType: audit.TargetAPIKey, TargetMetadata: target,
	}
}

// DeleteKey revokes a key at once and audits it.
func DeleteKey(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string) error {
	k, err := GetKey(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE api_keys SET deleted_at = ? WHERE id = ?`, store.Micros(tx.Now), id); err != nil {
		return err
	}
	keyChanged(tx, org.ID, id)
	return audit.Record(ctx, tx, keyEntry(actor, org, audit.EventAPIKeyDelete, k, map[string]string{"workspace_name": k.WorkspaceName}))
}

// MaxGracePeriod is the longest an old secret may keep working after a
// rotation.
const MaxGracePeriod = 30 * 24 * time.Hour

// Rotated is a key after rotation, with its new secret.
type Rotated struct {
	Key    steward.APIKey
	Secret string
}

// RotateKey gives a key a new secret under the same id. The old secret
// keeps working for grace (not at all when grace is 0); a secret replaced
// by an earlier rotation stops at once. An expired key cannot be rotated
// (KindConflict, code key_expired).
func RotateKey(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string, grace time.Duration) (Rotated, error) {
	if grace < 0 || grace > MaxGracePeriod {
		return Rotated{}, steward.Invalid([]string{"body", "grace_period_seconds"}, "grace_period_seconds must be between 0 and %d", int(MaxGracePeriod.Seconds()))
	}
	k, err := GetKey(ctx, tx, org.ID, id)
	if err != nil {
		return Rotated{}, err
	}
	if k.Expired(tx.Now) {
		return Rotated{}, &steward.Error{Kind: steward.KindConflict, Code: "key_expired", Message: "this API key has expired and cannot be rotated: create a new one"}
	}
	var oldHash string
	if err := tx.QueryRow(ctx, `SELECT key_hash FROM api_keys WHERE id = ?`, id).Scan(&oldHash); err != nil {
		return Rotated{}, err
	}
	secret := New(PrefixWorkspace)
	var prevHash any
	var prevUntil *time.Time
	if grace > 0 {
		until := tx.Now.Add(grace)
		prevHash, prevUntil = oldHash, &until
	}
	if _, err := tx.Exec(ctx, `UPDATE api_keys SET key_hash = ?, hidden_key = ?, last4_folded = ?, previous_key_hash = ?, previous_expires_at = ?
		WHERE id = ?`, steward.HashToken(secret), hiddenKey(secret), strings.ToLower(secret[len(secret)-4:]), prevHash, store.MicrosPtr(prevUntil), id); err != nil {
		return Rotated{}, err
	}
	keyChanged(tx, org.ID, id)
	k.HiddenKey, k.PreviousExpiresAt = hiddenKey(secret), prevUntil
	meta := map[string]string{"grace_period_seconds": strconv.Itoa(int(grace.Seconds()))}
	if prevUntil != nil {
		meta["previous_key_expires_at"] = prevUntil.Format(time.RFC3339)
	}
	err = audit.Record(ctx, tx, keyEntry(actor, org, audit.EventAPIKeyRotate, k, meta))
	return Rotated{Key: k, Secret: secret}, err
}
