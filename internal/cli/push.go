package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotcop/iotcop/store"
)

func newPushCmd(e *env) *cobra.Command {
	var serverURL, token, caFile string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "push REPORT.json",
		Short: "Import a JSON report into a fleet service (iotcop serve)",
		Long: `Push sends a report written with --format json to a fleet service started with
"iotcop serve". The token is an API token with scope "import", made on the
dashboard's "API tokens" page; give it with --token or IOTCOP_TOKEN (the environment
keeps it out of the process list). Pushing the same report twice stores it once.

A server with a self-signed certificate is trusted with --ca (its certificate file,
tls/self-signed.crt in the server's data folder); --insecure skips verification and
is allowed for loopback servers only.`,
		Example: `  IOTCOP_TOKEN=iotcop_… iotcop push scan.json --server https://fleet.example:8443
  iotcop push scan.json --server https://127.0.0.1:8443 --ca ~/.local/share/iotcop/tls/self-signed.crt --token iotcop_…`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if token == "" {
				token = os.Getenv("IOTCOP_TOKEN")
			}
			if token == "" {
				return usageError{errors.New("no token: give --token or set IOTCOP_TOKEN")}
			}
			u, err := url.Parse(serverURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return usageError{fmt.Errorf("--server %q: want https://HOST:PORT", serverURL)}
			}
			loopback := isLoopbackHost(u.Hostname())
			if insecure && !loopback {
				return usageError{fmt.Errorf("--insecure is allowed for loopback servers only; use --ca for %s", u.Hostname())}
			}
			if u.Scheme == "http" && !loopback {
				return usageError{fmt.Errorf("refusing to send a token over plain HTTP to %s", u.Hostname())}
			}
			tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return usageError{fmt.Errorf("--ca: %w", err)}
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return usageError{fmt.Errorf("--ca %s: no PEM certificate", caFile)}
				}
				tlsConf.RootCAs = pool
			}
			body, err := readReportArg(e, args[0])
			if err != nil {
				return usageError{err}
			}
			return push(e, u, token, tlsConf, body)
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", "", "URL of the fleet service (https://HOST:PORT)")
	f.StringVar(&token, "token", "", "API token with scope import (default $IOTCOP_TOKEN)")
	f.StringVar(&caFile, "ca", "", "trust this certificate (PEM), e.g. the server's self-signed one")
	f.BoolVar(&insecure, "insecure", false, "skip TLS verification (loopback servers only)")
	cmd.MarkFlagRequired("server")
	return cmd
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func readReportArg(e *env, name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("read report: %w", err)
		}
		defer f.Close()
		r = f
	}
	body, err := io.ReadAll(io.LimitReader(r, store.MaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", name, err)
	}
	if len(body) > store.MaxReportBytes {
		return nil, fmt.Errorf("read report %s: larger than %d bytes", name, store.MaxReportBytes)
	}
	return body, nil
}

func push(e *env, u *url.URL, token string, tlsConf *tls.Config, body []byte) error {
	endpoint := strings.TrimSuffix(u.String(), "/") + "/api/v1/reports"
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push to %s: %w", endpoint, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyFromEnvironment},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("push to %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("push to %s: read answer: %w", endpoint, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		var res store.ImportResult
		if err := json.Unmarshal(answer, &res); err != nil {
			return fmt.Errorf("push to %s: unexpected answer: %w", endpoint, err)
		}
		if res.Duplicate {
			fmt.Fprintf(e.stdout, "already stored as report %d (%d devices, %d findings): nothing new\n", res.ReportID, res.Devices, res.Findings)
		} else {
			fmt.Fprintf(e.stdout, "stored as report %d: %d devices, %d findings\n", res.ReportID, res.Devices, res.Findings)
		}
		return nil
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(answer))
	if json.Unmarshal(answer, &apiErr) == nil && apiErr.Error != "" {
		msg = apiErr.Error
	}
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return fmt.Errorf("push to %s: %s: %s", endpoint, resp.Status, msg)
}
