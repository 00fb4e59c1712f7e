//go:build !linux

package expat

import "crypto/tls"

// boundSendQueue is Linux-only (TCP_NOTSENT_LOWAT); elsewhere it does
// nothing.
func boundSendQueue(*tls.Conn, int) error { return nil }
