package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// result is one wrk run against one server.
type result struct {
	op       string // create, create×16, get, list
	server   string
	run      int
	load1    string // 1-minute load average when the run started
	reqs     int64
	rps      float64
	p50, p99 float64 // ms
	non2xx   int64
	sockErr  int64
	cpuMs    float64 // server process CPU per request
	dbCPUMs  float64 // database server CPU per request, or -1 (embedded)
}

// wrkOut is the line peer.lua's done() prints after "PEER ".
type wrkOut struct {
	Requests      int64   `json:"requests"`
	DurationUs    int64   `json:"durationUs"`
	P50Us         float64 `json:"p50Us"`
	P99Us         float64 `json:"p99Us"`
	Non2xx        int64   `json:"non2xx"`
	ConnectErrors int64   `json:"connectErrors"`
	ReadErrors    int64   `json:"readErrors"`
	WriteErrors   int64   `json:"writeErrors"`
	Timeouts      int64   `json:"timeouts"`
}

// measure runs wrk once and returns what it saw. Any non-2xx answer or
// socket error is an error: the figures of a run that failed requests
// would compare failures, not work.
func measure(ctx context.Context, c config, script string, s *server, op string, users, run int, tag string) (*result, error) {
	tokens, err := s.tokensFor(ctx, users)
	if err != nil {
		return nil, err
	}
	tokFile := filepath.Join(filepath.Dir(script), s.name+".tokens")
	if err := os.WriteFile(tokFile, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	label := op
	if users > 1 {
		label = fmt.Sprintf("%s, %d users", op, users)
	}
	flavor := "shoal"
	if !s.isShoal() {
		flavor = "pb"
	}

	load := loadAvg1()
	cpu0, err := procCPU(s.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	var db0 int64
	if s.dbCPU != nil {
		if db0, err = s.dbCPU(); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, "wrk",
		"-t", strconv.Itoa(c.threads), "-c", strconv.Itoa(c.connections), "-d", c.duration.String(),
		"--timeout", "10s", "-s", script, s.base, "--", op, flavor, tag, tokFile, s.idsFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s %s run %d: wrk: %w\n%s", s.name, label, run, err, out)
	}
	cpu1, err := procCPU(s.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	var w wrkOut
	var bad string
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if j, ok := strings.CutPrefix(line, "PEER "); ok {
			if err := json.Unmarshal([]byte(j), &w); err != nil {
				return nil, fmt.Errorf("wrk summary %q: %w", j, err)
			}
			found = true
		}
		if b, ok := strings.CutPrefix(line, "PEERBAD "); ok {
			bad = b
		}
	}
	if !found || w.Requests == 0 || w.DurationUs == 0 {
		return nil, fmt.Errorf("%s %s run %d: no requests completed; wrk said:\n%s", s.name, label, run, out)
	}
	r := &result{
		op: label, server: s.name, run: run, load1: load,
		reqs:    w.Requests,
		rps:     float64(w.Requests) / (float64(w.DurationUs) / 1e6),
		p50:     w.P50Us / 1000,
		p99:     w.P99Us / 1000,
		non2xx:  w.Non2xx,
		sockErr: w.ConnectErrors + w.ReadErrors + w.WriteErrors + w.Timeouts,
		cpuMs:   ticksToMs(cpu1-cpu0) / float64(w.Requests),
		dbCPUMs: -1,
	}
	if s.dbCPU != nil {
		db1, err := s.dbCPU()
		if err != nil {
			return nil, err
		}
		r.dbCPUMs = ticksToMs(db1-db0) / float64(w.Requests)
	}
	if r.non2xx > 0 || r.sockErr > 0 {
		return r, fmt.Errorf("%s %s run %d: %d non-2xx answers and %d socket errors (connect %d, read %d, write %d, timeout %d); first non-2xx: %s",
			s.name, label, run, r.non2xx, r.sockErr, w.ConnectErrors, w.ReadErrors, w.WriteErrors, w.Timeouts, bad)
	}
	return r, nil
}

// Linux reports process times in USER_HZ, which is 100 on every
// architecture Go supports.
func ticksToMs(t int64) float64 { return float64(t) * 10 }

type stat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// readStat reads /proc/PID/stat. The command name may contain spaces and
// parentheses, so the fields are counted from the last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After ')': state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return stat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return stat{ppid: int(n(4)), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17)}, nil
}

func procCPU(pid int) (int64, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	return st.utime + st.stime, nil
}

func loadAvg1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func (r result) line() string {
	db := ""
	if r.dbCPUMs >= 0 {
		db = fmt.Sprintf(" + db %.2f", r.dbCPUMs)
	}
	return fmt.Sprintf("%-8s %-16s run %d  load %s  %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %d  CPU %.2f%s ms/req",
		r.server, r.op, r.run, r.load1, r.rps, r.p50, r.p99, r.non2xx, r.cpuMs, db)
}

// printTable prints every run as one Markdown table, ready for
// docs/performance.md.
func printTable(c config, rs []result) {
	if len(rs) == 0 {
		return
	}
	fmt.Printf("\nwrk -t%d -c%d -d%s, %d seeded leads per server, %d run(s)\n\n", c.threads, c.connections, c.duration, c.rows, c.runs)
	fmt.Println("| operation | server | run | load1 at start | req/s | p50 ms | p99 ms | non-2xx | server CPU ms/req | PostgreSQL CPU ms/req |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		db := "—"
		if r.dbCPUMs >= 0 {
			db = fmt.Sprintf("%.2f", r.dbCPUMs)
		}
		fmt.Printf("| %s | %s | %d | %s | %.0f | %.2f | %.2f | %d | %.2f | %s |\n",
			r.op, r.server, r.run, r.load1, r.rps, r.p50, r.p99, r.non2xx, r.cpuMs, db)
	}
}
