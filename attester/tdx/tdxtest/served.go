package tdxtest

import (
	"net/http/httptest"
	"time"
)

// Served is a test Platform (default PCK options) whose collateral, valid
// from an hour before to a day after the time given to NewServed, a
// PCSServer serves on loopback: point a verifier's PCS at URL and its root
// CRL at URL + "/IntelSGXRootCA.der", and trust PKI.Root.
type Served struct {
	PKI      *PKI
	Platform *Platform
	PCS      *PCSServer
	URL      string
	srv      *httptest.Server
}

// NewServed creates the PKI, the Platform and the server. Close stops the
// server.
func NewServed(now time.Time) (*Served, error) {
	pki, err := NewPKI(now)
	if err != nil {
		return nil, err
	}
	pl, err := pki.NewPlatform(DefaultPCKOptions())
	if err != nil {
		return nil, err
	}
	col, err := pl.Collateral(Window(now, 24*time.Hour), nil)
	if err != nil {
		return nil, err
	}
	s := &Served{PKI: pki, Platform: pl, PCS: &PCSServer{}}
	s.PCS.Set(col)
	s.srv = httptest.NewServer(s.PCS)
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server.
func (s *Served) Close() { s.srv.Close() }
