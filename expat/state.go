package expat

// The setup of a Conn is one small state machine:
//
//	setupIdle ──Handshake, or the first Read/Write/CloseWrite/Attest──▶ setupRunning
//	setupRunning ──every obligation met──▶ setupDone
//	setupRunning ──a failure, the setup's deadline, or Close──▶ setupFailed
//
// While it runs, Conn.waiting holds the obligations still open. Each is
// met exactly once, by the goroutine that does the work:
//
//	oblSetupSent   our SETUP frame is written (the setup goroutine)
//	oblPeerSetup   the peer's SETUP frame has arrived (the reader)
//	oblAnswer      our answer to the peer's setup request is written (its
//	               answering goroutine; only when the peer's SETUP carried
//	               a request)
//	oblPeerAttest  the peer's answer to our setup request is verified and
//	               committed (the setup goroutine; only when
//	               Config.RequirePeerAttestation is set)
//
// setupDone and setupFailed are final; hsDone is closed on entering either.
// The state is guarded by Conn.mu.
type setupState uint8

const (
	setupIdle setupState = iota
	setupRunning
	setupDone
	setupFailed
)

type obligation uint8

const (
	oblSetupSent obligation = 1 << iota
	oblPeerSetup
	oblAnswer
	oblPeerAttest
)

// metLocked records that o is met and completes the setup when nothing is
// left. c.mu is held.
func (c *Conn) metLocked(o obligation) {
	c.waiting &^= o
	if c.setup == setupRunning && c.waiting == 0 {
		c.setup = setupDone
		close(c.hsDone)
	}
}

// met is metLocked for callers that do not hold c.mu.
func (c *Conn) met(o obligation) {
	c.mu.Lock()
	c.metLocked(o)
	c.mu.Unlock()
}

// failSetupLocked ends a setup that has not completed with err. c.mu is
// held.
func (c *Conn) failSetupLocked(err error) {
	switch c.setup {
	case setupIdle, setupRunning:
		c.setup = setupFailed
		c.setupErr = err
		close(c.hsDone)
	}
}

// peerSetupSeen reports whether the peer's SETUP has arrived. c.mu is held.
func (c *Conn) peerSetupSeenLocked() bool {
	return c.setup != setupIdle && c.waiting&oblPeerSetup == 0
}
