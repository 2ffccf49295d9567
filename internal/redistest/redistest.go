// Package redistest gives tests the Redis server that STEWARD_TEST_REDIS
// names, with a key prefix of their own whose keys are deleted afterwards.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env names the Redis server tests use, as a redis:// URL such as
// redis://127.0.0.1:6379/0.
const Env = "STEWARD_TEST_REDIS"

// URL returns the Redis URL tests use. Without one it skips the test, or
// fails it in CI (CI set).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must test Redis", Env)
		}
		t.Skipf("Redis not tested: set %s=redis://127.0.0.1:6379/0 to run it", Env)
	}
	return u
}

// Open returns a client of the test Redis server and a key prefix unique
// to the test; the keys under it are deleted and the client closed when
// the test ends. An unreachable server fails the test in CI and skips it
// elsewhere.
func Open(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s: %v", opts.Addr, err)
		}
		t.Skipf("Redis not tested: %s does not answer: %v", opts.Addr, err)
	}
	prefix := Prefix()
	t.Cleanup(func() {
		Clean(c, prefix)
		c.Close()
	})
	return c, prefix
}

// Prefix returns a fresh key prefix, "steward-test:<random>:".
func Prefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "steward-test:" + hex.EncodeToString(b[:]) + ":"
}

// Clean deletes every key under prefix.
func Clean(c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}
