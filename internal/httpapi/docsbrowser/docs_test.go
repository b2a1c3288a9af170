// Package docsbrowser_test opens the API reference (/docs) in a real
// headless Chromium: the page must render from the embedded Redoc under the
// page's own strict CSP, show an operation with its problem codes, and find
// another through the search box. It lives apart from internal/httpapi so
// that the browser driver is not linked into that package's tests.
package docsbrowser_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(apitest.Main(m)) }

// browser finds Chromium; without one the test is skipped, unless
// SHOAL_REQUIRE_BROWSER=1 (CI sets it, after installing Debian's chromium).
func browser(t *testing.T) string {
	for _, name := range []string{os.Getenv("SHOAL_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SHOAL_REQUIRE_BROWSER") == "1" {
		t.Fatal("SHOAL_REQUIRE_BROWSER=1 but no chromium found (apt-get install chromium)")
	}
	t.Skip("no chromium on this machine (apt-get install chromium); CI runs this test")
	return ""
}

// TestReferenceServed needs no browser: the page names the embedded script
// under its CSP, and the script is served whole, gzipped when asked.
func TestReferenceServed(t *testing.T) {
	env := apitest.New(t, testdb.SQLite(t))
	res, err := http.Get(env.URL + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-eval") {
		t.Fatalf("/docs: %d, CSP %q", res.StatusCode, csp)
	}
	m := regexp.MustCompile(`<script src="(/docs/redoc-[0-9.]+\.standalone\.js)">`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("/docs names no embedded script:\n%s", page)
	}
	for _, gz := range []bool{false, true} {
		req, _ := http.NewRequest("GET", env.URL+string(m[1]), nil)
		tr := &http.Transport{DisableCompression: true}
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = res.Body
		if gz {
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("asked for gzip, got %q", res.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		js, err := io.ReadAll(body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || len(js) < 500_000 || !strings.Contains(string(js), "Redoc") {
			t.Fatalf("script (gzip %v): %d, %d bytes, %v", gz, res.StatusCode, len(js), err)
		}
	}
}

func TestReferenceInBrowser(t *testing.T) {
	exe := browser(t)
	env := apitest.New(t, testdb.SQLite(t))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// A deadline on the whole walk, so a broken page fails instead of
	// hanging; it bounds the wait, it asserts nothing about speed.
	ctx, cancelT := context.WithTimeout(ctx, 6*time.Minute)
	defer cancelT()

	// Every console error, exception and CSP violation is a failure: the
	// page must work under its own policy.
	// Start the browser first: the console subscription needs its tab.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var (
		mu       sync.Mutex
		problems []string
	)
	go func() {
		for msg, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if (msg.IsException() || msg.Type == "error") && !blockedRedoclyLogo(msg.Text) {
				mu.Lock()
				problems = append(problems, msg.String())
				mu.Unlock()
			}
		}
	}()
	pageProblems := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}

	start := time.Now()
	const claim = `[data-section-id="operation/claimLead"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/docs#operation/claimLead"),
		chromedp.WaitVisible(claim),
	); err != nil {
		t.Fatalf("rendering claimLead: %v (page problems: %v)", err, pageProblems())
	}
	claimText, err := chromedp.Run(ctx, chromedp.Text(claim))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"claim", "409", "404", "Claim"} {
		if !strings.Contains(claimText, want) {
			t.Errorf("claimLead's section lacks %q:\n%s", want, claimText)
		}
	}
	t.Logf("%s: rendered", time.Since(start))
	// The 409 tab of its response samples shows the conflict codes, one
	// example each.
	tab409 := `//div[@data-section-id="operation/claimLead"]//li[@role="tab" and text()="409"]`
	if err := chromedp.Do(ctx, chromedp.Click(tab409)); err != nil {
		t.Fatalf("409 tab: %v", err)
	}
	samples, err := chromedp.Run(ctx, chromedp.Text(claim))
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"already_owned", "cap_exceeded", "claim_cooldown", "daily_limit_reached"} {
		if !strings.Contains(samples, code) {
			t.Errorf("claimLead's 409 samples lack %s:\n%s", code, samples)
		}
	}

	// The search box finds transferCustomer (Redoc indexes summaries and
	// descriptions, so the user types words, not the operationId). Type as
	// React sees typing: the native value setter, then an input event.
	const typeQuery = `(() => {
		const i = document.querySelector('input.search-input');
		Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(i, 'transfer customer');
		i.dispatchEvent(new Event('input', {bubbles: true}));
		return i.value;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](typeQuery)); err != nil {
		t.Fatalf("search box: %v", err)
	}
	const found = `!!document.querySelector('[data-role="search:results"] [data-item-id$="operation/transferCustomer"]')`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](found)); err != nil {
		v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('input.search-input').value`))
		t.Fatalf("search for %q found no transferCustomer: %v (page problems: %v)", v, err, pageProblems())
	}
	if p := pageProblems(); len(p) > 0 {
		t.Errorf("the page logged errors: %v", p)
	}
}

// blockedRedoclyLogo is the one error the page is expected to log: Redoc's
// "API docs by Redocly" footer points an image at Redocly's CDN, and the
// page's CSP refuses it, so the reference makes no third-party request.
func blockedRedoclyLogo(text string) bool {
	return strings.Contains(text, "https://cdn.redoc.ly/") && strings.Contains(text, "Content Security Policy")
}
