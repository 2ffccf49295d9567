package web_test

import (
	"os"
	"testing"

	"github.com/stewardhq/steward/internal/auth"
)

// TestMain makes the passwords these tests set cheap to hash. A hash
// carries its parameters, so signing in checks it at the same cost; under
// the race detector the default parameters take half a second a hash, and
// the tests set and check hundreds. internal/auth tests the defaults.
func TestMain(m *testing.M) {
	auth.DefaultParams = auth.Params{Memory: 64, Time: 1, Threads: 1}
	os.Exit(m.Run())
}
