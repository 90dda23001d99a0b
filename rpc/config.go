package rpc

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// DefaultMaxMsgBytes bounds one gRPC message in either direction. Rollouts and weight chunks are
// far smaller; the limit exists so a malformed or hostile peer cannot make a role allocate
// without bound (gRPC's own default receive limit, 4 MiB, is too small for a long group rollout).
const DefaultMaxMsgBytes = 64 << 20

// Sentinel errors of this package; callers match them with errors.Is.
var (
	// ErrConfig means a Config is inconsistent (a TLS certificate without its key, a negative size).
	ErrConfig = errors.New("rpc: invalid config")
	// ErrTLS means a TLS file could not be read or parsed.
	ErrTLS = errors.New("rpc: tls")
)

// Config is what every role's gRPC server and client share. The zero value is plaintext and
// unauthenticated with default size limits: fine on loopback, not across hosts.
//
// TLS is symmetric so that every role can be given the same three flags: a server with TLSCert
// and TLSKey serves TLS and, when TLSCA is set too, requires client certificates signed by it
// (mutual TLS); a client with TLSCA verifies servers against it and presents TLSCert/TLSKey when
// set. Certificates must name the address clients dial (an IP SAN for 127.0.0.1:7001).
type Config struct {
	// Token is a shared bearer token; when set, servers refuse RPCs without it (Unauthenticated)
	// except health checks, which probes send without credentials, and clients send it.
	Token string
	// TLSCert and TLSKey are PEM files of this role's certificate and private key.
	TLSCert, TLSKey string
	// TLSCA is a PEM file of the certificate authority that signs the other roles' certificates.
	TLSCA string
	// MaxMsgBytes limits one message sent or received; 0 means DefaultMaxMsgBytes.
	MaxMsgBytes int
	// MetricsAddr is where the role serves Prometheus /metrics over HTTP ("" = nowhere).
	MetricsAddr string
}

// BindFlags registers --token, --tls-cert, --tls-key, --tls-ca, --max-msg-bytes and
// --metrics-addr on fs, so every role's command spells them the same way (and reads TSD_TOKEN etc.).
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Token, "token", c.Token, "shared bearer token required on every RPC (prefer TSD_TOKEN: flags show in ps)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate of this role (serve TLS; client cert for mutual TLS)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key for --tls-cert")
	fs.StringVar(&c.TLSCA, "tls-ca", c.TLSCA, "PEM CA that signs peers' certificates (dial with TLS; with --tls-cert, require client certs)")
	fs.IntVar(&c.MaxMsgBytes, "max-msg-bytes", c.MaxMsgBytes, "largest gRPC message sent or received (0 = 64 MiB)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve Prometheus /metrics on this HTTP address (empty = off)")
}

// Validate reports an inconsistent Config before anything listens or dials.
func (c Config) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", ErrConfig)
	}
	if c.MaxMsgBytes < 0 {
		return fmt.Errorf("%w: max message size %d < 0", ErrConfig, c.MaxMsgBytes)
	}
	return nil
}

func (c Config) maxMsgBytes() int {
	if c.MaxMsgBytes == 0 {
		return DefaultMaxMsgBytes
	}
	return c.MaxMsgBytes
}
