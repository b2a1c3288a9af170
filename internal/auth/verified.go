package auth

import (
	"sync"
	"time"
)

// maxVerifiedTokens bounds the verified-token cache: about one token per
// signed-in client (a token lives AccessTokenTTL), a few hundred bytes
// each.
const maxVerifiedTokens = 1 << 14

// verifiedToken is what a verified access token said.
type verifiedToken struct {
	token AccessToken
	kid   string
	until time.Time // when the parser would start refusing it
}

// verifiedTokens remembers the tokens whose signature and claims checked
// out, keyed by the SHA-256 of the token's bytes.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[[32]byte]verifiedToken
}

func (c *verifiedTokens) get(sum [32]byte) (verifiedToken, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[sum]
	return v, ok
}

// put remembers v. When the cache is full it first drops the tokens that
// have expired by now, and if that frees too little, all of them: the
// next request of each client then pays for one full check.
func (c *verifiedTokens) put(sum [32]byte, v verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]verifiedToken{}
	}
	if len(c.m) >= maxVerifiedTokens {
		for k, old := range c.m {
			if !now.Before(old.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxVerifiedTokens*3/4 {
			clear(c.m)
		}
	}
	c.m[sum] = v
}
