package tsm

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-configfs-tsm/report"
)

// busyClient is a configfs-tsm whose inblob write fails with EBUSY, as a
// throttled guest driver does.
type busyClient struct{}

func (busyClient) MkdirTemp(dir, pattern string) (string, error) { return dir + "/entry", nil }
func (busyClient) ReadFile(name string) ([]byte, error)          { return []byte("0\n"), nil }
func (busyClient) ReadDir(string) ([]os.DirEntry, error)         { return nil, nil }
func (busyClient) RemoveAll(string) error                        { return nil }
func (busyClient) WriteFile(name string, _ []byte) error {
	return &os.PathError{Op: "write", Path: name, Err: syscall.EBUSY}
}

func TestGetKeepsErrno(t *testing.T) {
	_, err := report.Get(busyClient{}, &report.Request{InBlob: make([]byte, 64)})
	if err == nil {
		t.Fatal("report.Get succeeded against a busy device")
	}
	if errors.Is(err, syscall.EBUSY) {
		t.Skip("go-configfs-tsm now keeps the errno itself; tsm.Get is no longer needed")
	}
	_, err = Get(busyClient{}, &report.Request{InBlob: make([]byte, 64)})
	if !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("tsm.Get lost the errno: %v", err)
	}
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("not a *tsm.Error: %T", err)
	}
}
