package tpm

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // SHA-1 PCR banks
	_ "crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
)

// TCG PC Client Platform Firmware Profile (version 1.05), Section 10: the
// crypto-agile event log. It starts with a TCG_PCR_EVENT (SHA-1 format)
// whose data is the TCG_EfiSpecIdEvent "Spec ID Event03", naming the digest
// algorithms and sizes; every later entry is a TCG_PCR_EVENT2. All integers
// are little-endian.
const (
	evNoAction      = 0x00000003
	maxLogAlgs      = 8
	maxEventPCR     = 23
	specIDSignature = "Spec ID Event03\x00"
	startupLocality = "StartupLocality\x00"
)

// logEvent is one TCG_PCR_EVENT2 entry, kept only as much as replay needs.
type logEvent struct {
	pcr    uint32
	typ    uint32
	digest []byte // in the replayed bank; nil if the event lacks it
	data   []byte
}

// leReader reads little-endian fields with bounds checks.
type leReader struct{ b []byte }

func (r *leReader) u8() (uint8, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v, true
}

func (r *leReader) u16() (uint16, bool) {
	if len(r.b) < 2 {
		return 0, false
	}
	v := binary.LittleEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v, true
}

func (r *leReader) u32() (uint32, bool) {
	if len(r.b) < 4 {
		return 0, false
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, true
}

func (r *leReader) bytes(n uint64) ([]byte, bool) {
	if uint64(len(r.b)) < n {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

var errLog = errors.New("malformed event log")

// parseEventLog parses a crypto-agile event log and returns the events
// with their digest in bank alg (a TPM_ALG_ID). Every event must carry a
// digest for every algorithm the Spec ID event lists, in that order.
func parseEventLog(log []byte, alg uint16) ([]logEvent, error) {
	r := &leReader{b: log}
	// TCG_PCR_EVENT: pcrIndex, eventType, SHA-1 digest, eventSize, event.
	pcr, ok1 := r.u32()
	typ, ok2 := r.u32()
	_, ok3 := r.bytes(20)
	size, ok4 := r.u32()
	if !(ok1 && ok2 && ok3 && ok4) || pcr != 0 || typ != evNoAction {
		return nil, fmt.Errorf("%w: no Spec ID event header", errLog)
	}
	spec, ok := r.bytes(uint64(size))
	if !ok {
		return nil, fmt.Errorf("%w: truncated Spec ID event", errLog)
	}
	sizes, err := parseSpecID(spec)
	if err != nil {
		return nil, err
	}
	if _, ok := sizes[alg]; !ok {
		return nil, fmt.Errorf("%w: log has no digests for algorithm 0x%04x", errLog, alg)
	}
	var out []logEvent
	for len(r.b) > 0 {
		var e logEvent
		var ok bool
		var count uint32
		if e.pcr, ok = r.u32(); !ok {
			return nil, fmt.Errorf("%w: truncated event", errLog)
		}
		if e.typ, ok = r.u32(); !ok {
			return nil, fmt.Errorf("%w: truncated event", errLog)
		}
		if e.pcr > maxEventPCR {
			return nil, fmt.Errorf("%w: PCR index %d", errLog, e.pcr)
		}
		if count, ok = r.u32(); !ok || count != uint32(len(sizes)) {
			return nil, fmt.Errorf("%w: event with %d digests, the log declares %d", errLog, count, len(sizes))
		}
		seen := make(map[uint16]bool, count)
		for i := uint32(0); i < count; i++ {
			id, ok := r.u16()
			if !ok {
				return nil, fmt.Errorf("%w: truncated digest", errLog)
			}
			n, known := sizes[id]
			if !known || seen[id] {
				return nil, fmt.Errorf("%w: undeclared or repeated digest algorithm 0x%04x", errLog, id)
			}
			seen[id] = true
			d, ok := r.bytes(uint64(n))
			if !ok {
				return nil, fmt.Errorf("%w: truncated digest", errLog)
			}
			if id == alg {
				e.digest = d
			}
		}
		dsize, ok := r.u32()
		if !ok {
			return nil, fmt.Errorf("%w: truncated event", errLog)
		}
		if e.data, ok = r.bytes(uint64(dsize)); !ok {
			return nil, fmt.Errorf("%w: event data of %d bytes overruns the log", errLog, dsize)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseSpecID parses TCG_EfiSpecIdEvent and returns algorithm ID → size.
func parseSpecID(b []byte) (map[uint16]uint16, error) {
	r := &leReader{b: b}
	sig, ok := r.bytes(16)
	if !ok || string(sig) != specIDSignature {
		return nil, fmt.Errorf("%w: not a crypto-agile log (Spec ID Event03)", errLog)
	}
	_, ok1 := r.u32() // platformClass
	_, ok2 := r.bytes(4)
	n, ok3 := r.u32()
	if !(ok1 && ok2 && ok3) || n == 0 || n > maxLogAlgs {
		return nil, fmt.Errorf("%w: Spec ID event with %d algorithms", errLog, n)
	}
	sizes := make(map[uint16]uint16, n)
	for i := uint32(0); i < n; i++ {
		id, ok1 := r.u16()
		size, ok2 := r.u16()
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: truncated Spec ID event", errLog)
		}
		if _, dup := sizes[id]; dup {
			return nil, fmt.Errorf("%w: algorithm 0x%04x listed twice", errLog, id)
		}
		if h, known := hashOf(id); known && h.Size() != int(size) {
			return nil, fmt.Errorf("%w: algorithm 0x%04x with digest size %d", errLog, id, size)
		}
		if size == 0 || size > 64 {
			return nil, fmt.Errorf("%w: digest size %d", errLog, size)
		}
		sizes[id] = size
	}
	vlen, ok := r.u8()
	if !ok {
		return nil, fmt.Errorf("%w: truncated Spec ID event", errLog)
	}
	if _, ok := r.bytes(uint64(vlen)); !ok || len(r.b) != 0 {
		return nil, fmt.Errorf("%w: Spec ID event size mismatch", errLog)
	}
	return sizes, nil
}

// replay computes the PCR values of bank alg that the events produce,
// starting from zero (PCR 0 from the StartupLocality event if present).
func replay(events []logEvent, alg uint16) (map[uint32][]byte, error) {
	h, ok := hashOf(alg)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported bank 0x%04x", errLog, alg)
	}
	pcrs := make(map[uint32][]byte)
	get := func(i uint32) []byte {
		if v, ok := pcrs[i]; ok {
			return v
		}
		return make([]byte, h.Size())
	}
	for i, e := range events {
		if e.typ == evNoAction {
			// Not extended; PCR 0's initial value may come from the
			// StartupLocality event, before any extend of PCR 0.
			if e.pcr == 0 && bytes.HasPrefix(e.data, []byte(startupLocality)) {
				if len(e.data) != len(startupLocality)+1 {
					return nil, fmt.Errorf("%w: StartupLocality event %d", errLog, i)
				}
				if _, extended := pcrs[0]; extended {
					return nil, fmt.Errorf("%w: StartupLocality event after PCR 0 was extended", errLog)
				}
				v := make([]byte, h.Size())
				v[len(v)-1] = e.data[len(startupLocality)]
				pcrs[0] = v
			}
			continue
		}
		if e.digest == nil {
			return nil, fmt.Errorf("%w: event %d has no digest in the bank", errLog, i)
		}
		d := h.New()
		d.Write(get(e.pcr))
		d.Write(e.digest)
		pcrs[e.pcr] = d.Sum(nil)
	}
	return pcrs, nil
}

var _ = crypto.SHA256
