package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/limits"
)

// resyncEvery is how often each process drops and reloads its caches of
// every Organization, in case a change from another process was missed.
const resyncEvery = time.Minute

// newLimiter returns the gateway's limiter: in Redis, shared by every
// process using it, when a Redis URL is set, and in process memory
// otherwise. A Redis that does not answer at start is logged, not fatal:
// the limiter follows its fail-open choices until Redis answers.
func newLimiter(ctx context.Context, cfg config.Config, log *slog.Logger) (limits.Limiter, func(), error) {
	if cfg.RedisURL == "" {
		return limits.NewLocal(nil), func() {}, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("Redis URL: %w", err)
	}
	// A script that timed out may have run: sending it again could take a
	// reservation twice, or give a refund twice.
	opts.MaxRetries = -1
	opts.DialTimeout = time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	open, err := cfg.FailOpenKinds()
	if err != nil {
		return nil, nil, err
	}
	redis.SetLogger(redisLog{log})
	client := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		log.Warn("Redis does not answer; limits follow their fail-open choices until it does", "addr", opts.Addr, "err", err)
	}
	l := limits.NewRedis(client, limits.RedisOptions{Prefix: cfg.RedisPrefix, Seeded: true, FailOpen: open})
	return l, func() { _ = client.Close() }, nil
}

// redisLog sends the Redis client's own messages (failed dials, mostly) to
// the log at debug level: the limiter reports its errors itself.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
