package strictcbor

import "testing"

func TestStrictness(t *testing.T) {
	dm := DecMode(Limits{MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16, RejectUnknownFields: true})
	type S struct {
		A int `cbor:"1,keyasint"`
	}
	for name, in := range map[string][]byte{
		"duplicate key":  {0xa2, 0x01, 0x01, 0x01, 0x02},
		"indefinite map": {0xbf, 0x01, 0x01, 0xff},
		"tag":            {0xc1, 0xa1, 0x01, 0x01},
		"unknown field":  {0xa1, 0x02, 0x01},
		"too many pairs": append([]byte{0xb1}, make([]byte, 34)...),
		"trailing":       {0xa1, 0x01, 0x01, 0x00},
		"2^64 length":    {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		var s S
		if err := dm.Unmarshal(in, &s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var s S
	if err := dm.Unmarshal([]byte{0xa1, 0x01, 0x05}, &s); err != nil || s.A != 5 {
		t.Fatalf("valid input: %v %+v", err, s)
	}
	var v any
	for name, in := range map[string][]byte{
		"NaN":         {0xf9, 0x7e, 0x00},
		"infinity":    {0xf9, 0x7c, 0x00},
		"invalid utf": {0x61, 0xff},
	} {
		if err := dm.Unmarshal(in, &v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	tags := DecMode(Limits{MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16, AllowTags: true})
	if err := tags.Unmarshal([]byte{0xc1, 0x01}, &v); err != nil {
		t.Fatalf("tag with AllowTags: %v", err)
	}
	b, err := EncMode().Marshal(map[int]int{2: 1, 1: 2})
	if err != nil || string(b) != "\xa2\x01\x02\x02\x01" {
		t.Fatalf("deterministic encoding: %x %v", b, err)
	}
}
