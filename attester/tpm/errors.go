package tpm

import (
	"errors"

	"github.com/google/go-tpm/tpm2"
)

var (
	// ErrClosed reports use of a closed Conn, Attester or Key.
	ErrClosed = errors.New("tpm: closed")
	// ErrBroken reports a Conn whose command stream was abandoned (a
	// transport failure or a command cut short by its context): the TPM may
	// still be executing it, so no further command is sent. Open a new
	// transport.
	ErrBroken = errors.New("tpm: command stream broken")
	// ErrNoEvidence reports that a requested artefact (an EK certificate,
	// the event log) does not exist on this platform.
	ErrNoEvidence = errors.New("tpm: not present")
)

// Error is the failure of a TPM operation. Code is the TPM response code
// when the TPM answered with one (zero otherwise); Retryable tells whether
// the TPM said the command may succeed later (TPM_RC_RETRY, TPM_RC_YIELDED,
// TPM_RC_TESTING, TPM_RC_NV_RATE, TPM_RC_NV_UNAVAILABLE) and the retry
// budget or the caller's deadline ran out first.
type Error struct {
	Op        string
	Code      tpm2.TPMRC
	Retryable bool
	Err       error
}

func (e *Error) Error() string {
	s := "tpm: " + e.Op
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the same call may succeed later.
func (e *Error) Temporary() bool { return e.Retryable }
