package smtpclient

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// A server that trickles an endless reply, a few bytes at a time, never
// holds a step longer than its timeout: the deadline is set once per step,
// not moved by each byte that arrives (a slowloris receiver).
func TestTricklingReplyEndsAtTheStepTimeout(t *testing.T) {
	addr := serveOnce(t, func(conn net.Conn) {
		// A multi-line greeting that never ends, one line every 20 ms;
		// after 10 s the server gives up, so a client that waits for it
		// sees a closed connection, not its deadline.
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
			if _, err := conn.Write([]byte("220-still greeting you\r\n")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	timeouts := shortTimeouts()
	timeouts.Greeting = 200 * time.Millisecond
	_, err := Dial(context.Background(), Config{Addr: addr, Host: "localhost", LocalName: "client.test", Timeouts: timeouts})
	var e *Error
	if !errors.As(err, &e) || e.Command != "connect" || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Dial against a trickled greeting: %v; want the greeting's deadline", err)
	}
}
