package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jonboulle/clockwork"
)

func TestBuiltinKeyLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // New creates it
	a1 := newAuth(t, Config{DataDir: dir})
	path := filepath.Join(dir, BuiltinKeyFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", info.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".issuer-key-*")); len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
	before, _ := os.ReadFile(path)

	tok, err := a1.Mint("alice", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["kid"] != a1.builtin.kid || parsed.Header["alg"] != "ES256" {
		t.Fatalf("header %v", parsed.Header)
	}
	if iss, _ := parsed.Claims.GetIssuer(); iss != BuiltinIssuer {
		t.Fatalf("iss %q", iss)
	}

	// A restart loads the same key: earlier tokens stay valid.
	a2 := newAuth(t, Config{DataDir: dir})
	if a2.builtin.kid != a1.builtin.kid {
		t.Fatal("kid changed across restarts")
	}
	if id, err := a2.Verify(context.Background(), tok); err != nil || id.Subject != "alice" {
		t.Fatalf("restarted verify: %+v %v", id, err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("key file rewritten on restart")
	}
}

func TestBuiltinKeyErrors(t *testing.T) {
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the data dir
	}{
		{"garbage key file", withKeyFile([]byte("not a key"))},
		{"empty key file", withKeyFile(nil)},
		{"truncated pem", withKeyFile(pemOf("PRIVATE KEY", []byte{0x30, 0x82}))},
		{"rsa key", withKeyFile(pemOf("PRIVATE KEY", rsaDER))},
		{"certificate instead of key", withKeyFile(pemOf("CERTIFICATE", []byte{1, 2, 3}))},
		{"key path is a directory", func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, BuiltinKeyFile), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"data dir is a file", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}},
		{"data dir under a file", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "data")
		}},
		{"unreadable key file", func(t *testing.T) string {
			if os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			dir := withKeyFile(nil)(t)
			if err := os.Chmod(filepath.Join(dir, BuiltinKeyFile), 0); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"unwritable data dir", func(t *testing.T) string {
			if os.Geteuid() == 0 {
				t.Skip("root writes anywhere")
			}
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
			return dir
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			var before []byte
			keyPath := filepath.Join(dir, BuiltinKeyFile)
			if info, err := os.Stat(keyPath); err == nil && info.Mode().IsRegular() {
				before, _ = os.ReadFile(keyPath)
			}
			if _, err := New(t.Context(), Config{DataDir: dir}); err == nil {
				t.Fatal("New accepted it")
			}
			if _, err := MintBuiltin(dir, "alice", time.Hour, false); err == nil {
				t.Fatal("MintBuiltin accepted it")
			}
			if before != nil {
				after, _ := os.ReadFile(keyPath)
				if !bytes.Equal(before, after) {
					t.Fatal("key file was replaced")
				}
			}
		})
	}
}

func withKeyFile(data []byte) func(t *testing.T) string {
	return func(t *testing.T) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, BuiltinKeyFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
}

func TestBuiltinAcceptsOperatorKeys(t *testing.T) {
	sec1, err := x509.MarshalECPrivateKey(ecKey())
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ecKey())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"sec1":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	} {
		t.Run(name, func(t *testing.T) {
			a := newAuth(t, Config{DataDir: withKeyFile(data)(t)})
			if !a.builtin.priv.Equal(ecKey()) {
				t.Fatal("loaded a different key")
			}
		})
	}
}

// Two processes starting on an empty data dir must agree on one key.
func TestBuiltinConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	keys := make([]*builtinKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := loadOrCreateKey(dir)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k == nil || keys[0] == nil || k.kid != keys[0].kid {
			t.Fatal("processes ended up with different keys")
		}
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	for _, k := range []*ecdsa.PrivateKey{ecKey(), ecKey2()} {
		got, err := thumbprint(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		// Independently: jwkset's coordinates, canonicalized by
		// encoding/json (which sorts map keys, as RFC 7638 requires).
		jwk, err := jwkset.NewJWKFromKey(&k.PublicKey, jwkset.JWKOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := jwk.Marshal()
		canonical, _ := json.Marshal(map[string]string{"crv": string(m.CRV), "kty": string(m.KTY), "x": m.X, "y": m.Y})
		sum := sha256.Sum256(canonical)
		if want := base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
			t.Fatalf("thumbprint %q, want %q", got, want)
		}
	}
}

func TestMintBuiltin(t *testing.T) {
	dir := t.TempDir()
	// Only the server makes the key: minting in a folder without one fails
	// and leaves it without one.
	if _, err := MintBuiltin(dir, "pastor-john", time.Hour, false); !errors.Is(err, ErrNoKey) {
		t.Fatalf("minting without a key: %v, want ErrNoKey", err)
	}
	if _, err := os.Stat(filepath.Join(dir, BuiltinKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("minting created a key: %v", err)
	}
	a := newAuth(t, Config{DataDir: dir, Clock: clockwork.NewRealClock()})
	tok, err := MintBuiltin(dir, "pastor-john", 24*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "pastor-john" || id.Processor || time.Until(id.ExpiresAt) < 23*time.Hour {
		t.Fatalf("identity %+v", id)
	}
	ptok, err := MintBuiltin(dir, "engine", time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Verify(context.Background(), ptok); err != nil || !id.Processor {
		t.Fatalf("processor token: %+v %v", id, err)
	}
	if _, err := MintBuiltin(dir, "", time.Hour, false); err == nil {
		t.Fatal("minted without sub")
	}
	if _, err := MintBuiltin("", "x", time.Hour, false); err == nil {
		t.Fatal("minted without data dir")
	}
}
