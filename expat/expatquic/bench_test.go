package expatquic

import (
	"context"
	"io"
	"testing"

	"github.com/quic-go/quic-go"
)

// streamPair is what the throughput benchmark needs of a connection pair.
type streamPair struct {
	open   func(context.Context) (*quic.Stream, error)
	accept func(context.Context) (*quic.Stream, error)
}

// benchThroughput writes b.N chunks of 64 KiB on one stream; the peer
// reads and discards them; the time includes draining.
func benchThroughput(b *testing.B, p streamPair) {
	ctx := context.Background()
	chunk := make([]byte, 64<<10)
	done := make(chan int64, 1)
	go func() {
		s, err := p.accept(ctx)
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.Copy(io.Discard, s)
		done <- n
	}()
	s, err := p.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	if n := <-done; n != int64(b.N*len(chunk)) {
		b.Fatalf("peer read %d bytes", n)
	}
}

// BenchmarkStreamThroughput: bulk data on one stream of an attested
// connection (server attestation at setup) vs plain quic-go.
func BenchmarkStreamThroughput(b *testing.B) {
	k := newKit(b)
	ctx := context.Background()
	b.Run("plain", func(b *testing.B) {
		l, err := quic.ListenAddr("127.0.0.1:0", k.serverTLS(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		c, err := quic.DialAddr(ctx, l.Addr().String(), k.clientTLS(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseWithError(0, "")
		s, err := l.Accept(ctx)
		if err != nil {
			b.Fatal(err)
		}
		benchThroughput(b, streamPair{open: c.OpenStreamSync, accept: s.AcceptStream})
	})
	b.Run("attested", func(b *testing.B) {
		l := listen(b, k, k.serverConfig(false))
		c, err := Dial(ctx, l.Addr().String(), k.clientTLS(), nil, k.clientConfig(false))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		s, err := l.Accept(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchThroughput(b, streamPair{open: c.OpenStreamSync, accept: s.AcceptStream})
	})
}
