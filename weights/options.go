package weights

import (
	"fmt"

	"google.golang.org/grpc"
)

// MaxMessageBytes bounds one WeightMessage: the largest chunk plus room for its file name,
// offset, CRC-32C and framing. A manifest is far smaller.
const MaxMessageBytes = MaxChunkBytes + 64<<10

// Flow control windows for bulk streams. grpc-go starts at 64 KiB and grows the window by
// estimating the bandwidth-delay product, which on a fast link lags far behind; a fixed window
// of several chunks keeps the sender busy while the receiver verifies and writes. Setting them
// turns the estimate off. The connection window allows a few streams at full speed.
const (
	streamWindowBytes = 16 << 20
	connWindowBytes   = 64 << 20
)

// ServerOptions are the options a gRPC server that registers a Server should have: large flow
// control windows and a codec that sends chunk data without copying it (every other message of
// every service is encoded by the standard proto codec, unchanged). They set no message size
// limit: the server is shared with other services (the learner's rollout stream), whose limit is
// the operator's (--max-msg-bytes); a server option here would silently replace it. The Weights
// service only receives small requests; the limit must allow it to send MaxMessageBytes
// (CheckMessageLimit).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(&chunkCodec{}),
		grpc.InitialWindowSize(streamWindowBytes),
		grpc.InitialConnWindowSize(connWindowBytes),
	}
}

// CheckMessageLimit refuses a message size limit (0: the default of the rpc package, which is
// large enough) below MaxMessageBytes, under which a server could not send weight chunks.
func CheckMessageLimit(limit int) error {
	if limit != 0 && limit < MaxMessageBytes {
		return fmt.Errorf("%w: a message limit of %d bytes is below %d, the largest weight chunk message", ErrArgument, limit, MaxMessageBytes)
	}
	return nil
}

// DialOptions are the options a connection used by Fetch should have: the same windows, and a
// receive limit above grpc-go's default of 4 MiB, which a maximal chunk with its header exceeds.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(streamWindowBytes),
		grpc.WithInitialConnWindowSize(connWindowBytes),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes)),
	}
}
