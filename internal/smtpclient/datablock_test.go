package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// bodyServer answers one serial transaction on 127.0.0.1 and reads the
// message body with readBody, then answers the final "." when readBody
// returns true. Socket buffers are kept small on both ends so that the
// client's writes wait for the server's reads, as over a real network.
func bodyServer(t *testing.T, readBody func(conn net.Conn, br *bufio.Reader) bool) (addr string, dial func(context.Context, string, string) (net.Conn, error)) {
	t.Helper()
	addr = serveOnce(t, func(conn net.Conn) {
		_ = conn.(*net.TCPConn).SetReadBuffer(32 << 10)
		br := bufio.NewReaderSize(conn, 16<<10)
		say := func(s string) { _, _ = conn.Write([]byte(s + "\r\n")) }
		say("220 slow.test ESMTP")
		for _, r := range []string{"250-slow.test\r\n250 SIZE 0", "250 Ok", "250 Ok", "354 go ahead"} {
			if _, err := br.ReadString('\n'); err != nil { // EHLO, MAIL, RCPT, DATA
				return
			}
			say(r)
		}
		if !readBody(conn, br) {
			return
		}
		say("250 2.0.0 Ok: queued")
		if _, err := br.ReadString('\n'); err == nil { // QUIT
			say("221 Bye")
		}
	})
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetWriteBuffer(32 << 10)
		}
		return c, err
	}
	return addr, dial
}

// serveOnce listens on 127.0.0.1, serves the first connection with serve
// in a goroutine (closing it after) and returns the address.
func serveOnce(t *testing.T, serve func(conn net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		serve(conn)
	}()
	return ln.Addr().String()
}

// bigBody is a message of about 6 MB of 78-character lines.
func bigBody() []byte {
	line := strings.Repeat("x", 76) + "\r\n"
	return append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte(line), 6<<20/len(line))...)
}

// RFC 5321 §4.5.3.2.5: the data block timeout bounds each write of the
// body, not the whole body. A server that takes the 6 MB steadily but
// slowly, several times the timeout in all, gets the whole message.
func TestDataBlockTimeoutPerWrite(t *testing.T) {
	const block = 300 * time.Millisecond
	addr, dial := bodyServer(t, func(conn net.Conn, br *bufio.Reader) bool {
		// About 4 MB/s: a 64 KB block is read in some 16 ms.
		buf := make([]byte, 16<<10)
		var tail []byte
		for {
			n, err := br.Read(buf)
			if err != nil {
				return false
			}
			tail = append(tail, buf[:n]...)
			if bytes.HasSuffix(tail, []byte("\r\n.\r\n")) {
				return true
			}
			tail = tail[max(0, len(tail)-5):]
			time.Sleep(4 * time.Millisecond) // the slow reader under test
		}
	})
	to := shortTimeouts()
	to.DataBlock = block
	c, err := Dial(ctx, Config{Addr: addr, Host: "localhost", Timeouts: to, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, bigBody(), SendOptions{}); err != nil {
		t.Fatalf("Send after %v: %v", time.Since(start), err)
	}
	if d := time.Since(start); d < 3*block {
		t.Fatalf("the body went out in %v, not several times the %v block timeout: the test proves nothing", d, block)
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
}

// A server that stops reading altogether: the write that waits for it
// times out after the data block timeout. The final "." was not sent, so
// the failure is not ambiguous.
func TestDataBlockTimeoutStalledReader(t *testing.T) {
	const block = 200 * time.Millisecond
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	addr, dial := bodyServer(t, func(net.Conn, *bufio.Reader) bool {
		<-stop
		return false
	})
	to := shortTimeouts()
	to.DataBlock = block
	c, err := Dial(ctx, Config{Addr: addr, Host: "localhost", Timeouts: to, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Send(ctx, "a@x.org", []string{"b@y.com"}, bigBody(), SendOptions{})
	e := asError(t, err)
	if e.Command != "BODY" || !errors.Is(err, os.ErrDeadlineExceeded) || e.Ambiguous() {
		t.Errorf("got %v, want a BODY write timeout, not ambiguous", err)
	}
	if d := time.Since(start); d > 10*block {
		t.Errorf("gave up after %v, want about the %v block timeout", d, block)
	}
}
