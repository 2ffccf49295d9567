package audit

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Export's page bounds: lines an answer holds unless asked otherwise, and
// at most.
const (
	ExportDefaultLimit = 1000
	ExportMaxLimit     = 10000
	// exportChunk is how many entries one query reads: an export holds no
	// more in memory, and no transaction open while it writes them.
	exportChunk = 1000
)

// Exported is an entry of the export, with its place in its Organization's
// chain (Entry.Seq), and Cursor, which resumes the export after it.
type Exported struct {
	Entry
	Cursor string
}

// cursorHashBytes is how much of an entry's hash a cursor carries: enough
// that a cursor cannot be made up, or moved to another entry or
// Organization, without having been given it.
const cursorHashBytes = 12

// cursorOf is the cursor after the entry at seq, whose hash is hash: its
// sequence number and the start of its hash, in base64url. A cursor is
// good in its Organization's chain only, where the hash is that entry's.
func cursorOf(seq int64, hash string) string {
	h, _ := hex.DecodeString(hash)
	b := binary.AppendUvarint(nil, uint64(seq))
	b = append(b, h[:min(len(h), cursorHashBytes)]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errBadCursor is the answer to a cursor that is not one of this
// Organization's.
func errBadCursor() error {
	return steward.Invalid([]string{"query", "cursor"}, "cursor is not a cursor of this Organization's audit log export")
}

// afterCursor returns the sequence number after which cursor resumes in
// scope; "" is the start (0). It returns a KindInvalid error naming the
// cursor if the cursor is malformed or names no entry of scope.
func afterCursor(ctx context.Context, tx *store.Tx, scope, cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	if len(cursor) > base64.RawURLEncoding.EncodedLen(binary.MaxVarintLen64+cursorHashBytes) {
		return 0, errBadCursor()
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, errBadCursor()
	}
	seq, n := binary.Uvarint(b)
	if n <= 0 || seq == 0 || seq > 1<<62 || len(b)-n != cursorHashBytes {
		return 0, errBadCursor()
	}
	var hash string
	err = tx.QueryRow(ctx, `SELECT hash FROM audit_log WHERE scope = ? AND seq = ?`, scope, int64(seq)).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errBadCursor()
	} else if err != nil {
		return 0, err
	}
	h, err := hex.DecodeString(hash)
	if err != nil || len(h) < cursorHashBytes || subtle.ConstantTimeCompare(h[:cursorHashBytes], b[n:]) != 1 {
		return 0, errBadCursor()
	}
	return int64(seq), nil
}

// ExportPage is where one answer of the export starts and ends.
type ExportPage struct {
	orgID       string
	after, last int64
	// Next resumes the export after this page: the cursor of its last
	// entry, or the cursor asked for when the page is empty.
	Next string
}

// StartExport fixes the page of orgID's entries after cursor ("" for the
// start), at most limit of them (1 to ExportMaxLimit): the entries of the
// Organization's chain are numbered without gaps in the order they were
// committed, so the page is every entry numbered from after the cursor up
// to the last committed one, or limit entries. It returns a KindInvalid
// error naming the cursor if the cursor is not one of orgID's.
func (s *Service) StartExport(ctx context.Context, orgID, cursor string, limit int) (ExportPage, error) {
	limit = min(max(limit, 1), ExportMaxLimit)
	scope := OrgScope(orgID)
	if err := Link(ctx, s.db, scope); err != nil {
		return ExportPage{}, err
	}
	return store.Read(ctx, s.db, func(tx *store.Tx) (ExportPage, error) {
		after, err := afterCursor(ctx, tx, scope, cursor)
		if err != nil {
			return ExportPage{}, err
		}
		p := ExportPage{orgID: orgID, after: after, last: after, Next: cursor}
		var hash string
		err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log WHERE scope = ? AND seq > ? AND seq <= ? ORDER BY seq DESC LIMIT 1`,
			scope, after, after+int64(limit)).Scan(&p.last, &hash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return p, nil
		case err != nil:
			return ExportPage{}, err
		}
		p.Next = cursorOf(p.last, hash)
		return p, nil
	})
}

// Export calls fn with each entry of the page, in order, reading them a
// chunk at a time, each chunk in a transaction of its own that is closed
// before fn sees its entries. It stops at fn's first error.
func (s *Service) Export(ctx context.Context, p ExportPage, fn func(Exported) error) error {
	scope := OrgScope(p.orgID)
	for from := p.after; from < p.last; {
		to := min(from+exportChunk, p.last)
		chunk, err := store.Read(ctx, s.db, func(tx *store.Tx) ([]Exported, error) {
			return exportRange(ctx, tx, scope, from, to)
		})
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			return errors.New("audit export: committed entries are missing from " + scope)
		}
		for _, e := range chunk {
			if err := fn(e); err != nil {
				return err
			}
		}
		from = chunk[len(chunk)-1].Seq
	}
	return nil
}

// exportRange reads the entries of scope numbered after from up to to.
func exportRange(ctx context.Context, tx *store.Tx, scope string, from, to int64) ([]Exported, error) {
	var out []Exported
	err := tx.Each(ctx, `SELECT seq, hash, `+entryColumns+` FROM audit_log WHERE scope = ? AND seq > ? AND seq <= ? ORDER BY seq`,
		[]any{scope, from, to}, func(rows *sql.Rows) error {
			var x Exported
			var hash string
			if err := scanEntry(rows, &x.Entry, &x.Entry.Seq, &hash); err != nil {
				return err
			}
			x.Cursor = cursorOf(x.Seq, hash)
			out = append(out, x)
			return nil
		})
	return out, err
}
