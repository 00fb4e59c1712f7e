package policy

import (
	"crypto"
	"fmt"
)

// ExtractCoRIM runs the CoRIM decoder on data and, when it decodes, every
// backend's extraction (for FuzzCoRIM). decodeErr is the decoder's error;
// bad says what is wrong with what was returned.
func ExtractCoRIM(data []byte, signer crypto.PublicKey) (decodeErr, bad error) {
	d, err := decodeCoRIM(data, signer)
	if err != nil {
		if d != nil {
			return err, fmt.Errorf("a document with error %v", err)
		}
		return err, nil
	}
	return nil, checkExtracted(d)
}

func checkExtracted(d *corimDoc) error {
	if pcrs, err := d.tpmPCRs(crypto.SHA256); err == nil {
		for n, vs := range pcrs {
			for _, v := range vs {
				if n < 0 || n > 23 || len(v) != 32 {
					return fmt.Errorf("PCR %d value of %d bytes", n, len(v))
				}
			}
		}
	}
	if ms, hd, err := d.snp(); err == nil {
		for _, m := range ms {
			if len(m) != 48 {
				return fmt.Errorf("MEASUREMENT of %d bytes", len(m))
			}
		}
		if hd != nil && len(hd) != 32 {
			return fmt.Errorf("HOST_DATA of %d bytes", len(hd))
		}
	}
	if mrtd, rtmr, err := d.tdx(); err == nil {
		for _, m := range append(mrtd, append(append(append(rtmr[0], rtmr[1]...), rtmr[2]...), rtmr[3]...)...) {
			if len(m) != 48 {
				return fmt.Errorf("TDX value of %d bytes", len(m))
			}
		}
	}
	var r ccaRefs
	if err := d.cca(&r); err == nil {
		for _, s := range r.software {
			if s.Type == "" || len(s.Value) == 0 {
				return fmt.Errorf("software component %+v", s)
			}
		}
		for _, pv := range r.pvs {
			if len(pv) != 64 {
				return fmt.Errorf("personalization value of %d bytes", len(pv))
			}
		}
	}
	return nil
}
