package tdx

import (
	"errors"

	"github.com/attested-tls/go-expat/attester/internal/device"
)

// Failures of the quote service are *attester.DeviceError (Attester
// "tdx"); errors.Is(err, attester.ErrThrottled) tells throttling apart.

// errInFlight is the GetQuote "request in flight" status: try again later.
var errInFlight = device.Busy(errors.New("quote request in flight"))
