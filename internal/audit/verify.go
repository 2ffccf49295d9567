package audit

import (
	"context"
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

// verifyBatch bounds how many entries one read holds in memory.
const verifyBatch = 5000

// Verify walks every chain from its first entry, recomputing each hash and
// checking each link, and reports the first break of each chain: an entry
// whose content no longer matches its hash (edited), a link to a hash that
// is not its predecessor's (inserted or reordered), a gap in positions
// (deleted), or a chain head that does not match the last entry (deleted
// tail).
func Verify(ctx context.Context, db *store.DB) (Report, error) {
	var rep Report
	type head struct {
		scope string
		seq   int64
		hash  string
	}
	var heads []head
	err := db.View(ctx, func(tx *store.Tx) error {
		rows, err := tx.Query(ctx, `SELECT scope, seq, head_hash FROM audit_chains ORDER BY scope`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h head
			if err := rows.Scan(&h.scope, &h.seq, &h.hash); err != nil {
				return err
			}
			heads = append(heads, h)
		}
		return rows.Err()
	})
	if err != nil {
		return rep, err
	}
	for _, h := range heads {
		rep.Chains++
		n, brk, err := verifyChain(ctx, db, h.scope, h.seq, h.hash)
		rep.Entries += n
		if err != nil {
			return rep, err
		}
		if brk != nil {
			rep.Breaks = append(rep.Breaks, *brk)
		}
	}
	return rep, nil
}

func verifyChain(ctx context.Context, db *store.DB, scope string, headSeq int64, headHash string) (int64, *Break, error) {
	var n, seq int64
	prev := ""
	for {
		batch, err := readBatch(ctx, db, scope, seq)
		if err != nil {
			return n, nil, err
		}
		for _, r := range batch {
			n++
			switch {
			case r.row.Seq != seq+1:
				return n, &Break{Scope: scope, LogID: r.logID, Seq: r.row.Seq, Reason: fmt.Sprintf("expected position %d: entries before it were deleted", seq+1)}, nil
			case r.row.PrevHash != prev:
				return n, &Break{Scope: scope, LogID: r.logID, Seq: r.row.Seq, Reason: "does not link to the entry before it"}, nil
			case r.row.computeHash() != r.row.Hash:
				return n, &Break{Scope: scope, LogID: r.logID, Seq: r.row.Seq, Reason: "its content does not match its hash: it was modified"}, nil
			}
			seq, prev = r.row.Seq, r.row.Hash
		}
		if len(batch) < verifyBatch {
			break
		}
	}
	if seq != headSeq || prev != headHash {
		return n, &Break{Scope: scope, Seq: seq, Reason: fmt.Sprintf("ends at position %d but its head says %d: the last entries were deleted or altered", seq, headSeq)}, nil
	}
	return n, nil, nil
}

type storedRow struct {
	logID int64
	row   row
}

func readBatch(ctx context.Context, db *store.DB, scope string, afterSeq int64) ([]storedRow, error) {
	var out []storedRow
	err := db.View(ctx, func(tx *store.Tx) error {
		rows, err := tx.Query(ctx, `SELECT log_id, scope, seq, enterprise_account_id, organization_id, workspace_id, created_at,
			actor_type, actor_user_id, actor_metadata, event_type, event_metadata, target_type, target_metadata, prev_hash, hash
			FROM audit_log WHERE scope = ? AND seq > ? ORDER BY seq LIMIT ?`, scope, afterSeq, verifyBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s storedRow
			r := &s.row
			if err := rows.Scan(&s.logID, &r.Scope, &r.Seq, &r.EnterpriseAccountID, &r.OrganizationID, &r.WorkspaceID, &r.CreatedAt,
				&r.ActorType, &r.ActorUserID, &r.ActorMetadata, &r.EventType, &r.EventMetadata, &r.TargetType, &r.TargetMetadata,
				&r.PrevHash, &r.Hash); err != nil {
				return err
			}
			out = append(out, s)
		}
		return rows.Err()
	})
	return out, err
}
