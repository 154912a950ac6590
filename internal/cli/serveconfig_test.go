package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// resolveWith builds a serve-like command, parses args and resolves the
// configuration with the given environment.
func resolveWith(t *testing.T, args []string, env map[string]string) (serviceConfig, error) {
	t.Helper()
	cfg := defaultServiceConfig()
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	cfg.register(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		return cfg, err
	}
	err := cfg.resolve(cmd, func(k string) string { return env[k] })
	return cfg, err
}

func TestServiceConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "serve.yaml")
	os.WriteFile(file, []byte("db: /srv/iotcop\nworkers: 3\nscan_scope: [10.20.0.0/16]\njob_timeout: 10m\nrescue_after: 15m\nlisten: 0.0.0.0:9443\n"), 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)

	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(serviceConfig) bool
	}{
		{"defaults", nil, nil, func(c serviceConfig) bool {
			return c.Workers == 2 && c.Listen == "127.0.0.1:8443" && c.DB == defaultDataDir() && len(c.ScanScope) == 0
		}},
		{"empty file is defaults", []string{"--config", empty}, nil, func(c serviceConfig) bool { return c.Workers == 2 }},
		{"file", []string{"--config", file}, nil, func(c serviceConfig) bool {
			return c.DB == "/srv/iotcop" && c.Workers == 3 && c.ScanScope[0] == "10.20.0.0/16" && c.JobTimeout == 10*time.Minute
		}},
		{"environment over file", []string{"--config", file}, map[string]string{"IOTCOP_WORKERS": "5", "IOTCOP_SCAN_SCOPE": "10.1.0.0/16,10.2.0.0/16"},
			func(c serviceConfig) bool {
				return c.Workers == 5 && len(c.ScanScope) == 2 && c.DB == "/srv/iotcop"
			}},
		{"flags over environment and file", []string{"--config", file, "--workers", "7", "--db", "postgres://u@h/d"},
			map[string]string{"IOTCOP_WORKERS": "5", "IOTCOP_DB": "/elsewhere"},
			func(c serviceConfig) bool {
				return c.Workers == 7 && c.DB == "postgres://u@h/d" && c.Listen == "0.0.0.0:9443"
			}},
		{"rescue-after follows job-timeout", []string{"--job-timeout", "2h"}, nil,
			func(c serviceConfig) bool { return c.RescueAfter == 2*time.Hour+time.Minute }},
		{"a flag equal to its default still wins", []string{"--config", file, "--workers", "2"}, nil,
			func(c serviceConfig) bool { return c.Workers == 2 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := resolveWith(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("resolved %+v", c)
			}
		})
	}
}

func TestServiceConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--config", write("typo.yaml", "db: x\nworkrs: 3\n")}, nil, "line 2: field workrs not found"},
		{[]string{"--config", write("type.yaml", "workers: many\n")}, nil, "cannot unmarshal"},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, nil, "read --config"},
		{nil, map[string]string{"IOTCOP_JOB_TIMEOUT": "soon"}, "IOTCOP_JOB_TIMEOUT"},
		{nil, map[string]string{"IOTCOP_WORKERS": "-1"}, "out of range"},
		{[]string{"--job-timeout", "1h", "--rescue-after", "30m"}, nil, "must exceed job-timeout"},
		{[]string{"--scan-scope", "10.0.0.0/33"}, nil, "scan scope"},
		{[]string{"--shard-size", "0"}, nil, "shard-size"},
	}
	for _, tc := range tests {
		_, err := resolveWith(t, tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: err = %v, want it to mention %q", tc.args, tc.env, err, tc.want)
		}
	}
}
