package actor

import (
	"context"

	"tsd/proto/tsd/v1"
)

// GRPC is the Actor service's adapter.
type GRPC struct {
	tsdv1.UnimplementedActorServer
	a *Actor
}

// NewGRPC serves a's status.
func NewGRPC(a *Actor) *GRPC { return &GRPC{a: a} }

var _ tsdv1.ActorServer = (*GRPC)(nil)

// Status reports what the actor is doing.
func (g *GRPC) Status(context.Context, *tsdv1.ActorStatusRequest) (*tsdv1.ActorStatusResponse, error) {
	return g.a.Status(), nil
}
