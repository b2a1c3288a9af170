// Command peer runs Shoal and PocketBase side by side under the same wrk load
// and prints one table: requests per second, latency, non-2xx answers and
// server CPU per request. It is run by hand through `make bench-peer`, never
// by the tests. docs/performance.md says what it measures and how to read it.
//
// Both servers start on fresh data in a temp directory, are seeded to the
// same number of comparable leads, and are then measured in turn, one
// operation at a time (PocketBase create, Shoal create, PocketBase get, …),
// so that a change in the machine's load hits both rather than one.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed peer.lua
var luaScript []byte

const (
	adminEmail    = "admin@bench.example.com"
	adminPassword = "bench admin password 1"
	userPassword  = "bench user password 1"
)

type config struct {
	duration    time.Duration
	connections int
	threads     int
	rows        int
	runs        int
	users       int
	postgres    bool
	pbVersion   string
	pbDir       string
	keep        bool
}

func main() {
	var c config
	flag.DurationVar(&c.duration, "duration", 15*time.Second, "length of each wrk run")
	flag.IntVar(&c.connections, "connections", 50, "wrk connections (-c)")
	flag.IntVar(&c.threads, "threads", 2, "wrk threads (-t)")
	flag.IntVar(&c.rows, "rows", 50000, "leads seeded into each server before the runs")
	flag.IntVar(&c.runs, "runs", 2, "runs of each (operation, server)")
	flag.IntVar(&c.users, "users", 16, "users whose tokens the create-Nusers runs rotate through (0 or 1: skip those runs)")
	flag.BoolVar(&c.postgres, "postgres", true, "also run Shoal on a throwaway PostgreSQL cluster")
	flag.StringVar(&c.pbVersion, "pb-version", "v0.39.11", "PocketBase version to build from the Go module proxy")
	flag.StringVar(&c.pbDir, "pb-dir", "", "where the PocketBase binary is built and kept between runs (default: the user cache dir)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temp directory (data, server logs) after the run")
	flag.Parse()
	if c.runs < 1 || c.runs > 9 || c.rows < 1 || c.threads < 1 || c.threads > 99 || c.connections < c.threads {
		fmt.Fprintln(os.Stderr, "peer: want 1 ≤ runs ≤ 9, rows ≥ 1, 1 ≤ threads ≤ 99, connections ≥ threads")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "\npeer: FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) (err error) {
	if _, err := lookPath("wrk"); err != nil {
		return errors.New("wrk not found: install the Debian package (apt-get install -y wrk), or run `make bench-peer`, which does so as root")
	}
	if c.pbDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no cache dir for the PocketBase build, pass -pb-dir: %w", err)
		}
		c.pbDir = filepath.Join(cache, "shoal-peer", "pocketbase-"+c.pbVersion)
	}
	tmp, err := os.MkdirTemp("", "shoal-peer-")
	if err != nil {
		return err
	}
	defer func() {
		if c.keep || err != nil {
			fmt.Println("kept", tmp)
			return
		}
		_ = os.RemoveAll(tmp)
	}()
	script := filepath.Join(tmp, "peer.lua")
	if err := os.WriteFile(script, luaScript, 0o644); err != nil {
		return err
	}

	step("build shoal")
	shoalBin := filepath.Join(tmp, "shoal")
	if err := runCmd(ctx, nil, "go", "build", "-o", shoalBin, "./cmd/shoal"); err != nil {
		return fmt.Errorf("build shoal (run from the repository root): %w", err)
	}
	pbBin, err := buildPocketBase(ctx, c.pbDir, c.pbVersion)
	if err != nil {
		return err
	}

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()

	step("start PocketBase " + c.pbVersion)
	pb, err := startPocketBase(ctx, pbBin, filepath.Join(tmp, "pb"))
	if err != nil {
		return err
	}
	servers = append(servers, pb)

	step("start Shoal on SQLite")
	sq, err := startShoal(ctx, "shoal", shoalBin, "sqlite:"+filepath.Join(tmp, "shoal.db"), filepath.Join(tmp, "shoal-sqlite.log"))
	if err != nil {
		return err
	}
	servers = append(servers, sq)

	if c.postgres {
		step("start a throwaway PostgreSQL cluster and Shoal on it")
		pg, err := startPostgres(ctx)
		if err != nil {
			return err
		}
		defer pg.stop()
		sp, err := startShoal(ctx, "shoal-pg", shoalBin, pg.url, filepath.Join(tmp, "shoal-pg.log"))
		if err != nil {
			return err
		}
		sp.dbCPU = pg.cpuTicks
		servers = append(servers, sp)
	}

	for _, s := range servers {
		if err := s.prepare(ctx, c.users); err != nil {
			return fmt.Errorf("%s: prepare: %w", s.name, err)
		}
	}
	for _, s := range servers {
		step(fmt.Sprintf("seed %s with %d leads", s.name, c.rows))
		t0 := time.Now()
		ids, err := s.seed(ctx, c.rows)
		if err != nil {
			return fmt.Errorf("%s: seed: %w", s.name, err)
		}
		fmt.Printf("    %d leads in %.1f s\n", len(ids), time.Since(t0).Seconds())
		s.idsFile = filepath.Join(tmp, s.name+".ids")
		if err := os.WriteFile(s.idsFile, []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}

	// The order of measurement: each operation on every server in turn,
	// then the next operation; all of it once per run.
	type job struct {
		op    string // create, get or list
		users int    // tokens rotated through
		s     *server
	}
	var jobs []job
	for _, op := range []string{"create", "get", "list"} {
		for _, s := range servers {
			if s.isShoal() && s.name == "shoal-pg" && op != "create" {
				continue // the PostgreSQL variant measures createLead only
			}
			jobs = append(jobs, job{op, 1, s})
		}
	}
	if c.users > 1 {
		for _, s := range servers {
			if s.isShoal() {
				jobs = append(jobs, job{"create", c.users, s})
			}
		}
	}

	var results []result
	defer func() { printTable(c, results) }()
	for r := 1; r <= c.runs; r++ {
		for _, j := range jobs {
			if err := ctx.Err(); err != nil {
				return err
			}
			tag := "000" // get and list create nothing
			if j.op == "create" {
				// Unique per (run, variant) on one server; the seed uses 000.
				v := 1
				if j.users > 1 {
					v = 2
				}
				tag = fmt.Sprintf("%02d%d", r, v)
			}
			res, err := measure(ctx, c, script, j.s, j.op, j.users, r, tag)
			if res != nil {
				results = append(results, *res)
				fmt.Println("    " + res.line())
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func step(s string) { fmt.Printf("== %s (%s)\n", s, time.Now().Format("15:04:05")) }
