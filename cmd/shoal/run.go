package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/jobs"
	"github.com/shoalcrm/shoal/internal/observe"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: shoal <command> [flags]

commands:
  serve     run the HTTP API server
  migrate   apply the database schema and exit
  user create --email E --role R [--name N] [--team-id T] --password-stdin
            create a user (the first admin, say) from the command line
  seed --demo [--leads N] [--customers N]
            load a demo data set into an empty database
  version   print the version
`

// run is the whole program; main only supplies the process's environment,
// and the end-to-end tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout, stderr)
	case "seed":
		return seed(ctx, args[1:], getenv, stdout, stderr)
	case "user":
		return userCommand(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "shoal", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// common are the flags every database-using command shares.
type common struct {
	databaseURL string
	logLevel    string
	logFormat   string
}

func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.databaseURL, "database-url", envOr(getenv, "SHOAL_DATABASE_URL", store.DefaultURL), "database: sqlite:PATH or postgres://… (SHOAL_DATABASE_URL)")
	fs.StringVar(&c.logLevel, "log-level", envOr(getenv, "SHOAL_LOG_LEVEL", "info"), "debug, info, warn or error (SHOAL_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", envOr(getenv, "SHOAL_LOG_FORMAT", "json"), "json or text (SHOAL_LOG_FORMAT)")
}

func (c *common) logger(w io.Writer) *slog.Logger {
	return observe.NewLogger(w, c.logFormat, c.logLevel)
}

func envOr(getenv func(string) string, key, fallback string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return fallback
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := store.Open(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "schema is up to date")
	return nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, getenv)
	addr := fs.String("addr", envOr(getenv, "SHOAL_ADDR", "127.0.0.1:8080"), "listen address (SHOAL_ADDR)")
	cors := fs.String("cors-origins", getenv("SHOAL_CORS_ORIGINS"), "comma-separated allowed CORS origins (SHOAL_CORS_ORIGINS)")
	metricsAddr := fs.String("metrics-addr", getenv("SHOAL_METRICS_ADDR"), "serve /metrics on this address instead of the API's (SHOAL_METRICS_ADDR)")
	trustedProxies := fs.String("trusted-proxies", getenv("SHOAL_TRUSTED_PROXIES"), "comma-separated CIDRs of proxies whose X-Forwarded-For is believed (SHOAL_TRUSTED_PROXIES)")
	noMigrate := fs.Bool("no-migrate", false, "do not apply the schema at start")
	defaultSweep := time.Minute
	if v := getenv("SHOAL_SWEEP_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SHOAL_SWEEP_INTERVAL: %w", err)
		}
		defaultSweep = d
	}
	sweepEvery := fs.Duration("sweep-interval", defaultSweep, "how often the reclaim sweep runs; 0 disables it (SHOAL_SWEEP_INTERVAL)")
	defaultPoll := jobs.DefaultPollInterval
	if v := getenv("SHOAL_JOB_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SHOAL_JOB_POLL_INTERVAL: %w", err)
		}
		defaultPoll = d
	}
	jobPoll := fs.Duration("job-poll-interval", defaultPoll, "how often the job queue looks for new jobs, at least 100ms (SHOAL_JOB_POLL_INTERVAL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := c.logger(stderr)
	walLimit, err := envBytes(getenv, "SHOAL_SQLITE_WAL_LIMIT")
	if err != nil {
		return err
	}
	proxies, err := parseCIDRs(*trustedProxies)
	if err != nil {
		return fmt.Errorf("trusted proxies: %w", err)
	}

	// One server per SQLite file: see store.LockExclusive.
	unlock, err := store.LockExclusive(c.databaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if err := unlock(); err != nil {
			log.Warn("release database lock", slog.Any("error", err))
		}
	}()
	st, err := store.Open(ctx, c.databaseURL, store.WithWALLimit(walLimit))
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("close database", slog.Any("error", err))
		}
	}()
	log.Info("database", slog.String("location", databaseLocation(c.databaseURL)))
	if !*noMigrate {
		if err := st.Migrate(ctx); err != nil {
			return err
		}
	}

	// The per-caller budgets; zero (unset) means auth's defaults.
	var rate, burst, userRate, userBurst float64
	for key, dst := range map[string]*float64{
		"SHOAL_API_KEY_RATE": &rate, "SHOAL_API_KEY_BURST": &burst,
		"SHOAL_USER_RATE": &userRate, "SHOAL_USER_BURST": &userBurst,
	} {
		if *dst, err = envFloat(getenv, key); err != nil {
			return err
		}
	}
	a, err := app.New(ctx, st, app.Config{
		Logger:      log,
		Version:     version,
		CORSOrigins: splitList(*cors),
		SigningKey:  getenv("SHOAL_JWT_SIGNING_KEY"),
		Auth:        auth.Config{APIKeyRate: rate, APIKeyBurst: int(burst), UserRate: userRate, UserBurst: int(userBurst)},
		TestClock:   getenv("SHOAL_TEST_CLOCK") == "1",

		SeparateMetrics: *metricsAddr != "",
		TrustedProxies:  proxies,
		Jobs:            jobs.Config{SweepEvery: *sweepEvery, PollInterval: *jobPoll},
		// Webhook targets on private, loopback and link-local addresses
		// are refused unless the operator allows them (a receiver on
		// the same private network).
		Webhooks: webhooks.Config{Guard: webhooks.Guard{AllowPrivate: getenv("SHOAL_WEBHOOK_ALLOW_PRIVATE") == "1"}},
	})
	if err != nil {
		return err
	}
	if email, password := getenv("SHOAL_ADMIN_EMAIL"), getenv("SHOAL_ADMIN_PASSWORD"); email != "" && password != "" {
		created, err := a.Org.EnsureAdmin(ctx, email, password)
		if err != nil {
			return fmt.Errorf("first admin: %w", err)
		}
		if created {
			log.Info("created the first admin from SHOAL_ADMIN_EMAIL", slog.String("email", email))
		}
	}
	if ok, err := a.Org.HasActiveAdmin(ctx); err != nil {
		return err
	} else if !ok {
		log.Warn("no admin yet; create one with", slog.String("command", createAdminCommand(c.databaseURL, getenv)))
	}
	srv := a.HTTP
	// The job queue works re-judges and, on the replica River elects
	// leader, enqueues the periodic sweep. Its context is not ctx: the
	// end of ctx starts the graceful shutdown below, which lets running
	// jobs finish, where a cancelled start context would cut them short.
	if err := a.Jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer func() {
		// On an early return; after a shutdown the queue is stopped
		// already and this does nothing. Before the store closes.
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if err := a.Jobs.Stop(stopCtx); err != nil {
			log.Warn("stop job queue", slog.Any("error", err))
		}
	}()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Metrics on a listener of their own stay off the public address: the
	// operator scrapes them from inside, and they say much about traffic.
	var ms *http.Server
	metricsErrc := make(chan error, 1)
	if *metricsAddr != "" {
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen for metrics: %w", err)
		}
		ms = &http.Server{
			Handler:           srv.MetricsHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		log.Info("serving metrics", slog.String("addr", mln.Addr().String()))
		fmt.Fprintf(stdout, "shoal metrics on http://%s/metrics\n", mln.Addr())
		go func() { metricsErrc <- ms.Serve(mln) }()
	}

	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("version", version))
	fmt.Fprintf(stdout, "shoal listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		if ms != nil {
			_ = ms.Close()
		}
		return fmt.Errorf("serve: %w", err)
	case err := <-metricsErrc:
		_ = hs.Close()
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	// Stop accepting, let in-flight requests finish, then close the database
	// (deferred above).
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if ms != nil {
		// Scrapes are short and retried; no need to drain them.
		_ = ms.Close()
	}
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	// Then the jobs: running ones finish (within the shutdown's time; one
	// cut short is run again later, by this or another replica).
	if err := a.Jobs.Stop(shutdownCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

func envFloat(getenv func(string) string, key string) (float64, error) {
	v := getenv(key)
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%s: want a non-negative number, got %q", key, v)
	}
	return f, nil
}

// envBytes reads a size in bytes; 0 when unset.
func envBytes(getenv func(string) string, key string) (int64, error) {
	v := getenv(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: want a positive number of bytes, got %q", key, v)
	}
	return n, nil
}

// parseCIDRs reads a comma-separated list of CIDRs; a bare address is
// taken as a range of one.
func parseCIDRs(list string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, p := range splitList(list) {
		if !strings.Contains(p, "/") {
			ip := net.ParseIP(p)
			if ip == nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an address", p)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
