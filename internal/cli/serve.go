package cli

import (
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
	var dataDir, listen, certFile, keyFile string
	var selfSigned, noTLS bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the fleet service: dashboard, JSON API and report history (SQLite in a data folder)",
		Long: `Serve runs the fleet service: a web dashboard and a JSON API (/api/v1/…, OpenAPI
document at /api/v1/openapi.json) over the reports imported into it, kept in an SQLite
database in the data folder.

There is no default password. The first start creates the account "admin" with a
unique secret printed once (only its hash is stored), or with the password in
IOTCOP_ADMIN_PASSWORD. Import reports with "iotcop push" using an API token made on
the dashboard's "API tokens" page, or upload them in the dashboard.

TLS is on by default with a self-signed certificate kept in the data folder (its
fingerprint is printed); give --tls-cert and --tls-key to use your own. --no-tls is
allowed on loopback addresses only. Logs are JSON lines on standard error.`,
		Example: `  iotcop serve
  iotcop serve --data /var/lib/iotcop --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
  IOTCOP_ADMIN_PASSWORD=… iotcop serve --data ./fleet`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if (certFile == "") != (keyFile == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if certFile != "" && (selfSigned || noTLS) || selfSigned && noTLS {
				return usageError{errors.New("choose one of --tls-cert/--tls-key, --tls-self-signed and --no-tls")}
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usageError{fmt.Errorf("--listen %q: %w", listen, err)}
			}
			if noTLS {
				if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
					return usageError{fmt.Errorf("--no-tls is allowed on loopback addresses only, not %s", host)}
				}
			}
			return runServe(e, dataDir, listen, host, certFile, keyFile, noTLS)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", defaultDataDir(), "data folder (database, self-signed certificate)")
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on")
	f.StringVar(&certFile, "tls-cert", "", "TLS certificate (PEM)")
	f.StringVar(&keyFile, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&selfSigned, "tls-self-signed", false, "use a self-signed certificate kept in the data folder (the default)")
	f.BoolVar(&noTLS, "no-tls", false, "serve plain HTTP (loopback addresses only)")
	return cmd
}

func runServe(e *env, dataDir, listen, host, certFile, keyFile string, noTLS bool) error {
	ctx := e.ctx
	st, err := store.Open(ctx, dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, err := server.Bootstrap(ctx, st, os.Getenv("IOTCOP_ADMIN_PASSWORD"))
	if err != nil {
		return err
	}
	var tlsConf *tls.Config
	fingerprint := ""
	switch {
	case noTLS:
	case certFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
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
	logger := slog.New(slog.NewJSONHandler(e.stderr, nil))
	srv, err := server.New(st, server.Options{Secure: tlsConf != nil, Logger: logger, Version: Version})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
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
	fmt.Fprintf(w, "iotcop: data folder %s\n", dataDir)
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
		return fmt.Errorf("serve on %s: %w", listen, err)
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
