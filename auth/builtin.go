package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pentecost/pentecost"
)

// BuiltinIssuer is the `iss` of tokens the built-in issuer signs.
const BuiltinIssuer = "pentecost"

// BuiltinKeyFile is the name of the built-in issuer's key in the data dir.
const BuiltinKeyFile = "issuer-key.pem"

type builtinKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// checkBuiltinConfig refuses settings the built-in issuer cannot honour:
// tokens minted by `pentecost token` carry iss "pentecost" and no aud, so a
// configured issuer or audience would make the server reject its own tokens.
// Failing at start beats a confusing UNAUTHORIZED later.
func checkBuiltinConfig(cfg Config) error {
	if cfg.Issuer != "" && cfg.Issuer != BuiltinIssuer {
		return fmt.Errorf("auth: jwt issuer %q is set but neither a jwks url nor a secret is; the built-in issuer's tokens have iss %q",
			cfg.Issuer, BuiltinIssuer)
	}
	if cfg.Audience != "" {
		return errors.New("auth: jwt audience is set but neither a jwks url nor a secret is; the built-in issuer's tokens have no audience")
	}
	if cfg.DataDir == "" {
		return errors.New("auth: the built-in issuer needs a data dir")
	}
	return nil
}

// verificationKey accepts a token without a kid too: the built-in issuer has
// one key, and hand-made tokens for tests often omit the header.
func (k *builtinKey) verificationKey(alg, kid string) (any, *pentecost.Error) {
	if alg != jwt.SigningMethodES256.Alg() {
		return nil, unauthorized(msgAlgorithm)
	}
	if kid != "" && kid != k.kid {
		return nil, unauthorized(msgUnknownKey)
	}
	return &k.priv.PublicKey, nil
}

// ErrNoKey is returned by MintBuiltin when the data dir holds no built-in
// issuer key: the server makes it on its first start, and a token signed
// with any other key would be refused.
var ErrNoKey = errors.New("auth: no built-in issuer key")

// loadKey reads the built-in issuer's key from dataDir.
func loadKey(dataDir string) (*builtinKey, error) {
	if dataDir == "" {
		return nil, errors.New("auth: the built-in issuer needs a data dir")
	}
	path := filepath.Join(dataDir, BuiltinKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w at %s", ErrNoKey, path)
	case err != nil:
		return nil, fmt.Errorf("auth: read built-in issuer key: %w", err)
	}
	return parseKey(path, data)
}

// loadOrCreateKey never overwrites an existing file: replacing the key would
// silently invalidate every token already handed out, so a file that cannot
// be read or parsed is an error for the operator to resolve.
func loadOrCreateKey(dataDir string) (*builtinKey, error) {
	k, err := loadKey(dataDir)
	if !errors.Is(err, ErrNoKey) {
		return k, err
	}
	path := filepath.Join(dataDir, BuiltinKeyFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: create data dir for the built-in issuer key: %w", err)
	}
	return createKey(path)
}

func createKey(path string) (*builtinKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate built-in issuer key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("auth: encode built-in issuer key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	won, err := writeNewFile(path, data)
	if err != nil {
		return nil, fmt.Errorf("auth: write built-in issuer key: %w", err)
	}
	if !won {
		// Another process (`pentecost token` next to a starting server)
		// created the key first; both must end up with the same one.
		existing, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth: read built-in issuer key: %w", err)
		}
		return parseKey(path, existing)
	}
	return newBuiltinKey(priv)
}

// writeNewFile creates path with data, mode 0600, unless it exists (won is
// then false). The file is written under a temporary name and hard-linked
// into place, so that a concurrent reader never sees a half-written key and
// a crash never leaves one behind to be reported as corrupt.
func writeNewFile(path string, data []byte) (won bool, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".issuer-key-*.tmp")
	if err != nil {
		return false, err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}

	err = os.Link(tmpName, path)
	switch {
	case err == nil:
		syncDir(dir)
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	// Some volumes (network or FUSE mounts) have no hard links; exclusive
	// create still never replaces a key, at the cost of the atomicity.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}

// syncDir makes the new directory entry durable; not every filesystem
// supports it, and the key is already written, so failures are ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// parseKey accepts PKCS#8 ("PRIVATE KEY", what we write) and SEC 1
// ("EC PRIVATE KEY", what `openssl ecparam -genkey` writes) so an operator
// can bring their own key.
func parseKey(path string, data []byte) (*builtinKey, error) {
	corrupt := func(why string, err error) error {
		if err != nil {
			return fmt.Errorf("auth: built-in issuer key %s is corrupt (%s): %w; restore it, or delete it to issue a new key (which invalidates every token issued so far)", path, why, err)
		}
		return fmt.Errorf("auth: built-in issuer key %s is corrupt (%s); restore it, or delete it to issue a new key (which invalidates every token issued so far)", path, why)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, corrupt("no PEM block", nil)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, corrupt(fmt.Sprintf("PEM block is %q", block.Type), nil)
	}
	if err != nil {
		return nil, corrupt("cannot parse", err)
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, corrupt("not an ECDSA P-256 key", nil)
	}
	return newBuiltinKey(priv)
}

func newBuiltinKey(priv *ecdsa.PrivateKey) (*builtinKey, error) {
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &builtinKey{priv: priv, kid: kid}, nil
}

// thumbprint is the RFC 7638 JWK thumbprint. Deriving the kid from the key
// keeps it stable across restarts without storing it, and changes it when
// an operator swaps the key.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	raw, err := pub.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
	if err != nil || len(raw) != 65 {
		return "", fmt.Errorf("auth: encode built-in issuer public key: %v", err)
	}
	enc := base64.RawURLEncoding
	// Members in lexicographic order, no whitespace, as RFC 7638 requires.
	canonical := `{"crv":"P-256","kty":"EC","x":"` + enc.EncodeToString(raw[1:33]) +
		`","y":"` + enc.EncodeToString(raw[33:]) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return enc.EncodeToString(sum[:]), nil
}
