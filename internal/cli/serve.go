package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/jobs"
	"github.com/iotcop/iotcop/server"
	"github.com/iotcop/iotcop/store"
)

// defaultDataDir is where serve keeps its database without --data.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "iotcop")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "iotcop")
	}
	return "iotcop-data"
}

func newServeCmd(e *env) *cobra.Command {
	cfg := defaultServiceConfig()
	var dataDir string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the fleet service: dashboard, JSON API, scans, firmware analyses and history (SQLite or PostgreSQL)",
		Long: `Serve runs the fleet service: a web dashboard and a JSON API (/api/v1/…, OpenAPI
document at /api/v1/openapi.json) over the reports imported into it and the scans and
firmware analyses it runs, kept in an embedded SQLite database in a data folder by
default, or in PostgreSQL with --db postgres://….

Scans and firmware analyses are jobs in a durable queue in the same database (River).
The server works them itself (--workers); with PostgreSQL, "iotcop worker" processes on
other machines take them too. A scan is split into shards of --shard-size addresses;
the targets operators may scan are limited by --scan-scope.

There is no default password. The first start creates the account "admin" with a
unique secret printed once (only its hash is stored), or with the password in
IOTCOP_ADMIN_PASSWORD. Import reports with "iotcop push" using an API token made on
the dashboard's "API tokens" page, or upload them in the dashboard.

TLS is on by default with a self-signed certificate kept in the data folder (its
fingerprint is printed); give --tls-cert and --tls-key to use your own. --no-tls is
allowed on loopback addresses only. Logs are JSON lines on standard error.

Every flag can also be set in a YAML file (--config; keys as the flags with _ for -)
or in the environment (IOTCOP_DB, IOTCOP_SCAN_SCOPE, …); flags win over the
environment, which wins over the file.`,
		Example: `  iotcop serve
  iotcop serve --db ./fleet --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem --scan-scope 10.20.0.0/16
  iotcop serve --db postgres://iotcop:…@db.internal/iotcop --workers 0 --config /etc/iotcop/serve.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("data") && !cmd.Flags().Changed("db") {
				cfg.DB = dataDir
				if err := cmd.Flags().Set("db", dataDir); err != nil {
					return err
				}
			}
			if err := cfg.resolve(cmd, os.Getenv); err != nil {
				return usageError{err}
			}
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if cfg.TLSCert != "" && (cfg.TLSSelf || cfg.NoTLS) || cfg.TLSSelf && cfg.NoTLS {
				return usageError{errors.New("choose one of --tls-cert/--tls-key, --tls-self-signed and --no-tls")}
			}
			host, _, err := net.SplitHostPort(cfg.Listen)
			if err != nil {
				return usageError{fmt.Errorf("--listen %q: %w", cfg.Listen, err)}
			}
			if cfg.NoTLS {
				if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
					return usageError{fmt.Errorf("--no-tls is allowed on loopback addresses only, not %s", host)}
				}
			}
			return runServe(e, cfg, host, dataDir)
		},
	}
	cfg.register(cmd)
	cmd.Flags().StringVar(&dataDir, "data", "", "data folder: the embedded SQLite database (the same as --db FOLDER) and the self-signed certificate (with --db postgres://…, default "+defaultDataDir()+")")
	return cmd
}

func runServe(e *env, cfg serviceConfig, host, dataFlag string) error {
	ctx := e.ctx
	logger := slog.New(slog.NewJSONHandler(e.stderr, nil))
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, err := server.Bootstrap(ctx, st, os.Getenv("IOTCOP_ADMIN_PASSWORD"))
	if err != nil {
		return err
	}
	qcfg := cfg.queueConfig()
	qcfg.Logger = logger
	queue, err := jobs.Open(ctx, st, qcfg)
	if err != nil {
		return err
	}
	// The queue stops after the HTTP server (deferred first, runs last):
	// running jobs get the grace period, then go back to the queue.
	defer func() {
		grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Grace)
		defer cancel()
		if err := queue.Stop(grace); err != nil {
			logger.Error("stop job queue", "err", err)
		}
	}()
	if err := queue.Start(ctx); err != nil {
		return err
	}
	var tlsConf *tls.Config
	fingerprint := ""
	// The self-signed certificate lives in the data folder: the SQLite
	// one, or with PostgreSQL --data (default the user's data folder).
	dataDir := cfg.DB
	if st.Dialect() == store.Postgres {
		dataDir = cmp.Or(dataFlag, defaultDataDir())
	}
	switch {
	case cfg.NoTLS:
	case cfg.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return usageError{fmt.Errorf("load --tls-cert/--tls-key: %w", err)}
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	default:
		cert, fp, err := server.LoadOrCreateSelfSigned(dataDir, []string{host})
		if err != nil {
			return err
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		fingerprint = fp
	}
	srv, err := server.New(st, server.Options{Secure: tlsConf != nil, Logger: logger, Version: Version, Queue: queue})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsConf)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	url := fmt.Sprintf("%s://%s/", scheme, ln.Addr())
	w := e.stdout
	if st.Dialect() == store.Postgres {
		fmt.Fprintf(w, "iotcop: database %s\n", st.Location())
	} else {
		fmt.Fprintf(w, "iotcop: data folder %s\n", dataDir)
	}
	fmt.Fprintf(w, "iotcop: job queue: %d worker(s) in this process\n", cfg.Workers)
	if fingerprint != "" {
		fmt.Fprintf(w, "iotcop: self-signed TLS certificate %s, SHA-256 fingerprint %s\n", filepath.Join(dataDir, server.SelfSignedCert), fingerprint)
	}
	if secret != "" {
		fmt.Fprintf(w, "iotcop: first start: created the account %q; its one-time secret is shown only now (only a hash is stored):\n\n    %s\n\n",
			server.AdminName, secret)
	}
	fmt.Fprintf(w, "iotcop: serving %s (log in at %slogin)\n", url, url)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", cfg.Listen, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	fmt.Fprintln(w, "iotcop: stopped")
	return nil
}
