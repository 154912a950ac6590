// Command iotcop checks consumer IoT devices, firmware and makers' promises
// against the UK Code of Practice for Consumer IoT Security, ETSI EN 303 645
// and the UK PSTI regime.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/iotcop/iotcop/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
