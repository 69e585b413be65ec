package auth

import "context"

// Verifier verifies a bearer token and returns the identity it proves. The
// transports (WebSocket and HTTP API) take one; *Authenticator is the
// implementation, tests supply fakes.
type Verifier interface {
	Verify(ctx context.Context, token string) (Identity, error)
}

var _ Verifier = (*Authenticator)(nil)
