// Package robustness sends a small catalogue of malformed inputs to a
// device's services (EN 303 645 5.13-1: validate input; 5.9-1: stay
// resilient) and watches whether the device keeps answering. It is opt-in
// and deliberately gentle: every probe is bounded in bytes and time, the
// device's services are checked for liveness after every probe, and
// probing stops at the first probe after which the device stopped answering
// or restarted. That probe is what the report names.
//
// Liveness is judged at the protocol level where iotcop can (an HTTP status
// line, an RTSP reply, an MQTT CONNACK, a CoAP reset to a ping, a banner
// from a server-first service) because a hung daemon often still completes
// TCP handshakes in the kernel. A restart that is quicker than the liveness
// check is caught where the device tells its uptime: an MQTT broker whose
// $SYS/broker/uptime goes backwards or whose $SYS/broker/started changes.
package robustness

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/iotcop/iotcop/proto"
)

// Service is one service of the device under test.
type Service struct {
	Endpoint proto.Endpoint
	// Protocol is the identified protocol ("http", "mqtt", "coap", ...;
	// "unknown" or empty when nothing matched).
	Protocol string
	// ServerFirst is true when the service greets first (ssh, telnet, ftp
	// or any service that sent a banner unprompted); liveness then waits
	// for a greeting byte.
	ServerFirst bool
}

// String names the service for reports: "http 80/tcp".
func (s Service) String() string {
	p := s.Protocol
	if p == "" {
		p = "unknown"
	}
	return p + " " + strconv.Itoa(s.Endpoint.Port) + "/" + transport(s.Endpoint)
}

// key identifies the service within a device.
func (s Service) key() string { return transport(s.Endpoint) + "/" + s.Endpoint.Addr() }

func transport(ep proto.Endpoint) string {
	if ep.Transport == "" {
		return "tcp"
	}
	return ep.Transport
}

// Budget bounds what the runner sends and how long it waits. The zero
// value means the defaults.
type Budget struct {
	// MaxBytes caps what one probe sends (default 128 KiB); larger probes
	// are skipped.
	MaxBytes int
	// ProbeTimeout bounds a probe's connect and each of its writes
	// (default 3s).
	ProbeTimeout time.Duration
	// ReplyWait is how long a probe waits for the service's reaction
	// before closing (default 1s).
	ReplyWait time.Duration
	// BurstConns is how many idle TCP connections the connection burst
	// opens per TCP service (default 20; negative disables the burst).
	BurstConns int
	// BurstHold is how long the burst holds them (default 2s).
	BurstHold time.Duration
	// LivenessTimeout bounds one liveness attempt (default 2s).
	LivenessTimeout time.Duration
	// LivenessRetries is how many attempts a service gets before it counts
	// as not answering (default 3).
	LivenessRetries int
	// RecoveryWait is how long a device that stopped answering is watched
	// for coming back (default 30s).
	RecoveryWait time.Duration
	// Settle is how long the runner waits after a probe before checking
	// liveness, so that a device crashing a moment after the input is
	// caught on the probe that caused it (default 250ms).
	Settle time.Duration
	// MaxDuration bounds the whole run on one device (default 5 min);
	// probes left over are counted in Outcome.NotRun.
	MaxDuration time.Duration
}

// WithDefaults returns b with every unset field at its default.
func (b Budget) WithDefaults() Budget {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if b.MaxBytes <= 0 {
		b.MaxBytes = 128 << 10
	}
	def(&b.ProbeTimeout, 3*time.Second)
	def(&b.ReplyWait, time.Second)
	if b.BurstConns == 0 {
		b.BurstConns = 20
	}
	def(&b.BurstHold, 2*time.Second)
	def(&b.LivenessTimeout, 2*time.Second)
	if b.LivenessRetries <= 0 {
		b.LivenessRetries = 3
	}
	def(&b.RecoveryWait, 30*time.Second)
	def(&b.Settle, 250*time.Millisecond)
	def(&b.MaxDuration, 5*time.Minute)
	return b
}

// ProbeRun is what one probe did.
type ProbeRun struct {
	Probe   string
	Service Service
	// BytesSent counts the bytes written (for the burst: 0).
	BytesSent int
	// Connections is how many connections the probe held (burst only).
	Connections int
	// Reply is the printable start of what the service answered,
	// "(no reply)", or how the connection ended.
	Reply string
	// Err is set when the probe could not be delivered (connect refused
	// before sending); it is not a liveness verdict.
	Err error
}

// Failure is a device that stopped answering or restarted after a probe.
type Failure struct {
	// Run is the probe that preceded the failure.
	Run ProbeRun
	// Description is the probe's description.
	Description string
	// ProbeProtocol is the probe's protocol ("http", ..., "tcp").
	ProbeProtocol string
	// Stopped lists the services that no longer answered (empty when only a
	// restart was seen); Checks says, per entry, what was asked of it
	// ("http reply", "mqtt connack", "greeting", "tcp connect", ...).
	Stopped []Service
	Checks  []string
	// Restart describes the sign of a restart, when one was seen
	// ("$SYS/broker/uptime went from 3600 to 4").
	Restart string
	// CameBack is true when every stopped service answered again within
	// RecoveryWait; Downtime is then the time from the end of the probe to
	// the moment the last of them answered (a bound, checked once a second).
	CameBack bool
	Downtime time.Duration
	// Watched is how long the runner watched for recovery after the probe.
	Watched time.Duration
	// NoticedBy names the next probe when the failure showed only when
	// that one could not even connect (a delayed crash); Run is then the
	// last probe delivered.
	NoticedBy string
	// Previous is the probe delivered before Run ("" for the first): a
	// device that crashes seconds after an input may have been hit by it.
	Previous string
}

// Outcome is the result of probing one device.
type Outcome struct {
	// Runs lists the probes sent, in order.
	Runs []ProbeRun
	// Failure is set when the device stopped answering or restarted.
	Failure *Failure
	// Unwatched lists services whose liveness could not be judged (they
	// did not answer before probing, or their protocol has no liveness
	// check); they were not probed.
	Unwatched []Service
	// NotRun counts probes left over when MaxDuration ran out.
	NotRun int
}

// Runner probes devices.
type Runner struct {
	Budget Budget
	// Probes is the catalogue to use (nil = Catalogue()).
	Probes []Probe
}

// Run probes the services of one device in order and stops at the first
// failure. The error is set only when ctx ended; the outcome holds what
// was done until then.
func (r *Runner) Run(ctx context.Context, services []Service) (Outcome, error) {
	b := r.Budget.WithDefaults()
	probes := r.Probes
	if probes == nil {
		probes = Catalogue()
	}
	now := time.Now
	start := now()
	w := &watcher{budget: b}
	var out Outcome
	for _, s := range services {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("robustness baseline: %w", err)
		}
		if w.add(ctx, s) {
			continue
		}
		out.Unwatched = append(out.Unwatched, s)
	}
	if len(w.watched) == 0 {
		return out, ctx.Err()
	}
	type job struct {
		probe Probe
		svc   Service
	}
	var jobs []job
	for _, ws := range w.watched {
		for _, p := range probes {
			if p.payload == nil && b.BurstConns < 0 {
				continue
			}
			if p.appliesTo(ws.svc) {
				jobs = append(jobs, job{p, ws.svc})
			}
		}
	}
	var last *job // the last probe delivered
	var lastRun ProbeRun
	prevName := "" // the probe delivered before last
	for i, j := range jobs {
		if now().Sub(start) > b.MaxDuration {
			out.NotRun = len(jobs) - i
			break
		}
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("robustness probe %s: %w", j.probe.Name, err)
		}
		if n := len(j.probe.Payload(j.svc.Endpoint.Host)); n > b.MaxBytes {
			out.Runs = append(out.Runs, ProbeRun{Probe: j.probe.Name, Service: j.svc,
				Err: fmt.Errorf("skipped: %d bytes exceed the budget of %d", n, b.MaxBytes)})
			continue
		}
		run := j.probe.send(ctx, j.svc, b)
		sent := now()
		out.Runs = append(out.Runs, run)
		sleep(ctx, b.Settle)
		stopped, restart := w.check(ctx, j.svc)
		if ctx.Err() != nil {
			return out, fmt.Errorf("robustness probe %s: %w", j.probe.Name, ctx.Err())
		}
		if len(stopped) > 0 || restart != "" {
			f := &Failure{Run: run, Description: j.probe.Description, ProbeProtocol: j.probe.Protocol,
				Stopped: stopped, Restart: restart}
			if last != nil {
				f.Previous = last.probe.Name
			}
			if run.Err != nil && last != nil {
				// This probe never got through: the device was already
				// failing, later than the previous probe's check saw.
				f.Run, f.Description, f.ProbeProtocol = lastRun, last.probe.Description, last.probe.Protocol
				f.NoticedBy, f.Previous = run.Probe, prevName
			}
			for _, st := range stopped {
				f.Checks = append(f.Checks, w.kind(st).String())
			}
			if len(stopped) > 0 {
				f.CameBack, f.Downtime, f.Watched = w.recover(ctx, stopped, sent, now)
			} else {
				f.CameBack = true
			}
			out.Failure = f
			return out, ctx.Err()
		}
		if run.Err == nil {
			if last != nil {
				prevName = last.probe.Name
			}
			last, lastRun = &jobs[i], run
		}
	}
	return out, ctx.Err()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
