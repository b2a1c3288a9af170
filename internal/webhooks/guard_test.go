package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestForbidden(t *testing.T) {
	tests := []struct {
		addr      string
		forbidden bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.0.1", true},
		{"fd00::1", true},
		{"fc00::1", true},
		{"169.254.169.254", true},
		{"169.254.0.1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"100.64.0.1", true},
		{"100.100.100.200", true},
		{"100.127.255.255", true},
		{"192.0.0.170", true},
		{"198.18.0.1", true},
		{"198.19.255.255", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"ff0e::1", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"64:ff9b::a00:1", true},     // 10.0.0.1
		{"64:ff9b::7f00:1", true},    // 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true}, // 169.254.169.254
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"93.184.216.34", false},
		{"2001:4860:4860::8888", false},
		{"172.32.0.1", false},
		{"172.15.255.255", false},
		{"100.128.0.1", false},
		{"100.63.255.255", false},
		{"198.20.0.1", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::808:808", false}, // 8.8.8.8 through NAT64
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := Forbidden(a); got != tt.forbidden {
				t.Errorf("Forbidden(%s) = %v, want %v", tt.addr, got, tt.forbidden)
			}
		})
	}
	if !Forbidden(netip.Addr{}) {
		t.Error("the zero Addr must be forbidden")
	}
}

// fakeResolver answers from a map; unknown names fail like NXDOMAIN.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	addrs := make([]netip.Addr, len(ss))
	for i, s := range ss {
		addrs[i] = netip.MustParseAddr(s)
	}
	return addrs, nil
}

func TestCheckURL(t *testing.T) {
	dns := fakeResolver{
		"intranet.example":  {"10.0.0.5"},
		"mixed.example":     {"8.8.8.8", "10.0.0.1"},
		"hooks.example.com": {"93.184.216.34"},
		"v6.example":        {"2001:4860:4860::8888"},
		"mapped.example":    {"::ffff:169.254.169.254"},
		"empty.example":     {},
		"x.example":         {"93.184.216.34"},
	}
	long := "https://hooks.example.com/"
	for len(long) <= maxURLLength {
		long += "a"
	}
	tests := []struct {
		name    string
		guard   Guard
		url     string
		wantErr error // nil means allowed
	}{
		{"public https", Guard{Resolver: dns}, "https://hooks.example.com/x", nil},
		{"public with port and query", Guard{Resolver: dns}, "http://hooks.example.com:8443/x?y=1", nil},
		{"public IPv6 name", Guard{Resolver: dns}, "https://v6.example/", nil},
		{"public IP literal", Guard{Resolver: dns}, "https://93.184.216.34/x", nil},
		{"private name", Guard{Resolver: dns}, "http://intranet.example/hook", ErrForbiddenTarget},
		{"mixed public and private", Guard{Resolver: dns}, "https://mixed.example/", ErrForbiddenTarget},
		{"mapped metadata", Guard{Resolver: dns}, "https://mapped.example/", ErrForbiddenTarget},
		{"resolves to nothing", Guard{Resolver: dns}, "https://empty.example/", ErrForbiddenTarget},
		{"does not resolve", Guard{Resolver: dns}, "https://nxdomain.example/", ErrForbiddenTarget},
		{"localhost real DNS", Guard{}, "http://localhost:8080/", ErrForbiddenTarget},
		{"loopback literal", Guard{Resolver: dns}, "http://127.0.0.1/", ErrForbiddenTarget},
		{"metadata literal", Guard{Resolver: dns}, "http://169.254.169.254/latest/meta-data/", ErrForbiddenTarget},
		{"IPv6 loopback literal", Guard{Resolver: dns}, "http://[::1]:80/", ErrForbiddenTarget},
		{"IPv4-mapped literal", Guard{Resolver: dns}, "http://[::ffff:127.0.0.1]/", ErrForbiddenTarget},
		{"NAT64 literal", Guard{Resolver: dns}, "http://[64:ff9b::a00:1]/", ErrForbiddenTarget},
		{"allow private name", Guard{Resolver: dns, AllowPrivate: true}, "http://intranet.example/hook", nil},
		{"allow private literal", Guard{Resolver: dns, AllowPrivate: true}, "http://10.0.0.5/", nil},
		{"allow private still needs an address", Guard{Resolver: dns, AllowPrivate: true}, "http://empty.example/", ErrForbiddenTarget},
		{"ftp", Guard{Resolver: dns}, "ftp://hooks.example.com/x", ErrBadURL},
		{"javascript", Guard{Resolver: dns}, "javascript:alert(1)", ErrBadURL},
		{"not a url", Guard{Resolver: dns}, "not a url", ErrBadURL},
		{"empty", Guard{Resolver: dns}, "", ErrBadURL},
		{"userinfo", Guard{Resolver: dns}, "http://user:pw@x.example/", ErrBadURL},
		{"user only", Guard{Resolver: dns}, "http://user@x.example/", ErrBadURL},
		{"relative", Guard{Resolver: dns}, "/hooks/x", ErrBadURL},
		{"scheme relative", Guard{Resolver: dns}, "//x.example/hook", ErrBadURL},
		{"empty host", Guard{Resolver: dns}, "http:///hook", ErrBadURL},
		{"opaque", Guard{Resolver: dns}, "http:x.example", ErrBadURL},
		{"fragment", Guard{Resolver: dns}, "https://x.example/hook#frag", ErrBadURL},
		{"empty fragment", Guard{Resolver: dns}, "https://x.example/hook#", ErrBadURL},
		{"too long", Guard{Resolver: dns}, long, ErrBadURL},
		{"port zero", Guard{Resolver: dns}, "https://x.example:0/", ErrBadURL},
		{"port too big", Guard{Resolver: dns}, "https://x.example:70000/", ErrBadURL},
		{"decimal IPv4", Guard{Resolver: dns}, "http://2130706433/", ErrBadURL},
		{"hex IPv4", Guard{Resolver: dns}, "http://0x7f.1/", ErrBadURL},
		{"short IPv4", Guard{Resolver: dns}, "http://127.1/", ErrBadURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guard.CheckURL(context.Background(), tt.url)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckURL(%q) = %v, want %v", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestCheckURLSaysWhy(t *testing.T) {
	g := Guard{Resolver: fakeResolver{"intranet.example": {"10.0.0.1"}}}
	err := g.CheckURL(context.Background(), "http://intranet.example/")
	want := `webhook target is not allowed: "intranet.example" resolves to 10.0.0.1, a private address`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestClientRefusesForbiddenDial(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	tests := []struct {
		name         string
		allowPrivate bool
		wantRefused  bool
	}{
		{"private refused", false, true},
		{"private allowed", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Guard{AllowPrivate: tt.allowPrivate}.Client(5 * time.Second)
			defer c.CloseIdleConnections()
			before := hits.Load()
			resp, err := c.Get(srv.URL)
			if tt.wantRefused {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET %s succeeded, want refusal", srv.URL)
				}
				if !errors.Is(err, ErrForbiddenTarget) {
					t.Fatalf("error = %v, want one wrapping ErrForbiddenTarget", err)
				}
				if hits.Load() != before {
					t.Fatal("the server was reached")
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status = %d, want 204", resp.StatusCode)
			}
			if hits.Load() != before+1 {
				t.Fatal("the server was not reached")
			}
		})
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/inner", http.StatusFound)
	}))
	defer redirector.Close()

	c := Guard{AllowPrivate: true}.Client(5 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(redirector.URL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status = %d, want 302", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != target.URL+"/inner" {
		t.Fatalf("Location = %q", loc)
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target hit %d times, want 0", n)
	}
}

func TestClientSettings(t *testing.T) {
	c := Guard{}.Client(7 * time.Second)
	if c.Timeout != 7*time.Second {
		t.Errorf("Timeout = %v", c.Timeout)
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T", c.Transport)
	}
	if tr.Proxy != nil {
		t.Error("Proxy must be nil so environment proxies are not used")
	}
	if tr.IdleConnTimeout <= 0 || tr.IdleConnTimeout > time.Minute {
		t.Errorf("IdleConnTimeout = %v", tr.IdleConnTimeout)
	}
	if tr.MaxIdleConnsPerHost <= 0 || tr.MaxIdleConnsPerHost > 8 {
		t.Errorf("MaxIdleConnsPerHost = %d", tr.MaxIdleConnsPerHost)
	}
}
