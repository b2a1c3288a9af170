package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// child is a `shoal serve` in a process of its own (TestServeHelperProcess).
type child struct {
	addr   string
	cmd    *exec.Cmd
	exited chan error
}

func startChild(t *testing.T, url string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), serveHelperEnv+"=1", "SHOAL_DATABASE_URL="+url, "SHOAL_ADDR=127.0.0.1:0", "SHOAL_LOG_LEVEL=error"), env...)
	out, childOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = childOut
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	_ = childOut.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, exited: make(chan error, 1)}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = out.Close()
	})
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "shoal listening on "); ok {
			c.addr = a
			break
		}
	}
	if c.addr == "" {
		t.Fatalf("server did not start: %v %s", <-c.exited, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return c
}

// keyedCreate is one createLead attempt and what its client saw.
type keyedCreate struct {
	key, name string
	status    int // 0: no answer (the server died)
	body      []byte
}

func (k *keyedCreate) send(addr, token string) (int, []byte, http.Header, error) {
	body, _ := json.Marshal(map[string]any{"name": k.name})
	req, _ := http.NewRequest(http.MethodPost, addr+"/v1/leads", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", k.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return res.StatusCode, b, res.Header, nil
}

func loginToken(t *testing.T, addr string) string {
	t.Helper()
	res, err := http.Post(addr+"/v1/auth/login", "application/json",
		strings.NewReader(`{"email":"admin@example.com","password":"admin password 1"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct{ AccessToken string }
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 {
		t.Fatalf("login: %d %v", res.StatusCode, err)
	}
	return tok.AccessToken
}

// TestIdempotencyAfterKill9: keyed creates run against a server that is
// killed (SIGKILL) while they are in flight. After a restart, every key is
// retried: a create whose client had its answer replays exactly that
// answer; any other either replays (it had committed, with its answer) or
// runs now (it had not). Either way each lead exists exactly once: no
// change ever committed without its stored answer.
func TestIdempotencyAfterKill9(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := []string{"SHOAL_ADMIN_EMAIL=admin@example.com", "SHOAL_ADMIN_PASSWORD=admin password 1",
			"SHOAL_USER_RATE=100000", "SHOAL_USER_BURST=100000"}
		srv := startChild(t, url, env...)
		token := loginToken(t, srv.addr)
		prefix := "kill9-" + uuid.NewString()[:8] + "-"

		const workers, killAfter = 8, 40
		var (
			mu       sync.Mutex
			attempts []*keyedCreate
			answered atomic.Int64
			wg       sync.WaitGroup
			killOnce sync.Once
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					k := &keyedCreate{key: uuid.NewString(), name: fmt.Sprintf("%s%d-%d", prefix, w, i)}
					mu.Lock()
					attempts = append(attempts, k)
					mu.Unlock()
					status, body, _, err := k.send(srv.addr, token)
					if err != nil {
						return // the server is gone
					}
					k.status, k.body = status, body
					if answered.Add(1) == killAfter {
						killOnce.Do(func() { _ = srv.cmd.Process.Signal(syscall.SIGKILL) })
					}
				}
			}()
		}
		wg.Wait()
		<-srv.exited

		srv = startChild(t, url, env...)
		token = loginToken(t, srv.addr)
		replays, fresh := 0, 0
		for _, k := range attempts {
			status, body, h, err := k.send(srv.addr, token)
			if err != nil || status != http.StatusCreated {
				t.Fatalf("retry of %s: %d %s %v", k.name, status, body, err)
			}
			wasReplay := h.Get("Idempotent-Replayed") == "true"
			if k.status != 0 && (k.status != http.StatusCreated || !wasReplay || !bytes.Equal(k.body, body)) {
				t.Fatalf("%s was answered %d %s before the kill; the retry answered %d %s (replayed %v)", k.name, k.status, k.body, status, body, wasReplay)
			}
			if wasReplay {
				replays++
			} else {
				fresh++
			}
		}
		if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-srv.exited:
		case <-time.After(30 * time.Second):
			t.Fatal("server did not stop")
		}

		st, err := store.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rows, err := st.Reader.Lead.Query().Where(lead.NameHasPrefix(prefix)).All(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, r := range rows {
			count[r.Name]++
		}
		for _, k := range attempts {
			if count[k.name] != 1 {
				t.Errorf("%s exists %d times after its retry, want once", k.name, count[k.name])
			}
		}
		t.Logf("%d keyed creates, %d answered before the kill; after the restart %d replayed, %d ran anew", len(attempts), answered.Load(), replays, fresh)
	})
}
