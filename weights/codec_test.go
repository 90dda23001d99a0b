package weights

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
)

func chunkMessage(file string, offset int64, data []byte, crc uint32) *tsdv1.WeightMessage {
	return &tsdv1.WeightMessage{Msg: &tsdv1.WeightMessage_Chunk{Chunk: &tsdv1.WeightChunk{
		File: file, Offset: offset, Data: data, Crc32C: crc}}}
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

// split cuts b into a BufferSlice of pieces of at most n bytes, as HTTP/2 frames arrive.
func split(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(bytes.Clone(b[:k])))
		b = b[k:]
	}
	return s
}

// TestChunkCodecRoundTrip checks that the fast path writes exactly what proto.Marshal writes and
// reads it back, also across frame boundaries.
func TestChunkCodecRoundTrip(t *testing.T) {
	data := randomBytes(1, MinChunkBytes+777)
	tests := []struct {
		name string
		msg  *tsdv1.WeightMessage
	}{
		{"chunk", chunkMessage("model.safetensors", 5<<20, data, chunkCRC(data))},
		{"offset 0", chunkMessage("model.safetensors", 0, data, chunkCRC(data))},
		{"no name, no sum", chunkMessage("", 7, data, 0)},
		{"negative offset", chunkMessage("m", -1, data, 1)},
		{"largest sum", chunkMessage("m", 1, data, 0xffffffff)},
		{"small chunk (proto codec)", chunkMessage("a", 1, []byte("tiny"), 2)},
		{"manifest (proto codec)", &tsdv1.WeightMessage{Msg: &tsdv1.WeightMessage_Manifest{Manifest: &tsdv1.WeightManifest{Version: 3, Sha256: "z"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := newFetchCodec()
			got, err := cc.Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Materialize(), want) {
				t.Fatalf("fast path wrote %d bytes unlike proto.Marshal's %d", got.Len(), len(want))
			}
			for _, frame := range []int{len(want), 16 << 10, 1} {
				back := &tsdv1.WeightMessage{}
				if err := cc.Unmarshal(split(want, frame), back); err != nil {
					t.Fatalf("frames of %d: %v", frame, err)
				}
				if !proto.Equal(back, tt.msg) {
					t.Errorf("frames of %d: decoded message differs", frame)
				}
			}
		})
	}
}

// TestChunkCodecOddEncodings feeds encodings other than proto.Marshal's: some the fast path
// decodes (other field orders, a zero sum written out), the rest it leaves to the proto codec
// (unknown or repeated fields, the old sha256 field, wrong wire types, bad UTF-8, truncation).
// The result must always be proto.Unmarshal's, error or message.
func TestChunkCodecOddEncodings(t *testing.T) {
	data := randomBytes(2, MinChunkBytes)
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	crc := func(b []byte, v uint32) []byte {
		return protowire.AppendFixed32(protowire.AppendTag(b, fieldChunkCRC32C, protowire.Fixed32Type), v)
	}
	wrap := func(inner []byte) []byte { return field(nil, fieldChunk, inner) }
	canonical, _ := proto.Marshal(chunkMessage("m", 0, data, chunkCRC(data)))
	tests := []struct {
		name string
		wire []byte
	}{
		{"sum before data", wrap(field(field(crc(nil, chunkCRC(data)), fieldChunkData, data), fieldChunkFile, []byte("m")))},
		{"zero sum written out", wrap(crc(field(nil, fieldChunkData, data), 0))},
		{"sum twice", wrap(crc(crc(field(nil, fieldChunkData, data), 1), 2))},
		{"sum as bytes", wrap(field(field(nil, fieldChunkData, data), fieldChunkCRC32C, []byte("abcd")))},
		{"sum as a varint", wrap(protowire.AppendVarint(protowire.AppendTag(field(nil, fieldChunkData, data), fieldChunkCRC32C, protowire.VarintType), 7))},
		{"old sha256 field", wrap(field(field(nil, fieldChunkData, data), 4, []byte("0123abcd")))},
		{"sum cut short", wrap(append(protowire.AppendTag(field(nil, fieldChunkData, data), fieldChunkCRC32C, protowire.Fixed32Type), 1, 2))},
		{"unknown field", wrap(field(field(nil, fieldChunkData, data), 9, []byte("?")))},
		{"data twice", wrap(field(field(nil, fieldChunkData, data), fieldChunkData, data[:100]))},
		{"file not UTF-8", wrap(field(field(nil, fieldChunkFile, []byte{0xff, 0xfe}), fieldChunkData, data))},
		{"data as a varint", wrap(append(protowire.AppendTag(field(nil, fieldChunkData, data), fieldChunkData, protowire.VarintType), 1))},
		{"truncated", canonical[:len(canonical)-10]},
		{"trailing garbage", append(bytes.Clone(canonical), 0xff)},
		{"manifest and chunk", append(field(nil, 1, nil), canonical...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := &tsdv1.WeightMessage{}
			wantErr := proto.Unmarshal(tt.wire, want)
			got := &tsdv1.WeightMessage{}
			gotErr := newFetchCodec().Unmarshal(split(tt.wire, 16<<10), got)
			if (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("error %v, proto.Unmarshal's %v", gotErr, wantErr)
			}
			if gotErr == nil && !proto.Equal(got, want) {
				t.Errorf("decoded %v, proto.Unmarshal decoded %v", got, want)
			}
		})
	}
}

// TestChunkCodecRecycles checks that a recycled buffer receives the next chunk.
func TestChunkCodecRecycles(t *testing.T) {
	data := randomBytes(3, MinChunkBytes)
	wire, _ := proto.Marshal(chunkMessage("m", 0, data, 3))
	cc := newFetchCodec()
	first := &tsdv1.WeightMessage{}
	if err := cc.Unmarshal(split(wire, 16<<10), first); err != nil {
		t.Fatal(err)
	}
	cc.recycle(first.GetChunk().GetData())
	second := &tsdv1.WeightMessage{}
	if err := cc.Unmarshal(split(wire, 16<<10), second); err != nil {
		t.Fatal(err)
	}
	if &first.GetChunk().GetData()[0] != &second.GetChunk().GetData()[0] {
		t.Error("the recycled buffer was not reused")
	}
	if !bytes.Equal(second.GetChunk().GetData(), data) {
		t.Error("reused buffer holds the wrong bytes")
	}
}

// FuzzChunkCodecUnmarshal checks that the codec decodes anything exactly as proto.Unmarshal does.
func FuzzChunkCodecUnmarshal(f *testing.F) {
	data := randomBytes(4, MinChunkBytes)
	for _, m := range []*tsdv1.WeightMessage{chunkMessage("model.safetensors", 1<<20, data, chunkCRC(data)), chunkMessage("", 0, data, 0)} {
		wire, _ := proto.Marshal(m)
		f.Add(wire, uint16(16<<10))
	}
	f.Fuzz(func(t *testing.T, wire []byte, frame uint16) {
		if len(wire) < fastPathBytes { // the fast path needs a large message: pad small inputs
			wire = append(wire, protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), make([]byte, fastPathBytes))...)
		}
		want := &tsdv1.WeightMessage{}
		wantErr := proto.Unmarshal(wire, want)
		got := &tsdv1.WeightMessage{}
		gotErr := newFetchCodec().Unmarshal(split(wire, int(frame)+1), got)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("error %v, proto.Unmarshal's %v", gotErr, wantErr)
		}
		if gotErr == nil && !proto.Equal(got, want) {
			t.Fatalf("decoded differently from proto.Unmarshal")
		}
	})
}
