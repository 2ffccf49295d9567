package audit

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/store"
)

// On PostgreSQL, RecordBatch inserts entries unlinked: without their
// position (seq) and hashes. A linker gives them both after their
// transaction has committed, many at a time, holding the chain's head
// only for its own short transaction. So the writers of one Organization
// never wait for each other's commit, and many entries share one flush.
//
// Only linked entries have a position: After, the export and Verify read
// those, in the chain's order. An entry is linked after its transaction
// has committed, so an entry of a transaction that commits late is linked
// after the entries of transactions that committed before it, and a reader
// following positions never skips one. The Admin API's audit log list
// reads entries by time and shows unlinked ones too.

// Topics of the changes the linker hears of and announces, in their
// process only (store.Tx.Nudge): the other processes' linkers and webhook
// dispatchers find the same work in their rounds every second.
const (
	// TopicUnlinked: a transaction committed entries for the linker.
	TopicUnlinked = "audit.unlinked"
	// TopicLinked: entries were linked, by the linker or (SQLite) at
	// their commit; webhooks deliver them.
	TopicLinked = "audit.linked"
)

// NextSQL is an SQL expression of the position after which the entries
// of the chain named by the column scopeColumn (qualified by its table:
// the expression reads audit_chains and audit_log) that are not
// committed yet will be linked: its head's position plus the entries
// committed unlinked. A reader that follows the chain from there gets
// every entry committed after its own statement, and those of its own
// transaction; the entries committed before are behind it. On SQLite,
// where every entry is linked, it is the head's position.
func NextSQL(d store.Dialect, scopeColumn string) string {
	head := `COALESCE((SELECT seq FROM audit_chains WHERE scope = ` + scopeColumn + `), 0)`
	if d != store.Postgres {
		return head
	}
	return `(` + head + ` + (SELECT COUNT(*) FROM audit_log WHERE scope = ` + scopeColumn + ` AND seq IS NULL))`
}

// linkBatch bounds the entries one linking transaction takes.
const linkBatch = 1000

// Link links the unlinked entries of scope's chain that were committed
// before it was called, waiting for another process that is linking the
// chain, so that a reader that calls it first sees its own writes. It does
// nothing on SQLite, where entries are linked as they are inserted.
func Link(ctx context.Context, db *store.DB, scope string) error {
	if db.Dialect() != store.Postgres {
		return nil
	}
	_, err := linkAll(ctx, db, scope, true)
	return err
}

// LinkPending links the unlinked entries of every chain, leaving a chain
// that another process is linking to it, and returns how many it linked.
func LinkPending(ctx context.Context, db *store.DB) (int, error) {
	if db.Dialect() != store.Postgres {
		return 0, nil
	}
	scopes, err := store.Read(ctx, db, func(tx *store.Tx) ([]string, error) {
		return tx.Strings(ctx, `SELECT DISTINCT scope FROM audit_log WHERE seq IS NULL`)
	})
	total := 0
	for _, scope := range scopes {
		if err != nil {
			break
		}
		var n int
		n, err = linkAll(ctx, db, scope, false)
		total += n
	}
	return total, err
}

// linkAll links scope's unlinked entries batch after batch (see
// linkChain), and returns how many it linked.
func linkAll(ctx context.Context, db *store.DB, scope string, wait bool) (int, error) {
	total := 0
	for {
		n, err := linkChain(ctx, db, scope, wait)
		total += n
		if err != nil || n < linkBatch {
			return total, err
		}
	}
}

// linkChain links up to linkBatch unlinked entries of scope's chain, in the
// order they were inserted, in one transaction that holds the chain's
// head; with wait false it links nothing when another transaction holds
// it. It returns how many it linked.
func linkChain(ctx context.Context, db *store.DB, scope string, wait bool) (int, error) {
	var n int
	err := db.Transact(ctx, func(tx *store.Tx) error {
		n = 0
		if _, err := tx.Exec(ctx, `INSERT INTO audit_chains (scope, seq, head_hash) VALUES (?, 0, '') ON CONFLICT (scope) DO NOTHING`, scope); err != nil {
			return err
		}
		lock := " FOR UPDATE"
		if !wait {
			lock += " SKIP LOCKED"
		}
		var seq int64
		var prev string
		err := tx.QueryRow(ctx, `SELECT seq, head_hash FROM audit_chains WHERE scope = ?`+lock, scope).Scan(&seq, &prev)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		var ids []int64
		var rows []*row
		err = tx.Each(ctx, `SELECT log_id, `+rowColumns+` FROM audit_log WHERE scope = ? AND seq IS NULL ORDER BY log_id LIMIT ?`,
			[]any{scope, linkBatch}, func(rs *sql.Rows) error {
				var id int64
				r := &row{}
				err := scanStored(rs, &id, r)
				ids, rows = append(ids, id), append(rows, r)
				return err
			})
		if err != nil || len(rows) == 0 {
			return err
		}
		args := make([]any, 0, 4*len(rows))
		for i, r := range rows {
			seq++
			r.link(seq, prev)
			prev = r.Hash
			args = append(args, ids[i], r.Seq, r.PrevHash, r.Hash)
		}
		one := "(?::bigint, ?::bigint, ?::text, ?::text)"
		if _, err := tx.Exec(ctx, `UPDATE audit_log AS a SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
			FROM (VALUES `+strings.TrimSuffix(strings.Repeat(one+", ", len(rows)), ", ")+`) AS v (log_id, seq, prev_hash, hash)
			WHERE a.log_id = v.log_id`, args...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_chains SET seq = ?, head_hash = ? WHERE scope = ?`, seq, prev, scope); err != nil {
			return err
		}
		tx.Nudge(store.Change{Topic: TopicLinked, OrganizationID: scopeOrganization(scope)})
		n = len(rows)
		return nil
	})
	return n, err
}

// Linker links the entries that transactions inserted unlinked, in the
// background: soon after a nudge (a commit of its process that inserted
// some), and every interval for those of other processes (whose own
// linkers are nudged) and those a process that died before linking them
// left. Nudges that arrive while it links, or within linkGap of its last
// round, are gathered into its next round.
type Linker struct {
	poll.Poller
	db  *store.DB
	log *slog.Logger
}

// NewLinker returns a linker of db's chains that logs its failures to log.
func NewLinker(db *store.DB, log *slog.Logger) *Linker {
	return &Linker{Poller: poll.New(linkGap), db: db, log: log}
}

// linkGap is the least time between two rounds of a linker woken by
// nudges: under a stream of writes a round links those of the gap
// together, rather than a transaction of its own for each write's entries
// (which cost as much CPU as the writes themselves); a webhook's delivery
// waits for it at most this much more.
const linkGap = 20 * time.Millisecond

// Run links until ctx ends.
func (l *Linker) Run(ctx context.Context, interval time.Duration) {
	l.Poller.Run(ctx, interval, func() bool {
		if _, err := LinkPending(ctx, l.db); err != nil && ctx.Err() == nil {
			l.log.Error("audit: linking entries into their chains failed", "err", err)
		}
		return false
	})
}
