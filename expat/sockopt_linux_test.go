package expat

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func notSentLowat(t *testing.T, c *Conn) int {
	t.Helper()
	rc, err := c.NetConn().NetConn().(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestSendQueue: Config.SendQueue becomes the socket's TCP_NOTSENT_LOWAT
// (DefaultSendQueue when zero), and a negative value leaves the socket's
// own setting.
func TestSendQueue(t *testing.T) {
	p := newPKI(t)
	k := newKit(t)
	for _, tc := range []struct {
		name string
		set  int
		want func(before int) int
	}{
		{"default", 0, func(int) int { return DefaultSendQueue }},
		{"64KiB", 64 << 10, func(int) int { return 64 << 10 }},
		{"untouched", -1, func(before int) int { return before }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tlsPair(t, p, tlsOpts{})
			read := func(c net.Conn) int {
				v := 0
				rc, _ := c.(*net.TCPConn).SyscallConn()
				rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
				return v
			}
			cbefore, sbefore := read(cli.NetConn()), read(srv.NetConn())
			s, c, serr, cerr := attestedPair(t, srv, cli,
				&Config{Attester: k.att, Certificate: &p.server, SendQueue: tc.set},
				&Config{RequirePeerAttestation: true, Verifier: k.ver, SendQueue: tc.set})
			if serr != nil || cerr != nil {
				t.Fatal(serr, cerr)
			}
			if got, want := notSentLowat(t, c), tc.want(cbefore); got != want {
				t.Errorf("client TCP_NOTSENT_LOWAT = %d, want %d", got, want)
			}
			if got, want := notSentLowat(t, s), tc.want(sbefore); got != want {
				t.Errorf("server TCP_NOTSENT_LOWAT = %d, want %d", got, want)
			}
		})
	}
}
