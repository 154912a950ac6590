package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/store"
)

func newWorkerCmd(e *env) *cobra.Command {
	cfg := defaultServiceConfig()
	cfg.Workers = 4
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Work the fleet service's queued scans and firmware analyses (on another machine, with PostgreSQL)",
		Long: `Worker takes jobs — scan shards, firmware analyses, scheduled rescans — from the job
queue in the fleet service's database and stores their results there, exactly once:
a shard's results and the job's completion commit together. Run as many workers on
as many machines as the work needs, all on one PostgreSQL database (--db
postgres://…); a worker that dies mid-job has its job run again by another after
--rescue-after, and nothing of the dead attempt is kept.

A worker applies the command line's scope rule to what it scans: targets outside
private and loopback ranges are refused unless this worker is given --allow-public,
whatever the server allowed. SIGINT/SIGTERM stop taking jobs; running ones get
--shutdown-grace to finish, then go back to the queue.`,
		Example: `  iotcop worker --db postgres://iotcop:…@db.internal/iotcop
  IOTCOP_DB=postgres://… iotcop worker --workers 8 --name scanner-3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.resolve(cmd, os.Getenv); err != nil {
				return usageError{err}
			}
			if cfg.Workers == 0 {
				return usageError{fmt.Errorf("--workers 0: a worker with no workers would do nothing")}
			}
			return runWorker(e, cfg)
		},
	}
	cfg.register(cmd, "db", "workers", "allow-public", "show-secrets", "job-timeout", "rescue-after", "shutdown-grace", "name")
	return cmd
}

func runWorker(e *env, cfg serviceConfig) error {
	ctx := e.ctx
	logger := slog.New(slog.NewJSONHandler(e.stderr, nil))
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	qcfg := cfg.queueConfig()
	qcfg.Logger = logger
	q, err := jobs.Open(ctx, st, qcfg)
	if err != nil {
		return err
	}
	if err := q.Start(ctx); err != nil {
		q.Stop(context.WithoutCancel(ctx))
		return err
	}
	fmt.Fprintf(e.stdout, "iotcop: worker %s working jobs from %s (%d at once)\n", qcfg.Name, st.Location(), cfg.Workers)
	<-ctx.Done()
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Grace)
	defer cancel()
	if err := q.Stop(grace); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "iotcop: worker stopped")
	return nil
}
