package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stewardhq/steward/internal/store"
)

// Break is a place where a chain does not hold.
type Break struct {
	Scope  string
	LogID  int64 // 0 when the break is not at one entry (a missing tail)
	Seq    int64
	Reason string
}

func (b Break) String() string {
	if b.LogID == 0 {
		return fmt.Sprintf("chain %s: %s", b.Scope, b.Reason)
	}
	return fmt.Sprintf("chain %s: entry log_id=%d (position %d): %s", b.Scope, b.LogID, b.Seq, b.Reason)
}

// Report is the outcome of Verify.
type Report struct {
	Chains  int
	Entries int64
	Breaks  []Break
}

// Verify walks every chain from its first entry, recomputing each hash and
// checking each link, and reports the first break of each chain: an entry
// whose content no longer matches its hash (edited), a link to a hash that
// is not its predecessor's (inserted or reordered), a gap in positions
// (deleted), or a chain head that does not match the last entry (deleted
// tail). It reads the heads and the entries in one snapshot (store.DB.View),
// so that entries that writers add meanwhile, with their heads, are not seen
// half: it can run beside a busy server. It first links the entries that
// are waiting for the linker (see Link); those inserted after that are
// left out, as the head does not cover them yet.
func Verify(ctx context.Context, db *store.DB) (Report, error) {
	var rep Report
	if _, err := LinkPending(ctx, db); err != nil {
		return rep, err
	}
	err := db.View(ctx, func(tx *store.Tx) error {
		var heads []head
		err := tx.Each(ctx, `SELECT scope, seq, head_hash FROM audit_chains ORDER BY scope`, nil, func(rows *sql.Rows) error {
			var h head
			if err := rows.Scan(&h.scope, &h.seq, &h.hash); err != nil {
				return err
			}
			heads = append(heads, h)
			return nil
		})
		if err != nil {
			return err
		}
		for _, h := range heads {
			rep.Chains++
			n, brk, err := verifyChain(ctx, tx, h)
			rep.Entries += n
			if err != nil {
				return err
			}
			if brk != nil {
				rep.Breaks = append(rep.Breaks, *brk)
			}
		}
		return nil
	})
	return rep, err
}

// head is a chain's head: its last position and hash.
type head struct {
	scope string
	seq   int64
	hash  string
}

// errBroken stops reading a chain at its first break.
var errBroken = errors.New("audit: chain broken")

// verifyChain reads one chain's entries in order, one at a time, and
// returns how many it read and its first break.
func verifyChain(ctx context.Context, tx *store.Tx, h head) (int64, *Break, error) {
	var n, seq int64
	prev := ""
	var brk *Break
	err := tx.Each(ctx, `SELECT log_id, `+rowColumns+` FROM audit_log WHERE scope = ? AND seq IS NOT NULL ORDER BY seq`,
		[]any{h.scope}, func(rows *sql.Rows) error {
			var logID int64
			var r row
			if err := scanStored(rows, &logID, &r); err != nil {
				return err
			}
			n++
			switch {
			case r.Seq != seq+1:
				brk = &Break{Scope: h.scope, LogID: logID, Seq: r.Seq, Reason: fmt.Sprintf("expected position %d: entries before it were deleted", seq+1)}
			case r.PrevHash != prev:
				brk = &Break{Scope: h.scope, LogID: logID, Seq: r.Seq, Reason: "does not link to the entry before it"}
			case r.computeHash() != r.Hash:
				brk = &Break{Scope: h.scope, LogID: logID, Seq: r.Seq, Reason: "its content does not match its hash: it was modified"}
			default:
				seq, prev = r.Seq, r.Hash
				return nil
			}
			return errBroken
		})
	if brk != nil {
		return n, brk, nil
	}
	if err != nil {
		return n, nil, err
	}
	if seq != h.seq || prev != h.hash {
		return n, &Break{Scope: h.scope, Seq: seq, Reason: fmt.Sprintf("ends at position %d but its head says %d: the last entries were deleted or altered", seq, h.seq)}, nil
	}
	return n, nil, nil
}
