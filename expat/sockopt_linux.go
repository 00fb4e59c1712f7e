package expat

import (
	"crypto/tls"
	"syscall"

	"golang.org/x/sys/unix"
)

// boundSendQueue sets TCP_NOTSENT_LOWAT to n on the socket under tc, if it
// is one (Config.SendQueue). n == 0 leaves it alone.
func boundSendQueue(tc *tls.Conn, n int) error {
	sc, ok := tc.NetConn().(syscall.Conn)
	if !ok || n <= 0 {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		// Only TCP sockets take the option; others are left as they are.
		if t, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || t != unix.IPPROTO_TCP {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	})
	if err != nil {
		return err
	}
	return serr
}
