package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/logbuf"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// clock is a settable time source for db.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var epoch = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

func useClock(db *store.DB) *clock {
	c := &clock{t: epoch}
	db.Now = c.Now
	return c
}

func enqueue(t *testing.T, db *store.DB, m Message) string {
	t.Helper()
	var id string
	err := db.Transact(context.Background(), func(tx *store.Tx) error {
		var err error
		id, err = Enqueue(context.Background(), tx, m)
		return err
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return id
}

type outboxRow struct {
	Kind, Recipient, Subject, Body, Language string
	CreatedAt, NextAttemptAt                 int64
	Attempts                                 int
	LastError                                sql.NullString
	ClaimedUntil, SentAt, FailedAt           sql.NullInt64
}

func readRow(t *testing.T, db *store.DB, id string) outboxRow {
	t.Helper()
	var r outboxRow
	err := db.View(context.Background(), func(tx *store.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT kind, recipient, subject, body, language, created_at, next_attempt_at,
			attempts, last_error, claimed_until, sent_at, failed_at FROM outbox WHERE id = ?`, id).
			Scan(&r.Kind, &r.Recipient, &r.Subject, &r.Body, &r.Language, &r.CreatedAt, &r.NextAttemptAt,
				&r.Attempts, &r.LastError, &r.ClaimedUntil, &r.SentAt, &r.FailedAt)
	})
	if err != nil {
		t.Fatalf("read outbox row %s: %v", id, err)
	}
	return r
}

func countRows(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	err := db.View(context.Background(), func(tx *store.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT COUNT(*) FROM outbox`).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newSender(t *testing.T, db *store.DB, cfg Config) *Sender {
	t.Helper()
	s, err := New(db, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// redirect makes s dial the fake server whatever host its URL names.
func redirect(s *Sender, f *fakeSMTP) {
	s.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, f.Addr)
	}
}

func runOnce(t *testing.T, s *Sender) int {
	t.Helper()
	n, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

// parsed is a received message with its subject and body decoded.
type parsed struct {
	Header  mail.Header
	Subject string
	Body    string
}

func parseMail(t *testing.T, data string) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject %q: %v", msg.Header.Get("Subject"), err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decode quoted-printable body: %v", err)
	}
	return parsed{Header: msg.Header, Subject: subject, Body: string(body)}
}

// onWire is a body as the recipient reads it: ending with a line break.
func onWire(body string) string {
	if strings.HasSuffix(body, "\n") {
		return body
	}
	return body + "\n"
}

// logRecords decodes JSON log output.
func logRecords(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func jsonLogger(buf io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const link = "https://steward.example/invitations/accept?token=tok_9f8e7d&org=a=b"

func TestDeliverBySMTP(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clk := useClock(db)
		f := newFakeSMTP(t, nil)
		s := newSender(t, db, Config{SMTPURL: "smtp://" + f.Addr, From: "Stéward Bot <steward@mail.example>", Log: jsonLogger(io.Discard)})

		longWord := strings.Repeat("x", 300)
		body := "Bonjour Zoë,\n\n" +
			".a line that starts with a dot\n" +
			"Accept: " + link + "\n" +
			strings.Repeat("long line ", 40) + "\n" +
			"日本語のテキスト — fin.\n"
		msgs := []Message{
			{Kind: "invitation", To: "ann@example.com", Subject: "You are invited", Body: body, Language: "fr"},
			{Kind: "invitation", To: "<bob@example.com>", Subject: "Invitation à rejoindre « Zoë & Cie » — 日本", Body: "short"},
			{Kind: "invitation", To: "carl@example.com", Subject: "Plain but long " + longWord + " subject", Body: "x"},
		}
		var ids []string
		for _, m := range msgs {
			ids = append(ids, enqueue(t, db, m))
		}
		if n := runOnce(t, s); n != len(msgs) {
			t.Fatalf("RunOnce sent %d, want %d", n, len(msgs))
		}
		got := f.Mails()
		if len(got) != len(msgs) {
			t.Fatalf("server received %d messages, want %d", len(got), len(msgs))
		}
		wantTo := []string{"ann@example.com", "bob@example.com", "carl@example.com"}
		for i, r := range got {
			// Delivered oldest first; all are due at the same time, so
			// match by Message-ID rather than rely on order.
			p := parseMail(t, r.Data)
			j := slices.IndexFunc(ids, func(id string) bool { return p.Header.Get("Message-ID") == "<"+id+"@mail.example>" })
			if j < 0 {
				t.Fatalf("message %d has Message-ID %q, none of %v", i, p.Header.Get("Message-ID"), ids)
			}
			m := msgs[j]
			if !strings.HasPrefix(r.From, "FROM:<steward@mail.example>") {
				t.Errorf("MAIL %q, want FROM:<steward@mail.example>", r.From)
			}
			if r.To != "TO:<"+wantTo[j]+">" {
				t.Errorf("RCPT %q, want TO:<%s>", r.To, wantTo[j])
			}
			if to := p.Header.Get("To"); to != "<"+wantTo[j]+">" {
				t.Errorf("To: %q, want <%s>", to, wantTo[j])
			}
			from, err := p.Header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Name != "Stéward Bot" || from[0].Address != "steward@mail.example" {
				t.Errorf("From: %q parses as %v, %v", p.Header.Get("From"), from, err)
			}
			if p.Subject != m.Subject {
				t.Errorf("subject %q, want %q (raw %q)", p.Subject, m.Subject, p.Header.Get("Subject"))
			}
			if p.Body != onWire(m.Body) {
				t.Errorf("body %q, want %q", p.Body, onWire(m.Body))
			}
			wantLang := m.Language
			if wantLang == "" {
				wantLang = "en"
			}
			for k, v := range map[string]string{
				"MIME-Version":              "1.0",
				"Content-Type":              "text/plain; charset=utf-8",
				"Content-Transfer-Encoding": "quoted-printable",
				"Content-Language":          wantLang,
				"Auto-Submitted":            "auto-generated",
			} {
				if got := p.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if d, err := p.Header.Date(); err != nil || !d.Equal(epoch) {
				t.Errorf("Date: %q parses as %v, %v; want %v", p.Header.Get("Date"), d, err, epoch)
			}
			for _, line := range strings.Split(r.Data, "\n") {
				if len(line) > 78 {
					t.Errorf("line of %d characters: %q", len(line), line)
				}
			}
			row := readRow(t, db, ids[j])
			if !row.SentAt.Valid || row.SentAt.Int64 != store.Micros(clk.Now()) {
				t.Errorf("sent_at = %v, want %d", row.SentAt, store.Micros(clk.Now()))
			}
			if row.Body != "" {
				t.Errorf("body not redacted after delivery: %q", row.Body)
			}
			if row.ClaimedUntil.Valid || row.Attempts != 0 || row.FailedAt.Valid {
				t.Errorf("row after delivery = %+v", row)
			}
		}
		clk.Add(time.Hour)
		if n := runOnce(t, s); n != 0 || len(f.Mails()) != len(msgs) {
			t.Errorf("second RunOnce sent %d (server has %d): a sent message was sent again", n, len(f.Mails()))
		}
	})
}

func TestLogModeLogsTheBody(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		useClock(db)
		var buf logbuf.Buffer
		s := newSender(t, db, Config{Log: jsonLogger(&buf)})
		body := "Join us:\n" + link + "\n"
		id := enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Join Acme", Body: body})
		if n := runOnce(t, s); n != 1 {
			t.Fatalf("RunOnce sent %d, want 1", n)
		}
		found := false
		for _, r := range logRecords(t, buf.String()) {
			if r["body"] == body {
				found = true
				if r["level"] != "INFO" || r["to"] != "ann@example.com" || r["subject"] != "Join Acme" || r["id"] != id {
					t.Errorf("log record %v: want INFO with to, subject and id", r)
				}
			}
		}
		if !found {
			t.Fatalf("no log record carries the body with its link; log:\n%s", buf.String())
		}
		row := readRow(t, db, id)
		if !row.SentAt.Valid || row.Body != "" {
			t.Errorf("after logging: sent_at %v, body %q; want sent and redacted", row.SentAt, row.Body)
		}
	})
}

func TestRefusedRecipientIsRetriedThenGivenUp(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clk := useClock(db)
		f := newFakeSMTP(t, nil)
		f.RcptReply = "550 5.1.1 no such user"
		var buf logbuf.Buffer
		s := newSender(t, db, Config{SMTPURL: "smtp://" + f.Addr, From: "steward@mail.example", MaxAttempts: 3, Log: jsonLogger(&buf)})
		id := enqueue(t, db, Message{Kind: "invitation", To: "ghost@example.com", Subject: "Hi", Body: link})

		if n := runOnce(t, s); n != 0 {
			t.Fatalf("RunOnce sent %d, want 0", n)
		}
		row := readRow(t, db, id)
		if row.Attempts != 1 || !strings.Contains(row.LastError.String, "550") || row.SentAt.Valid || row.FailedAt.Valid || row.ClaimedUntil.Valid {
			t.Fatalf("after one refusal: %+v", row)
		}
		if want := store.Micros(clk.Now().Add(30 * time.Second)); row.NextAttemptAt != want {
			t.Errorf("next_attempt_at = %d, want now+30s = %d", row.NextAttemptAt, want)
		}
		if row.Body != link {
			t.Errorf("body %q changed before the message settled", row.Body)
		}

		runOnce(t, s)
		clk.Add(29 * time.Second)
		runOnce(t, s)
		if c := f.Connections(); c != 1 {
			t.Fatalf("%d connections before the retry was due, want 1", c)
		}
		clk.Add(time.Second)
		runOnce(t, s)
		row = readRow(t, db, id)
		if c := f.Connections(); c != 2 || row.Attempts != 2 {
			t.Fatalf("when due: %d connections, attempts %d; want 2 and 2", c, row.Attempts)
		}
		if want := store.Micros(clk.Now().Add(time.Minute)); row.NextAttemptAt != want {
			t.Errorf("second backoff: next_attempt_at = %d, want now+1m = %d", row.NextAttemptAt, want)
		}

		clk.Add(time.Minute)
		runOnce(t, s)
		row = readRow(t, db, id)
		if row.Attempts != 3 || !row.FailedAt.Valid || row.FailedAt.Int64 != store.Micros(clk.Now()) || row.SentAt.Valid {
			t.Fatalf("after MaxAttempts: %+v", row)
		}
		if row.Body != "" {
			t.Errorf("body not redacted after giving up: %q", row.Body)
		}
		gaveUp := false
		for _, r := range logRecords(t, buf.String()) {
			if r["level"] == "ERROR" && r["id"] == id && strings.Contains(fmt.Sprint(r["err"]), "550") {
				gaveUp = true
			}
		}
		if !gaveUp {
			t.Errorf("giving up was not logged at Error level:\n%s", buf.String())
		}
		clk.Add(24 * time.Hour)
		runOnce(t, s)
		if c := f.Connections(); c != 3 || len(f.Mails()) != 0 {
			t.Errorf("after giving up: %d connections, %d mails; want 3 and 0", c, len(f.Mails()))
		}
	})
}

func TestUnreachableServerIsRetried(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clk := useClock(db)
		addr := closedPort(t)
		s := newSender(t, db, Config{SMTPURL: "smtp://" + addr, From: "steward@mail.example", Log: jsonLogger(io.Discard)})
		id := enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: "body"})
		if n := runOnce(t, s); n != 0 {
			t.Fatalf("RunOnce sent %d to a closed port", n)
		}
		row := readRow(t, db, id)
		if row.Attempts != 1 || !strings.Contains(row.LastError.String, "connect to "+addr) || row.SentAt.Valid {
			t.Fatalf("after a refused connection: %+v", row)
		}
		if row.NextAttemptAt <= store.Micros(clk.Now()) {
			t.Errorf("next_attempt_at %d is not in the future", row.NextAttemptAt)
		}
	})
}

func TestRolledBackTransactionLeavesNoMessage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		useClock(db)
		f := newFakeSMTP(t, nil)
		s := newSender(t, db, Config{SMTPURL: "smtp://" + f.Addr, From: "steward@mail.example", Log: jsonLogger(io.Discard)})
		boom := errors.New("the invitation could not be created")
		err := db.Transact(context.Background(), func(tx *store.Tx) error {
			if _, err := Enqueue(context.Background(), tx, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: link}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Transact = %v, want %v", err, boom)
		}
		if n := countRows(t, db); n != 0 {
			t.Fatalf("%d outbox rows after rollback, want 0", n)
		}
		if n := runOnce(t, s); n != 0 || f.Connections() != 0 {
			t.Errorf("RunOnce sent %d over %d connections after rollback", n, f.Connections())
		}
	})
}

func TestConcurrentSendersDeliverEachMessageOnce(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			db1, cfg := e.Open(t)
			// A second handle on the same database stands for a second
			// process.
			db2 := storetest.OpenAgain(t, cfg)
			f := newFakeSMTP(t, nil)
			f.DataDelay = 2 * time.Millisecond
			const n = 35
			want := map[string]string{}
			for i := range n {
				to := fmt.Sprintf("user%d@example.com", i)
				want[enqueue(t, db1, Message{Kind: "invitation", To: to, Subject: "Hi " + to, Body: "for " + to})] = to
			}
			senders := []*Sender{
				newSender(t, db1, Config{SMTPURL: "smtp://" + f.Addr, From: "steward@mail.example", Log: jsonLogger(io.Discard)}),
				newSender(t, db2, Config{SMTPURL: "smtp://" + f.Addr, From: "steward@mail.example", Log: jsonLogger(io.Discard)}),
			}
			var wg sync.WaitGroup
			sent := make([]int, len(senders))
			errs := make([]error, len(senders))
			for i, s := range senders {
				wg.Go(func() {
					for {
						n, claimed, err := s.runBatch(context.Background())
						sent[i] += n
						if err != nil {
							errs[i] = err
							return
						}
						if claimed == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			t.Logf("senders delivered %v", sent)
			if sent[0]+sent[1] != n {
				t.Errorf("senders report %d deliveries, want %d", sent[0]+sent[1], n)
			}
			seen := map[string]int{}
			for _, r := range f.Mails() {
				p := parseMail(t, r.Data)
				id := strings.TrimSuffix(strings.TrimPrefix(p.Header.Get("Message-ID"), "<"), "@mail.example>")
				seen[id]++
				if to, ok := want[id]; !ok || r.To != "TO:<"+to+">" || p.Body != "for "+to+"\n" {
					t.Errorf("message %s went to %q with body %q", id, r.To, p.Body)
				}
			}
			for id := range want {
				if seen[id] != 1 {
					t.Errorf("message %s delivered %d times, want once", id, seen[id])
				}
				if row := readRow(t, db1, id); !row.SentAt.Valid {
					t.Errorf("message %s not marked sent", id)
				}
			}
		})
	}
}

func TestExpiredClaimIsTakenAgain(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clk := useClock(db)
		f := newFakeSMTP(t, nil)
		s := newSender(t, db, Config{SMTPURL: "smtp://" + f.Addr, From: "steward@mail.example", Lease: time.Minute, Log: jsonLogger(io.Discard)})
		id := enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: "body"})
		// A sender that claims and then dies.
		msgs, _, err := s.claim(context.Background())
		if err != nil || len(msgs) != 1 || msgs[0].id != id {
			t.Fatalf("claim = %v, %v", msgs, err)
		}
		clk.Add(time.Minute)
		if n := runOnce(t, s); n != 0 {
			t.Fatalf("a claimed message was sent before its claim expired")
		}
		clk.Add(time.Microsecond)
		if n := runOnce(t, s); n != 1 || len(f.Mails()) != 1 {
			t.Fatalf("after the claim expired: sent %d, server has %d; want 1 and 1", n, len(f.Mails()))
		}
	})
}

func TestEnqueueValidates(t *testing.T) {
	ok := Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: "body"}
	with := func(change func(*Message)) Message {
		m := ok
		change(&m)
		return m
	}
	bad := map[string]Message{
		"empty subject":          with(func(m *Message) { m.Subject = "" }),
		"two recipients":         with(func(m *Message) { m.To = "a@b, c@d" }),
		"CRLF in subject":        with(func(m *Message) { m.Subject = "Hi\r\nBcc: eve@example.com" }),
		"LF in subject":          with(func(m *Message) { m.Subject = "Hi\nBcc: eve@example.com" }),
		"CRLF in recipient":      with(func(m *Message) { m.To = "ann@example.com\r\nBcc: eve@example.com" }),
		"control in subject":     with(func(m *Message) { m.Subject = "Hi\x00there" }),
		"empty recipient":        with(func(m *Message) { m.To = "" }),
		"not an address":         with(func(m *Message) { m.To = "ann" }),
		"display name":           with(func(m *Message) { m.To = "Ann <ann@example.com>" }),
		"quoted local part":      with(func(m *Message) { m.To = `"ann smith"@example.com` }),
		"empty body":             with(func(m *Message) { m.Body = "" }),
		"subject too long":       with(func(m *Message) { m.Subject = strings.Repeat("a", MaxSubjectLen+1) }),
		"body too long":          with(func(m *Message) { m.Body = strings.Repeat("a", MaxBodyLen+1) }),
		"body not UTF-8":         with(func(m *Message) { m.Body = "caf\xe9" }),
		"subject not UTF-8":      with(func(m *Message) { m.Subject = "caf\xe9" }),
		"header in language":     with(func(m *Message) { m.Language = "en\r\nBcc: eve@example.com" }),
		"language not a tag":     with(func(m *Message) { m.Language = "en_US" }),
		"empty kind":             with(func(m *Message) { m.Kind = "" }),
		"recipient too long":     with(func(m *Message) { m.To = strings.Repeat("a", 250) + "@example.com" }),
		"two recipients (angle)": with(func(m *Message) { m.To = "<a@b>, <c@d>" }),
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		useClock(db)
		for name, m := range bad {
			err := db.Transact(context.Background(), func(tx *store.Tx) error {
				_, err := Enqueue(context.Background(), tx, m)
				return err
			})
			if !steward.IsKind(err, steward.KindInvalid) {
				t.Errorf("%s: Enqueue = %v, want an invalid-input error", name, err)
			}
		}
		if n := countRows(t, db); n != 0 {
			t.Errorf("%d rows stored from invalid messages", n)
		}
		id := enqueue(t, db, Message{Kind: "invitation", To: " <ann@example.com> ", Subject: "Hi\tthere", Body: "b", Language: ""})
		row := readRow(t, db, id)
		if row.Recipient != "ann@example.com" || row.Language != "en" || row.Subject != "Hi\tthere" || row.Kind != "invitation" {
			t.Errorf("stored %+v; want the bare address and language en", row)
		}
		if row.CreatedAt != store.Micros(epoch) || row.NextAttemptAt != row.CreatedAt {
			t.Errorf("created_at %d, next_attempt_at %d: want due at creation", row.CreatedAt, row.NextAttemptAt)
		}
		if row.Attempts != 0 || row.SentAt.Valid || row.FailedAt.Valid || row.ClaimedUntil.Valid {
			t.Errorf("fresh row %+v", row)
		}
	})
}

func TestParseSMTPURL(t *testing.T) {
	good := []struct {
		url         string
		addr        string
		implicitTLS bool
		auth        bool
	}{
		{"smtp://mail.example.com", "mail.example.com:587", false, false},
		{"smtp://mail.example.com:25", "mail.example.com:25", false, false},
		{"smtp://user:s3cret@mail.example.com:587", "mail.example.com:587", false, true},
		{"smtp://user%40example.com:s3cret%2F%3A@mail.example.com/", "mail.example.com:587", false, true},
		{"smtps://user:s3cret@mail.example.com", "mail.example.com:465", true, true},
		{"smtps://mail.example.com:2465", "mail.example.com:2465", true, false},
		{"smtp://127.0.0.1:2525", "127.0.0.1:2525", false, false},
		{"smtp://[::1]:2525", "[::1]:2525", false, false},
	}
	for _, c := range good {
		srv, err := parseSMTPURL(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if srv.addr != c.addr || srv.implicitTLS != c.implicitTLS || (srv.auth != nil) != c.auth {
			t.Errorf("%s: addr %s, implicit TLS %v, auth %v; want %s, %v, %v", c.url, srv.addr, srv.implicitTLS, srv.auth != nil, c.addr, c.implicitTLS, c.auth)
		}
	}
	if srv, err := parseSMTPURL(""); srv != nil || err != nil {
		t.Errorf("empty URL = %v, %v; want log mode", srv, err)
	}
	bad := []struct{ url, want string }{
		{"http://mail.example.com", "scheme"},
		{"mail.example.com:587", "scheme"},
		{"smtp:mail.example.com", "form"},
		{"smtp://", "no host"},
		{"smtp://user:s3cret@", "no host"},
		{"smtp://mail.example.com:0", "port"},
		{"smtp://mail.example.com:65536", "port"},
		{"smtp://user:s3cret@mail.example.com:smtp", "port"},
		{"smtp://user@mail.example.com", "credentials"},
		{"smtp://:s3cret@mail.example.com", "credentials"},
		{"smtp://user:@mail.example.com", "credentials"},
		{"smtp://mail.example.com/relay", "path"},
		{"smtp://mail.example.com?tls=off", "query"},
		{"smtp://mail.example.com#x", "fragment"},
		{"smtp://user:s3cret@mail example.com", "URL"},
		{"smtp://user:s3cret@mail.example.com:25\n", "URL"},
	}
	for _, c := range bad {
		_, err := parseSMTPURL(c.url)
		if err == nil {
			t.Errorf("%q: accepted", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q does not mention %q", c.url, err, c.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error %q reveals the password", c.url, err)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	db, _ := storetest.OpenSQLite(t)
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{SMTPURL: "smtp://user:s3cret@mail.example.com"}, "From"},
		{Config{SMTPURL: "smtp://mail.example.com", From: "a@b, c@d"}, "From"},
		{Config{SMTPURL: "smtp://mail.example.com", From: "stéward@example.com"}, "From"},
		{Config{SMTPURL: "ftp://user:s3cret@mail.example.com", From: "a@example.com"}, "SMTP URL"},
		{Config{MaxAttempts: -1}, "MaxAttempts"},
		{Config{Lease: -time.Second}, "Lease"},
	}
	for _, c := range bad {
		_, err := New(db, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%+v) = %v; want an error about %s without the password", c.cfg, err, c.want)
		}
	}
	s := newSender(t, db, Config{SMTPURL: "smtps://user:s3cret@mail.example.com", From: "Steward <steward@mail.example>"})
	if out := fmt.Sprintf("%+v %#v", s, s); strings.Contains(out, "s3cret") {
		t.Errorf("printing a Sender reveals the password: %s", out)
	}
	if s.maxAttempts != 10 || s.lease != 5*time.Minute || s.msgDomain != "mail.example" {
		t.Errorf("defaults: max attempts %d, lease %v, domain %q", s.maxAttempts, s.lease, s.msgDomain)
	}
}

func TestSTARTTLSBeforeCredentials(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		useClock(db)
		serverTLS, pool := testCert(t, "mail.test")
		f := newFakeSMTP(t, nil)
		f.StartTLS, f.AuthPlain = serverTLS, true
		var buf logbuf.Buffer
		s := newSender(t, db, Config{SMTPURL: "smtp://steward:s3cret@mail.test:587", From: "steward@mail.test", Log: jsonLogger(&buf)})
		redirect(s, f)
		s.rootCAs = pool
		enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: link})
		if n := runOnce(t, s); n != 1 {
			t.Fatalf("RunOnce sent %d, want 1; log:\n%s", n, buf.String())
		}
		m := f.Mails()[0]
		if !m.TLS || m.User != "steward" || m.Password != "s3cret" {
			t.Errorf("received over TLS %v as %q/%q; want TLS, steward/s3cret", m.TLS, m.User, m.Password)
		}
		cmds := f.Commands()
		if i, j := slices.Index(cmds, "STARTTLS"), slices.Index(cmds, "AUTH"); i < 0 || j < i {
			t.Errorf("commands %v: want STARTTLS before AUTH", cmds)
		}
		if strings.Contains(buf.String(), "s3cret") {
			t.Errorf("the log reveals the password:\n%s", buf.String())
		}
	})
}

func TestNoSTARTTLSNoCredentials(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		useClock(db)
		f := newFakeSMTP(t, nil)
		f.AuthPlain = true
		var buf logbuf.Buffer
		s := newSender(t, db, Config{SMTPURL: "smtp://steward:s3cret@mail.test", From: "steward@mail.test", Log: jsonLogger(&buf)})
		redirect(s, f)
		id := enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: link})
		if n := runOnce(t, s); n != 0 {
			t.Fatalf("sent %d without TLS", n)
		}
		if cmds := f.Commands(); slices.Contains(cmds, "AUTH") || slices.Contains(cmds, "MAIL") {
			t.Errorf("commands %v: credentials or mail sent in the clear", cmds)
		}
		if row := readRow(t, db, id); row.Attempts != 1 || !strings.Contains(row.LastError.String, "STARTTLS") {
			t.Errorf("row %+v: want one failed attempt naming STARTTLS", row)
		}
		if strings.Contains(buf.String(), "s3cret") {
			t.Errorf("the log reveals the password:\n%s", buf.String())
		}
	})
}

func TestUntrustedCertificateFails(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		useClock(db)
		serverTLS, _ := testCert(t, "mail.test")
		f := newFakeSMTP(t, nil)
		f.StartTLS = serverTLS
		s := newSender(t, db, Config{SMTPURL: "smtp://mail.test", From: "steward@mail.test", Log: jsonLogger(io.Discard)})
		redirect(s, f)
		id := enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: link})
		if n := runOnce(t, s); n != 0 || len(f.Mails()) != 0 {
			t.Fatalf("sent %d through an untrusted certificate", n)
		}
		if row := readRow(t, db, id); row.Attempts != 1 || !strings.Contains(row.LastError.String, "certificate") {
			t.Errorf("row %+v: want one failed attempt naming the certificate", row)
		}
	})
}

func TestImplicitTLS(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		useClock(db)
		serverTLS, pool := testCert(t, "mail.test")
		f := newFakeSMTP(t, serverTLS)
		f.AuthPlain = true
		s := newSender(t, db, Config{SMTPURL: "smtps://steward:s3cret@mail.test", From: "steward@mail.test", Log: jsonLogger(io.Discard)})
		redirect(s, f)
		s.rootCAs = pool
		enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: link})
		if n := runOnce(t, s); n != 1 {
			t.Fatalf("sent %d, want 1", n)
		}
		m := f.Mails()[0]
		if !m.TLS || m.User != "steward" || m.Password != "s3cret" || parseMail(t, m.Data).Body != link+"\n" {
			t.Errorf("received %+v", m)
		}
	})
}

func TestRunDeliversUntilCancelled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		var buf logbuf.Buffer
		s := newSender(t, db, Config{Log: jsonLogger(&buf)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			s.Run(ctx, 10*time.Millisecond)
			close(done)
		}()
		id := enqueue(t, db, Message{Kind: "invitation", To: "ann@example.com", Subject: "Hi", Body: link})
		deadline := time.Now().Add(10 * time.Second)
		for !readRow(t, db, id).SentAt.Valid {
			if time.Now().After(deadline) {
				t.Fatal("Run did not deliver the message")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		if !strings.Contains(buf.String(), "accept?token=tok_9f8e7d") {
			t.Errorf("log does not carry the link:\n%s", buf.String())
		}
	})
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute, 8: time.Hour, 1000: time.Hour} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestEncodeSubject(t *testing.T) {
	for _, s := range []string{
		"Hi",
		"Invitation à rejoindre Zoë",
		strings.Repeat("word ", 40),
		strings.Repeat("ü", MaxSubjectLen/2),
		strings.Repeat("x", MaxSubjectLen),
		"=?utf-8?q?not_an_encoded_word?=",
		"tab\tand  double  space_under=score?",
		"emoji 🎉 " + strings.Repeat("日本", 50),
	} {
		enc := encodeSubject(s)
		for _, line := range strings.Split("Subject: "+enc, "\r\n") {
			if len(line) > 78 {
				t.Errorf("subject %.20q: line of %d characters", s, len(line))
			}
		}
		// Unfold as a reader does, then decode.
		got, err := new(mime.WordDecoder).DecodeHeader(strings.ReplaceAll(enc, "\r\n", ""))
		if err != nil || got != s {
			t.Errorf("subject %.40q encodes as %.80q, which decodes to %.40q, %v", s, enc, got, err)
		}
	}
	if got := encodeSubject("Hi"); got != "Hi" {
		t.Errorf("short ASCII subject encoded as %q", got)
	}
}
