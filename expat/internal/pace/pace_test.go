package pace

import (
	"errors"
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	p := New(2, 100*time.Millisecond)
	d1, err1 := p.Start()
	d2, err2 := p.Start()
	if err1 != nil || err2 != nil || d1 != 0 || d2 < 90*time.Millisecond || d2 > 100*time.Millisecond {
		t.Fatalf("starts: %v %v, %v %v", d1, err1, d2, err2)
	}
	if _, err := p.Start(); !errors.Is(err, ErrTooManyRequests) {
		t.Fatalf("third start: %v, want ErrTooManyRequests", err)
	}
	p.Done()
	d3, err := p.Start()
	if err != nil || d3 < 190*time.Millisecond {
		t.Fatalf("after Done: %v %v, want a wait of about 200 ms", d3, err)
	}
}
