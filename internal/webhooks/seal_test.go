package webhooks

import (
	"bytes"
	"testing"
)

func testSealer(t *testing.T) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := testSealer(t)
	for _, plain := range []string{"whsec_abc", "", "ünïcode"} {
		sealed, err := s.Seal(plain, []byte("wh_1"))
		if err != nil {
			t.Fatal(err)
		}
		if plain != "" && bytes.Contains(sealed, []byte(plain)) {
			t.Fatalf("sealed value contains the plaintext")
		}
		got, err := s.Open(sealed, []byte("wh_1"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got != plain {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
	}
	a, _ := s.Seal("same", nil)
	b, _ := s.Seal("same", nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same value are equal; the nonce is not random")
	}
}

func TestOpenRefuses(t *testing.T) {
	s := testSealer(t)
	sealed, err := s.Seal("whsec_abc", []byte("wh_1"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSealer(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sealer  *Sealer
		sealed  []byte
		context []byte
	}{
		{"other context", s, sealed, []byte("wh_2")},
		{"no context", s, sealed, nil},
		{"tampered nonce", s, flip(sealed, 0), []byte("wh_1")},
		{"tampered ciphertext", s, flip(sealed, 12), []byte("wh_1")},
		{"tampered tag", s, flip(sealed, len(sealed)-1), []byte("wh_1")},
		{"truncated", s, sealed[:len(sealed)-1], []byte("wh_1")},
		{"too short", s, sealed[:5], []byte("wh_1")},
		{"empty", s, nil, []byte("wh_1")},
		{"other key", other, sealed, []byte("wh_1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.sealer.Open(tt.sealed, tt.context); err == nil {
				t.Fatalf("Open succeeded with %q", got)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestNewSealerKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
	}
}
