package cmw_test

import (
	"fmt"

	"github.com/attested-tls/go-expat/cmw"
)

// An attester wraps its Evidence in a CMW record; the relying party decodes
// it strictly and reads the media type to pick a verifier.
func Example() {
	rec, err := cmw.NewRecord(cmw.MediaTypeTestKit, []byte("signed evidence"), cmw.Evidence)
	if err != nil {
		panic(err)
	}
	wire, err := rec.Marshal() // CBOR
	if err != nil {
		panic(err)
	}

	got, err := cmw.Decode(wire, nil) // default limits: 65535 bytes
	if err != nil {
		panic(err)
	}
	r, _ := got.Record()
	fmt.Println(got.Format())
	fmt.Println(r.MediaType == cmw.MediaTypeTestKit, r.Indicator)
	fmt.Printf("%s\n", r.Value)
	// Output:
	// CBOR record
	// true evidence
	// signed evidence
}

// A collection carries several conceptual messages; Walk visits its records.
func ExampleCMW_Walk() {
	col, _ := cmw.NewCollection("")
	cpu, _ := cmw.NewRecord(cmw.MediaTypeSEVSNP, []byte{1}, cmw.Evidence)
	gpu, _ := cmw.NewRecord("application/vnd.example.gpu", []byte{2}, cmw.Evidence)
	_ = col.Add(cmw.TextLabel("cpu"), cpu)
	_ = col.Add(cmw.TextLabel("gpu"), gpu)
	wire, _ := col.MarshalJSON()

	got, err := cmw.Decode(wire, nil)
	if err != nil {
		panic(err)
	}
	_ = got.Walk(func(path []cmw.Label, r cmw.Record) error {
		fmt.Println(path, r.MediaType, r.Value)
		return nil
	})
	// Output:
	// [cpu] application/vnd.go-expat.sev-snp-report+cbor [1]
	// [gpu] application/vnd.example.gpu [2]
}

// Decode rejects what veraison/cmw alone would accept, such as duplicate
// JSON members.
func ExampleDecode_strict() {
	_, err := cmw.Decode([]byte(`{"a":["a/b","AQ"],"a":["a/b","Ag"]}`), nil)
	fmt.Println(err)
	_, err = cmw.Decode(make([]byte, 70000), nil)
	fmt.Println(err)
	// Output:
	// cmw: duplicate JSON member "a"
	// cmw: 70000 bytes exceed the 65535-byte limit
}
