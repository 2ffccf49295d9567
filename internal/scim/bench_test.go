package scim_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// BenchmarkProvision provisions users and groups through the SCIM
// endpoints as an identity provider does on its first push: every user
// (POST /Users), then every group (POST /Groups) and its members (PATCH
// add, in batches of 100 as Entra ID sends them), with 4 requests in flight.
// Each iteration starts from a fresh database. Run it once:
//
//	go test -run '^$' -bench 'Provision/users=10000' -benchtime 1x ./internal/scim/
func BenchmarkProvision(b *testing.B) {
	for _, size := range []struct{ users, groups int }{{1000, 50}, {10000, 500}} {
		for _, e := range storetest.Engines(b) {
			b.Run(fmt.Sprintf("users=%d,groups=%d/%s", size.users, size.groups, e.Name), func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					db, _ := e.Open(b)
					h := newHarness(b, db, forwarded.Trusted{})
					b.StartTimer()
					provision(b, h, size.users, size.groups)
					b.StopTimer()
				}
				b.ReportMetric(float64(size.users+size.groups), "resources/op")
			})
		}
	}
}

const inFlight = 4

// parallel runs fn(i) for i in [0, n) on inFlight workers.
func parallel(b *testing.B, n int, fn func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range inFlight {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
}

func provision(b *testing.B, h *harness, users, groups int) {
	ids := make([]string, users)
	parallel(b, users, func(i int) error {
		var u scimUser
		r := h.scim("POST", "/Users", oktaUser(fmt.Sprintf("user%05d@example.com", i), "User", fmt.Sprint(i)))
		if r.status != http.StatusCreated {
			return fmt.Errorf("create user %d: %d %s", i, r.status, r.body)
		}
		r.want(b, http.StatusCreated, &u)
		ids[i] = u.ID
		return nil
	})
	perGroup := users / groups
	parallel(b, groups, func(i int) error {
		var g scimGroup
		r := h.scim("POST", "/Groups", map[string]any{"displayName": fmt.Sprintf("group %03d", i)})
		if r.status != http.StatusCreated {
			return fmt.Errorf("create group %d: %d %s", i, r.status, r.body)
		}
		r.want(b, http.StatusCreated, &g)
		members := ids[i*perGroup : (i+1)*perGroup]
		for start := 0; start < len(members); start += 100 {
			var value []any
			for _, id := range members[start:min(start+100, len(members))] {
				value = append(value, map[string]any{"value": id})
			}
			r := h.scim("PATCH", "/Groups/"+g.ID+"?excludedAttributes=members", map[string]any{
				"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "Add", "path": "members", "value": value}},
			})
			if r.status != http.StatusOK {
				return fmt.Errorf("members of group %d: %d %s", i, r.status, r.body)
			}
		}
		return nil
	})
}
