package sevsnp

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
)

func parsePEMCert(data []byte) ([]byte, error) {
	blk, rest := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" || len(rest) != 0 {
		return nil, errors.New("want exactly one PEM CERTIFICATE block")
	}
	return blk.Bytes, nil
}

// pemCerts parses a sequence of PEM CERTIFICATE blocks, allowing only
// white space after the last one.
func pemCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		blk, rest := pem.Decode(data)
		if blk == nil {
			if len(bytes.TrimSpace(data)) != 0 {
				return nil, errors.New("trailing data after PEM blocks")
			}
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			return nil, errors.New("PEM block is not a CERTIFICATE")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		data = rest
	}
}
