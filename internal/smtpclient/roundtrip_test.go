package smtpclient

import (
	"bytes"
	"fmt"
	"testing"

	"mailout/internal/smtptest"
)

// Lines that start with "." survive the trip through dot-stuffing and
// go-smtp's un-stuffing byte for byte (RFC 5321 §4.5.2).
func TestDotStuffingRoundTrip(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	c, err := Dial(ctx, Config{Addr: srv.Addr, Timeouts: shortTimeouts()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bodies := []struct{ in, want string }{
		{"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nend\r\n", "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nend\r\n"},
		{"Subject: lf\n\n.x\nlast", "Subject: lf\r\n\r\n.x\r\nlast\r\n"},
		{"Subject: end dot\r\n\r\n.", "Subject: end dot\r\n\r\n.\r\n"},
	}
	for i, b := range bodies {
		if _, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte(b.in), SendOptions{}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != len(bodies) {
		t.Fatalf("server got %d messages, want %d", len(msgs), len(bodies))
	}
	for i, b := range bodies {
		if string(msgs[i].Data) != b.want {
			t.Errorf("message %d: server got %q, want %q", i, msgs[i].Data, b.want)
		}
	}
}

// BenchmarkSend sends messages over one connection to an in-process sink,
// with and without PIPELINING. go-smtp's server always offers PIPELINING,
// so the serial case hides it from the client.
func BenchmarkSend(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		for _, pipelined := range []bool{true, false} {
			b.Run(fmt.Sprintf("size=%dKB/pipelined=%v", size>>10, pipelined), func(b *testing.B) {
				srv := smtptest.Start(b, smtptest.Options{})
				c, err := Dial(ctx, Config{Addr: srv.Addr})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				if !pipelined {
					delete(c.ext, "PIPELINING")
				}
				body := benchBody(size)
				b.SetBytes(int64(len(body)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, body, SendOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSendMany: the same messages in groups of 8 per SendMany call
// (one round trip per message instead of two), against Send one by one.
func BenchmarkSendMany(b *testing.B) {
	for _, size := range []int{1 << 10, 20 << 10} {
		for _, group := range []int{1, 8} {
			b.Run(fmt.Sprintf("size=%dKB/group=%d", size>>10, group), func(b *testing.B) {
				srv := smtptest.Start(b, smtptest.Options{})
				c, err := Dial(ctx, Config{Addr: srv.Addr})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				body := benchBody(size)
				txs := make([]Tx, group)
				for i := range txs {
					txs[i] = Tx{From: "a@x.org", Rcpts: []string{"b@y.com"}, Body: body}
				}
				b.SetBytes(int64(len(body)))
				b.ResetTimer()
				for i := 0; i < b.N; i += group {
					for _, r := range c.SendMany(ctx, txs, nil) {
						if r.Err != nil {
							b.Fatal(r.Err)
						}
					}
				}
			})
		}
	}
}

// benchBody is a message of about size bytes: a header and lines of 76
// characters.
func benchBody(size int) []byte {
	line := bytes.Repeat([]byte("x"), 76)
	body := []byte("Subject: bench\r\n\r\n")
	for len(body) < size {
		body = append(append(body, line...), '\r', '\n')
	}
	return body
}
