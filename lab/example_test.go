package lab_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/iotcop/iotcop/lab"
)

// Run the default fleet of seven devices until Ctrl-C, printing what a
// scanner should find on each.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, err := lab.Start(ctx, lab.DefaultConfig(7), lab.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	for _, d := range l.Devices() {
		for _, f := range d.Flaws {
			fmt.Printf("%s %s %d/%s %s %s\n", d.Address, f.Check, f.Port, f.Transport, f.Protocol, f.Credential)
		}
	}
	<-ctx.Done()
}
