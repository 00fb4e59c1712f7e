package sevsnp

import (
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
