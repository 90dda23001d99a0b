package rolloutlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
)

// headerBytes is the record header: u32 payload length, u32 CRC-32C of the payload.
const headerBytes = 8

// resyncBudgetBytes bounds the checksum work spent looking for valid records behind a bad one
// in the last segment (see validFrameAfter); about a tenth of a second.
const resyncBudgetBytes = 1 << 30

// castagnoli is CRC-32C, which CPUs compute in hardware (SSE4.2, ARMv8).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame validates r and encodes it as one record, header included.
func encodeFrame(r *tsdv1.Rollout) ([]byte, error) {
	if err := validateRollout(r); err != nil {
		return nil, err
	}
	size := proto.Size(r)
	if size > MaxRecordBytes {
		return nil, fmt.Errorf("%w: rollout %s/%d encodes to %d bytes, max %d",
			ErrTooLarge, r.GetActorId(), r.GetSeq(), size, MaxRecordBytes)
	}
	buf, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(
		make([]byte, headerBytes, headerBytes+size), r)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrInvalidRollout, err)
	}
	return sealFrame(buf), nil
}

// sealFrame fills in the header of a record whose payload follows headerBytes of room.
func sealFrame(buf []byte) []byte {
	payload := buf[headerBytes:]
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(payload, castagnoli))
	return buf
}

// validateRollout checks what the log itself relies on: who sent it and its number.
func validateRollout(r *tsdv1.Rollout) error {
	switch {
	case r == nil:
		return fmt.Errorf("%w: nil", ErrInvalidRollout)
	case r.GetActorId() == "":
		return fmt.Errorf("%w: empty actor id (seq %d)", ErrInvalidRollout, r.GetSeq())
	case r.GetSeq() == 0:
		return fmt.Errorf("%w: actor %q: seq 0 (seqs start at 1)", ErrInvalidRollout, r.GetActorId())
	}
	return nil
}

// checkFrame reports the size of the intact record at the start of b, or why there is none.
func checkFrame(b []byte) (n int, problem string) {
	if len(b) < headerBytes {
		return 0, "partial header"
	}
	length := binary.LittleEndian.Uint32(b[0:4])
	switch {
	case length == 0:
		// An all-zero header would pass the checksum (CRC-32C of nothing is 0), and zeros are
		// what a file system may leave behind after a crash.
		return 0, "zero length"
	case length > MaxRecordBytes:
		return 0, fmt.Sprintf("length %d exceeds %d", length, MaxRecordBytes)
	case int64(length) > int64(len(b)-headerBytes):
		return 0, fmt.Sprintf("length %d runs past the end of the file", length)
	}
	payload := b[headerBytes : headerBytes+int(length)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return 0, "checksum mismatch"
	}
	return headerBytes + int(length), ""
}

// decodeFrame turns one whole record, b and nothing more, back into a rollout.
func decodeFrame(b []byte) (*tsdv1.Rollout, error) {
	n, problem := checkFrame(b)
	if problem == "" && n != len(b) {
		problem = fmt.Sprintf("record of %d bytes where %d were expected", n, len(b))
	}
	if problem != "" {
		return nil, errors.New(problem)
	}
	r := &tsdv1.Rollout{}
	if err := proto.Unmarshal(b[headerBytes:], r); err != nil {
		return nil, err
	}
	if err := validateRollout(r); err != nil {
		return nil, err
	}
	return r, nil
}

// segmentScan is what the framing of one segment says.
type segmentScan struct {
	offsets []int64 // start of each intact record, in order
	end     int64   // end of the last intact record: the file's length once a torn tail is cut
	torn    string  // why the bytes from end on were cut; "" when there were none
}

// scanSegment walks the records of a segment's bytes. last says whether it is the newest
// segment, the only place a crash can have left a partial write. name is only for messages.
func scanSegment(name string, data []byte, last bool) (segmentScan, error) {
	var s segmentScan
	for off := 0; off < len(data); {
		n, problem := checkFrame(data[off:])
		if problem == "" {
			s.offsets = append(s.offsets, int64(off))
			off += n
			continue
		}
		s.end = int64(off)
		if !last {
			return s, fmt.Errorf("%w: %s offset %d: %s", ErrCorrupt, name, off, problem)
		}
		if next, found, ok := validFrameAfter(data, off+1); !ok {
			return s, fmt.Errorf("%w: %s offset %d: %s, and the %d bytes after it are too many to check for intact records",
				ErrCorrupt, name, off, problem, len(data)-off)
		} else if found {
			return s, fmt.Errorf("%w: %s offset %d: %s, yet an intact record follows at offset %d",
				ErrCorrupt, name, off, problem, next)
		}
		s.torn = fmt.Sprintf("%s at offset %d", problem, off)
		return s, nil
	}
	s.end = int64(len(data))
	return s, nil
}

// validFrameAfter looks for an intact record starting anywhere at or after from. A torn tail is
// the unfinished end of the last write, so nothing intact can follow it; if something does, the
// bad record is damage to acknowledged data. ok is false when the search ran out of budget
// (only random bytes many megabytes long cost that much).
func validFrameAfter(data []byte, from int) (at int, found, ok bool) {
	budget := int64(resyncBudgetBytes)
	for p := from; p+headerBytes < len(data); p++ {
		length := int64(binary.LittleEndian.Uint32(data[p:]))
		if length == 0 || length > MaxRecordBytes || length > int64(len(data)-p-headerBytes) {
			continue // cheap rejection: the checksum is only computed for lengths that fit
		}
		if budget -= length; budget < 0 {
			return 0, false, false
		}
		if _, problem := checkFrame(data[p:]); problem == "" {
			return p, true, true
		}
	}
	return 0, false, true
}
