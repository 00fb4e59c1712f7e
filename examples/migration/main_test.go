package main

import (
	"bytes"
	"strings"
	"testing"
)

// The migration goes to the destination at the source's TCB and is
// refused, with the TCB check, by the one at an older firmware; the
// refused destination receives nothing.
func TestMigration(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"destination-a.test attested: affirming, TCB bl=3 tee=0 snp=8 ucode=115",
		`migrated: destination-a.test received "vm-state"`,
		"refused destination-b.test: tcb check",
		"REPORTED_TCB bl=3 tee=0 snp=7 ucode=115 is below the minimum bl=3 tee=0 snp=8 ucode=115",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "migrated: destination-b") {
		t.Fatalf("the VM state went to the older platform:\n%s", s)
	}
}
