package weights

import (
	"errors"
	"io"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	tsdv1 "tsd/proto/tsd/v1"
)

// chunkCodec is gRPC's proto codec with a fast path for WeightMessages that carry a chunk, the
// only large messages: the generic codec copies each chunk's data twice on the way out (marshal,
// then HTTP/2 framing) and twice on the way in (gathering the frames, then unmarshal). This one
// sends the data slice as it is, its own buffer in the message (the bytes on the wire are the
// same as proto.Marshal's), which goes back to sendBuffers once written, and on receipt copies
// the data once from the frames into a buffer of its free list, which Fetch refills once a chunk
// is written and hashed. Every other message, and any chunk encoded in a way the fast path does
// not parse, goes through the proto codec, so a server can use it for all its services.
type chunkCodec struct {
	free chan []byte // recycled chunk buffers; nil on a server, which only marshals chunks
}

const (
	// codecFreeBuffers bounds a fetch's recycled chunk buffers: the chunk being checked plus
	// those queued for the file hash.
	codecFreeBuffers = hashQueueChunks + 2
	// fastPathBytes is the least data (or message) the fast path handles; smaller messages
	// (manifests, the chunks of small files) are not worth it.
	fastPathBytes = MinChunkBytes
)

// WeightMessage and WeightChunk field numbers, from weights.proto.
const (
	fieldChunk       protowire.Number = 2
	fieldChunkFile   protowire.Number = 1
	fieldChunkOffset protowire.Number = 2
	fieldChunkData   protowire.Number = 3
	fieldChunkCRC32C protowire.Number = 5
)

// errSlowPath makes Unmarshal hand a message to the proto codec.
var errSlowPath = errors.New("weights: not a plain chunk")

var _ encoding.CodecV2 = (*chunkCodec)(nil)

func newFetchCodec() *chunkCodec { return &chunkCodec{free: make(chan []byte, codecFreeBuffers)} }

// Name keeps the content type application/grpc+proto: peers see the ordinary proto codec.
func (*chunkCodec) Name() string { return proto.Name }

func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2(proto.Name) }

// Marshal encodes a chunk as proto.Marshal would, the data by reference.
func (*chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	msg, ok := v.(*tsdv1.WeightMessage)
	c := msg.GetChunk()
	if !ok || c == nil || len(c.GetData()) < fastPathBytes || len(c.ProtoReflect().GetUnknown()) > 0 || len(msg.ProtoReflect().GetUnknown()) > 0 {
		return protoCodec().Marshal(v)
	}
	var head []byte
	if c.GetFile() != "" {
		head = protowire.AppendTag(head, fieldChunkFile, protowire.BytesType)
		head = protowire.AppendString(head, c.GetFile())
	}
	if c.GetOffset() != 0 {
		head = protowire.AppendTag(head, fieldChunkOffset, protowire.VarintType)
		head = protowire.AppendVarint(head, uint64(c.GetOffset()))
	}
	head = protowire.AppendTag(head, fieldChunkData, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(c.GetData())))
	var tail []byte
	if c.GetCrc32C() != 0 {
		tail = protowire.AppendTag(tail, fieldChunkCRC32C, protowire.Fixed32Type)
		tail = protowire.AppendFixed32(tail, c.GetCrc32C())
	}
	inner := len(head) + len(c.GetData()) + len(tail)
	outer := protowire.AppendTag(nil, fieldChunk, protowire.BytesType)
	outer = protowire.AppendVarint(outer, uint64(inner))
	data := c.GetData()
	return mem.BufferSlice{mem.SliceBuffer(append(outer, head...)), mem.NewBuffer(&data, sendBuffers), mem.SliceBuffer(tail)}, nil
}

// sendBuffers recycles the data of the chunks servers send. gRPC holds a reference to a sent
// message's buffers until it has written them to the connection and then returns them to their
// pool: a long broadcast thus reuses about a flow-control window of buffers instead of
// allocating and zeroing one per chunk, and collecting it. A chunk's data belongs to the pool
// once it is sent: the sender must not touch it again.
var sendBuffers = &chunkPool{}

// chunkPool is a mem.BufferPool of chunk buffers.
type chunkPool struct{ pool sync.Pool }

// Get returns a buffer of n bytes, recycled if one large enough is free; its contents are
// undefined.
func (p *chunkPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// Put offers b for a later chunk.
func (p *chunkPool) Put(b *[]byte) { p.pool.Put(b) }

// Unmarshal decodes a chunk with one copy of its data, anything else with the proto codec.
func (cc *chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	msg, ok := v.(*tsdv1.WeightMessage)
	if !ok || data.Len() < fastPathBytes {
		return protoCodec().Unmarshal(data, v)
	}
	c, err := cc.decodeChunk(data)
	if err != nil {
		return protoCodec().Unmarshal(data, v)
	}
	msg.Reset()
	msg.Msg = &tsdv1.WeightMessage_Chunk{Chunk: c}
	return nil
}

// decodeChunk parses a WeightMessage holding one chunk, its known fields in any order and each at
// most once, or returns errSlowPath for anything else (which the proto codec then decodes, or
// refuses).
func (cc *chunkCodec) decodeChunk(data mem.BufferSlice) (*tsdv1.WeightChunk, error) {
	r := data.Reader()
	defer r.Close()
	if num, typ, err := readTag(r); err != nil || num != fieldChunk || typ != protowire.BytesType {
		return nil, errSlowPath
	}
	if n, err := readVarint(r); err != nil || n != uint64(r.Remaining()) {
		return nil, errSlowPath
	}
	c := &tsdv1.WeightChunk{}
	seen := map[protowire.Number]bool{}
	for r.Remaining() > 0 {
		num, typ, err := readTag(r)
		if err != nil || seen[num] {
			return nil, errSlowPath
		}
		seen[num] = true
		switch {
		case num == fieldChunkOffset && typ == protowire.VarintType:
			v, err := readVarint(r)
			if err != nil {
				return nil, errSlowPath
			}
			c.Offset = int64(v)
		case num == fieldChunkData && typ == protowire.BytesType:
			if c.Data, err = cc.readBytes(r, true); err != nil {
				return nil, err
			}
		case num == fieldChunkCRC32C && typ == protowire.Fixed32Type:
			var b [4]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, errSlowPath
			}
			c.Crc32C, _ = protowire.ConsumeFixed32(b[:])
		case num == fieldChunkFile && typ == protowire.BytesType:
			b, err := cc.readBytes(r, false)
			if err != nil || !utf8.Valid(b) { // proto3 strings must be UTF-8
				return nil, errSlowPath
			}
			c.File = string(b)
		default:
			return nil, errSlowPath
		}
	}
	return c, nil
}

// readBytes reads a length-delimited field's contents, into a recycled buffer if pooled.
func (cc *chunkCodec) readBytes(r *mem.Reader, pooled bool) ([]byte, error) {
	n, err := readVarint(r)
	if err != nil || n > uint64(r.Remaining()) {
		return nil, errSlowPath
	}
	var b []byte
	if pooled {
		b = cc.buffer(int(n))
	} else {
		b = make([]byte, n)
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, errSlowPath
	}
	return b, nil
}

// buffer returns a buffer of n bytes, recycled if one large enough is free.
func (cc *chunkCodec) buffer(n int) []byte {
	select {
	case b := <-cc.free:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

// recycle offers b for a later chunk; b must no longer be in use.
func (cc *chunkCodec) recycle(b []byte) {
	select {
	case cc.free <- b:
	default:
	}
}

func readTag(r *mem.Reader) (protowire.Number, protowire.Type, error) {
	v, err := readVarint(r)
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if !num.IsValid() {
		return 0, 0, errSlowPath
	}
	return num, typ, nil
}

// readVarint reads a varint of at most 10 bytes, as protowire.ConsumeVarint accepts it.
func readVarint(r *mem.Reader) (uint64, error) {
	var b [binaryMaxVarint]byte
	for i := range b {
		c, err := r.ReadByte()
		if err != nil {
			return 0, errSlowPath
		}
		b[i] = c
		if c < 0x80 {
			v, n := protowire.ConsumeVarint(b[:i+1])
			if n < 0 {
				return 0, errSlowPath
			}
			return v, nil
		}
	}
	return 0, errSlowPath
}

// binaryMaxVarint is the longest varint encoding of a uint64.
const binaryMaxVarint = 10
