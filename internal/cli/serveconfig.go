package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/iotcop/iotcop/jobs"
)

// serviceConfig is what `iotcop serve` and `iotcop worker` are configured
// with. Each setting comes from, in rising precedence: its default, the
// YAML file given with --config, the environment (IOTCOP_ and the key in
// upper case, e.g. IOTCOP_DB, IOTCOP_SCAN_SCOPE=10.0.0.0/8,192.168.0.0/16),
// and the command line flag of the same name.
type serviceConfig struct {
	DB          string        `yaml:"db" flag:"db" help:"database: a postgres:// URL, or the data folder of the embedded SQLite database"`
	Listen      string        `yaml:"listen" flag:"listen" help:"address to listen on"`
	TLSCert     string        `yaml:"tls_cert" flag:"tls-cert" help:"TLS certificate (PEM)"`
	TLSKey      string        `yaml:"tls_key" flag:"tls-key" help:"TLS private key (PEM)"`
	TLSSelf     bool          `yaml:"tls_self_signed" flag:"tls-self-signed" help:"use a self-signed certificate kept in the data folder (the default)"`
	NoTLS       bool          `yaml:"no_tls" flag:"no-tls" help:"serve plain HTTP (loopback addresses only)"`
	Workers     int           `yaml:"workers" flag:"workers" help:"jobs (scan shards, firmware analyses) this process runs at once; 0: leave them to 'iotcop worker' processes"`
	ShardSize   int           `yaml:"shard_size" flag:"shard-size" help:"most addresses one scan job covers"`
	ScanScope   []string      `yaml:"scan_scope" flag:"scan-scope" help:"networks operators may scan through the service (CIDRs; default: private and loopback ranges)"`
	AllowPublic bool          `yaml:"allow_public" flag:"allow-public" help:"let this process scan targets outside private and loopback ranges (only what you are authorised to)"`
	ShowSecrets bool          `yaml:"show_secrets" flag:"show-secrets" help:"store found passwords and keys in the clear (redacted by default)"`
	JobTimeout  time.Duration `yaml:"job_timeout" flag:"job-timeout" help:"cancel a job that runs longer than this"`
	RescueAfter time.Duration `yaml:"rescue_after" flag:"rescue-after" help:"run a job again elsewhere when it has been running this long (its worker is presumed dead); must exceed --job-timeout (default: job-timeout + 1m)"`
	Grace       time.Duration `yaml:"shutdown_grace" flag:"shutdown-grace" help:"on shutdown, how long running jobs may finish before they are cancelled and go back to the queue"`
	Name        string        `yaml:"name" flag:"name" help:"this process's name in job results (default host-pid)"`
}

// defaultServiceConfig is the configuration with no file, environment or
// flags: SQLite in the user's data folder, TLS with a self-signed
// certificate on loopback, two in-process workers.
func defaultServiceConfig() serviceConfig {
	return serviceConfig{
		DB:         defaultDataDir(),
		Listen:     "127.0.0.1:8443",
		Workers:    2,
		ShardSize:  64,
		JobTimeout: 30 * time.Minute,
		// RescueAfter 0: job-timeout plus a minute.
		Grace: 30 * time.Second,
	}
}

// register adds one flag per field (named by its flag tag, defaults from
// c) and --config.
func (c *serviceConfig) register(cmd *cobra.Command, only ...string) {
	f := cmd.Flags()
	f.String("config", "", "YAML configuration file (keys as the flags, with _ for -); environment IOTCOP_<KEY> overrides it, flags override both")
	keep := map[string]bool{}
	for _, o := range only {
		keep[o] = true
	}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		name, help := sf.Tag.Get("flag"), sf.Tag.Get("help")
		if len(keep) > 0 && !keep[name] {
			continue
		}
		switch p := v.Field(i).Addr().Interface().(type) {
		case *string:
			f.StringVar(p, name, *p, help)
		case *bool:
			f.BoolVar(p, name, *p, help)
		case *int:
			f.IntVar(p, name, *p, help)
		case *[]string:
			f.StringSliceVar(p, name, *p, help)
		case *time.Duration:
			f.DurationVar(p, name, *p, help)
		}
	}
}

// resolve applies the file and the environment under the flags the user
// set: it reloads c from defaults + file + environment, then puts back
// every flag that was given on the command line.
func (c *serviceConfig) resolve(cmd *cobra.Command, getenv func(string) string) error {
	given := map[string]bool{}
	cmd.Flags().Visit(func(fl *pflag.Flag) { given[fl.Name] = true })
	fromFlags := *c
	merged := defaultServiceConfig()
	if path, _ := cmd.Flags().GetString("config"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read --config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// An empty file is all defaults.
		if err := dec.Decode(&merged); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("configuration file %s: %w", path, err)
		}
	}
	mv, fv := reflect.ValueOf(&merged).Elem(), reflect.ValueOf(&fromFlags).Elem()
	for i := range mv.NumField() {
		sf := mv.Type().Field(i)
		name := sf.Tag.Get("flag")
		if given[name] {
			mv.Field(i).Set(fv.Field(i))
			continue
		}
		key := "IOTCOP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		val := getenv(key)
		if val == "" {
			continue
		}
		if err := setFromString(mv.Field(i), val); err != nil {
			return fmt.Errorf("environment %s: %w", key, err)
		}
	}
	*c = merged
	return c.validate()
}

func setFromString(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p = s
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		*p = n
	case *[]string:
		*p = strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' })
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 90s, 30m)", s)
		}
		*p = d
	}
	return nil
}

func (c *serviceConfig) validate() error {
	switch {
	case c.DB == "":
		return errors.New("db: give a postgres:// URL or a data folder")
	case c.Workers < 0 || c.Workers > 256:
		return fmt.Errorf("workers %d: out of range 0–256", c.Workers)
	case c.ShardSize < 1 || c.ShardSize > 65536:
		return fmt.Errorf("shard-size %d: out of range 1–65536", c.ShardSize)
	case c.JobTimeout <= 0:
		return fmt.Errorf("job-timeout %s: must be positive", c.JobTimeout)
	case c.RescueAfter == 0:
		c.RescueAfter = c.JobTimeout + time.Minute
	}
	switch {
	case c.RescueAfter <= c.JobTimeout:
		return fmt.Errorf("rescue-after %s must exceed job-timeout %s (a job still running is not abandoned)", c.RescueAfter, c.JobTimeout)
	case c.Grace < 0:
		return fmt.Errorf("shutdown-grace %s: must not be negative", c.Grace)
	}
	if _, err := jobs.ParseScope(c.ScanScope); err != nil {
		return err
	}
	return nil
}

// queueConfig is the job queue's part of the configuration.
func (c *serviceConfig) queueConfig() jobs.Config {
	scope, _ := jobs.ParseScope(c.ScanScope) // validated in resolve
	return jobs.Config{Workers: c.Workers, ShardSize: c.ShardSize, JobTimeout: c.JobTimeout, RescueAfter: c.RescueAfter,
		Name: c.Name, Scope: scope, AllowPublic: c.AllowPublic, ShowSecrets: c.ShowSecrets, Version: Version}
}
