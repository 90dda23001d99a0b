package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// probeTimeout bounds the TLS probe of an address whose failure gRPC leaves ambiguous.
const probeTimeout = 2 * time.Second

// Diagnosis explains a failed call for an operator: its cause in a few words and, when retrying
// cannot heal it (a flag is missing or wrong), which flag to fix. errors.Is matches ErrConfig
// when Fix is set, and the original error (and its gRPC status) always.
type Diagnosis struct {
	Addr  string
	Cause string
	Fix   string
	Err   error
}

func (d *Diagnosis) Error() string {
	s := d.Addr + ": " + d.Cause
	if d.Fix != "" {
		s += ": " + d.Fix
	}
	return s
}

func (d *Diagnosis) Unwrap() []error {
	if d.Fix != "" {
		return []error{ErrConfig, d.Err}
	}
	return []error{d.Err}
}

// Permanent reports a misconfiguration that retrying cannot heal.
func (d *Diagnosis) Permanent() bool { return d.Fix != "" }

// Diagnose explains err, returned by an RPC to addr made with cfg. gRPC reports most connection
// failures as Unavailable with a message, and some misconfigurations only as a closed connection
// (a plaintext client at a TLS server, a client without a certificate at a mutual-TLS server);
// with probe set, those are told apart by a TLS handshake with addr.
func Diagnose(ctx context.Context, addr string, cfg Config, err error, probe bool) *Diagnosis {
	d := &Diagnosis{Addr: addr, Err: err}
	st, _ := status.FromError(err)
	msg := st.Message()
	switch {
	case st.Code() == codes.Unauthenticated:
		d.Cause = "unauthenticated (bearer token)"
		if cfg.Token == "" {
			d.Fix = "the server requires a token: set --token (or TSD_TOKEN) to the servers' token"
		} else {
			d.Fix = "--token (TSD_TOKEN) is not the servers' token"
		}
	case strings.Contains(msg, "connection refused"):
		d.Cause = "connection refused (nothing listens there)"
	case strings.Contains(msg, "authentication handshake failed"):
		d.Cause = "TLS handshake failed (" + after(msg, "authentication handshake failed: ") + ")"
		d.Fix = tlsFix(msg)
	case st.Code() == codes.DeadlineExceeded:
		d.Cause = "no answer in time"
	case st.Code() == codes.Unavailable && probe:
		d.Cause = msg
		probeTLS(ctx, addr, cfg, d)
	default:
		d.Cause = msg
		if msg == "" {
			d.Cause = err.Error()
		}
	}
	return d
}

// after is msg from the end of marker on (all of msg without it), without gRPC's closing quote.
func after(msg, marker string) string {
	if _, rest, ok := strings.Cut(msg, marker); ok {
		msg = rest
	}
	return strings.TrimSuffix(msg, `"`)
}

// tlsFix names the flag behind a handshake failure the client saw.
func tlsFix(msg string) string {
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the server speaks plaintext: drop --tls-ca here, or give the server --tls-cert and --tls-key"
	case strings.Contains(msg, "unknown authority"):
		return "--tls-ca does not sign the server's certificate"
	case strings.Contains(msg, "certificate is valid for"), strings.Contains(msg, "not valid for any names"):
		return "the server's certificate does not name the address dialed: dial a name it has, or reissue it"
	case strings.Contains(msg, "expired"):
		return "a certificate has expired: reissue it"
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return "the server refuses this client's certificate: check --tls-cert and --tls-key (signed by the CA the server trusts)"
	}
	return "check --tls-ca, --tls-cert and --tls-key"
}

// probeTLS handshakes with addr to see whether it speaks TLS, and whether it asks for a client
// certificate, and fills d in when that explains the failure. It verifies nothing and sends no
// data: it only learns what the server expects.
func probeTLS(ctx context.Context, addr string, cfg Config, d *Diagnosis) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return
	}
	defer raw.Close()
	askedCert := false
	conn := tls.Client(raw, &tls.Config{
		InsecureSkipVerify: true, // a probe: the answer is only "does it speak TLS"
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			askedCert = true
			return &tls.Certificate{}, nil
		},
	})
	if err := conn.HandshakeContext(ctx); err != nil && !askedCert {
		var rec tls.RecordHeaderError
		if errors.As(err, &rec) && cfg.TLSCA != "" {
			d.Cause, d.Fix = "the server speaks plaintext, this client TLS", "drop --tls-ca here, or give the server --tls-cert and --tls-key"
		}
		return
	}
	switch {
	case cfg.TLSCA == "":
		d.Cause, d.Fix = "the server speaks TLS, this client plaintext", "set --tls-ca (and --tls-cert/--tls-key if the server requires client certificates)"
	case askedCert && cfg.TLSCert == "":
		d.Cause, d.Fix = "the server requires a client certificate (mutual TLS)", "set --tls-cert and --tls-key"
	}
}
