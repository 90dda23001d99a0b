package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tsd/rpc"
)

// Sentinel errors of the health probe.
var (
	// errNotServing means the server answered but reported a status other than SERVING (a
	// coordinator without a leader, a learner still loading, a server shutting down).
	errNotServing = errors.New("not serving")
)

// newHealthCmd is a grpc_health_probe built into the binary, so images need no second program
// for their HEALTHCHECK: it exits 0 only when the server reports SERVING.
func newHealthCmd() *cobra.Command {
	var rc rpc.Config
	var addr, service string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe a role's gRPC health (grpc.health.v1); exit 0 only when it reports SERVING",
		Long: `health asks the gRPC health service of any tsd role (coordinator, learner, actor) for the status
of --service ("" = the whole server) and prints it. It exits non-zero when the server cannot be
reached in --timeout or reports anything but SERVING, which is what container HEALTHCHECKs and
orchestrator probes need. Health checks need no token; with TLS, pass the same --tls-* flags as
the role (the certificate must name the address dialled).`,
		Example: `  tsd health --addr 127.0.0.1:7201
  tsd health --addr coord1:7001 --service tsd.v1.Coordinator`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			st, err := probeHealth(ctx, addr, service, rc)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), st)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:7201", "gRPC address of the role to probe")
	f.StringVar(&service, "service", "", `service name to ask about ("" = the whole server)`)
	f.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	f.StringVar(&rc.TLSCA, "tls-ca", "", "PEM CA to verify the server with (enables TLS)")
	f.StringVar(&rc.TLSCert, "tls-cert", "", "PEM client certificate for mutual TLS")
	f.StringVar(&rc.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	return cmd
}

// probeHealth returns the status addr reports for service, or an error when it cannot be asked or
// is not SERVING. The call fails fast: a refused connection is an immediate error, not a wait.
func probeHealth(ctx context.Context, addr, service string, rc rpc.Config) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := rpc.Dial(addr, rc)
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, fmt.Errorf("health of %s: %w", addr, err)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return st, fmt.Errorf("%s service %q: %w (%s)", addr, service, errNotServing, st)
	}
	return resp.GetStatus(), nil
}
