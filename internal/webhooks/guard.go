// Package webhooks is Shoal's outgoing webhooks: signed deliveries of domain
// events to the URLs subscribers register. This file and its siblings hold
// the parts that do not depend on storage or HTTP routing — the SSRF guard
// for target URLs, the signature scheme receivers verify, sealing of
// signing secrets at rest and the retry schedule. The service that stores
// subscriptions and runs deliveries is added later on top of them.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenTarget is wrapped by every refusal caused by where a URL
// points (a private, loopback, metadata… address), as opposed to its shape.
var ErrForbiddenTarget = errors.New("webhook target is not allowed")

// ErrBadURL is wrapped by every refusal caused by the URL's shape.
var ErrBadURL = errors.New("webhook url is not valid")

// maxURLLength bounds what we store and send; real endpoints are far shorter
// and an unbounded URL is only useful to someone probing us.
const maxURLLength = 2000

// Resolver is the part of *net.Resolver the guard needs; tests substitute a
// map so no real DNS is involved.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard decides whether Shoal may send requests to a URL. A webhook makes
// the server issue requests to addresses chosen by a user, so without it a
// subscriber could reach the cloud metadata service, the database or any
// other internal endpoint (server-side request forgery).
type Guard struct {
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// AllowPrivate turns the address checks off, for development setups
	// whose receivers run on localhost or a private network.
	AllowPrivate bool
}

func (g Guard) resolver() Resolver {
	if g.Resolver == nil {
		return net.DefaultResolver
	}
	return g.Resolver
}

// CheckURL refuses a webhook URL that is malformed (ErrBadURL) or that points,
// directly or through DNS, at an address Forbidden reports
// (ErrForbiddenTarget). It is the check made when a subscription is saved;
// because DNS can change afterwards, Client checks again at connect time.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > maxURLLength {
		return fmt.Errorf("%w: longer than %d characters", ErrBadURL, maxURLLength)
	}
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("%w: empty", ErrBadURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	if !u.IsAbs() {
		return fmt.Errorf("%w: %q is not an absolute URL", ErrBadURL, raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not http or https", ErrBadURL, u.Scheme)
	}
	if u.Opaque != "" {
		return fmt.Errorf("%w: %q has no host", ErrBadURL, raw)
	}
	// Credentials in the URL would be stored and shown in clear; receivers
	// authenticate deliveries by the signature instead.
	if u.User != nil {
		return fmt.Errorf("%w: user information (user:password@) is not allowed", ErrBadURL)
	}
	// A fragment is never sent to the server, so it can only mislead.
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%w: a fragment (#…) is not allowed", ErrBadURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: %q has no host", ErrBadURL, raw)
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return fmt.Errorf("%w: port %q is not valid", ErrBadURL, p)
		}
	}

	if addr, err := netip.ParseAddr(host); err == nil {
		if !g.AllowPrivate && Forbidden(addr) {
			return fmt.Errorf("%w: %s is %s", ErrForbiddenTarget, addr, describe(addr))
		}
		return nil
	}
	// Shorthand IPv4 forms such as 2130706433 or 0x7f.1 are not IP literals
	// to netip but some resolvers (inet_aton) turn them into 127.0.0.1; a
	// real host name never ends in a numeric label, so refuse them outright.
	if numericHost(host) {
		return fmt.Errorf("%w: host %q is numeric but not a canonical IP address", ErrBadURL, host)
	}

	addrs, err := g.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: cannot resolve %q: %w", ErrForbiddenTarget, host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %q resolves to no address", ErrForbiddenTarget, host)
	}
	if g.AllowPrivate {
		return nil
	}
	// Every address must pass: the dialer may pick any of them, and a name
	// mixing public and private addresses is a classic rebinding trick.
	for _, a := range addrs {
		if Forbidden(a) {
			return fmt.Errorf("%w: %q resolves to %s, %s", ErrForbiddenTarget, host, a.Unmap(), describe(a))
		}
	}
	return nil
}

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not numeric", p)
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return 0, fmt.Errorf("port %q is out of range", p)
		}
	}
	return n, nil
}

// numericHost reports whether host's last label is a number (decimal, octal
// or 0x-hex), which no registrable DNS name has.
func numericHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	digits := last
	if len(last) > 2 && (last[:2] == "0x" || last[:2] == "0X") {
		digits = last[2:]
		for _, c := range digits {
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
		return true
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var (
	// Prefixes that IsPrivate, IsLoopback, … in net/netip do not cover.
	prefixThisNetwork = netip.MustParsePrefix("0.0.0.0/8")      // "this network"; 0.0.0.0 reaches localhost on Linux
	prefixCGNAT       = netip.MustParsePrefix("100.64.0.0/10")  // carrier-grade NAT; also Alibaba's metadata 100.100.100.200
	prefixIETF        = netip.MustParsePrefix("192.0.0.0/24")   // IETF protocol assignments
	prefixBenchmark   = netip.MustParsePrefix("198.18.0.0/15")  // benchmarking, used inside some clouds
	prefixReserved    = netip.MustParsePrefix("240.0.0.0/4")    // reserved, includes 255.255.255.255
	prefixNAT64       = netip.MustParsePrefix("64:ff9b::/96")   // NAT64: the low 32 bits are an IPv4 address
	prefixLinkLocal4  = netip.MustParsePrefix("169.254.0.0/16") // link-local, includes metadata 169.254.169.254
)

// Forbidden reports whether a webhook must not be delivered to a: any
// address that is not ordinary public unicast — loopback, unspecified,
// private, link-local (including the cloud metadata address
// 169.254.169.254), carrier-grade NAT, IETF-reserved, benchmark, multicast,
// reserved and broadcast ranges — also when written as an IPv4-mapped IPv6
// address or reached through the NAT64 prefix 64:ff9b::/96.
func Forbidden(a netip.Addr) bool {
	return describe(a) != ""
}

// describe says why a is forbidden, or "" when it is allowed; error
// messages use it so that a refused subscriber learns the reason.
func describe(a netip.Addr) string {
	if !a.IsValid() {
		return "an invalid address"
	}
	a = a.WithZone("").Unmap()
	if a.Is6() && prefixNAT64.Contains(a) {
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if why := describe(v4); why != "" {
			return "a NAT64 form of " + v4.String() + ", " + why
		}
		return ""
	}
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsUnspecified(), prefixThisNetwork.Contains(a):
		return "an unspecified address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast(), prefixLinkLocal4.Contains(a):
		return "a link-local address"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case prefixCGNAT.Contains(a):
		return "a carrier-grade NAT address"
	case prefixIETF.Contains(a):
		return "an IETF protocol address"
	case prefixBenchmark.Contains(a):
		return "a benchmarking address"
	case prefixReserved.Contains(a):
		return "a reserved or broadcast address"
	}
	return ""
}

// Client returns the HTTP client deliveries are sent with. Its dialer checks
// the address it actually connects to, so a name that passed CheckURL and
// was then re-pointed at an internal address (DNS rebinding) is still
// refused; such errors wrap ErrForbiddenTarget. Redirects are not followed,
// since a public receiver could otherwise bounce the request inward and
// because the 3xx itself is the delivery's answer. Environment proxies are
// ignored: a proxy would connect on our behalf, out of the dialer's sight.
func (g Guard) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			if g.AllowPrivate {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot check address %q: %w", ErrForbiddenTarget, address, err)
			}
			if Forbidden(ap.Addr()) {
				return fmt.Errorf("%w: connecting to %s, %s", ErrForbiddenTarget, ap.Addr().Unmap(), describe(ap.Addr()))
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		// Subscribers are many and mostly quiet; idle connections to them
		// should not pile up.
		IdleConnTimeout: 30 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
