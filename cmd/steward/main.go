// Command steward is a self-hosted control plane for AI API platforms,
// compatible with the Mistral AI Admin API. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	// Organizations' time zones must load on machines without a zoneinfo
	// database, such as minimal containers.
	_ "time/tzdata"

	"github.com/stewardhq/steward/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
