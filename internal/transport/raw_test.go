package transport

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// rawServer is an SMTP server on 127.0.0.1 written line by line, for
// behaviour go-smtp does not have. Each connection is greeted, EHLO gets
// ehlo (the lines after the first of the 250 reply), and every later line
// the client sends goes to answer, which returns the reply lines to write
// ("" for none) and whether to close the connection after them. After a
// 354 the body is read up to "." and answer(".") gives the reply to it.
// Every command line the client sent is kept.
type rawServer struct {
	Addr string
	mu   sync.Mutex
	seen []string
}

func startRaw(t *testing.T, ehlo []string, answer func(line string) (reply string, hangUp bool)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &rawServer{Addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn, ehlo, answer)
		}
	}()
	return s
}

func (s *rawServer) serve(conn net.Conn, ehlo []string, answer func(string) (string, bool)) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	say := func(r string) {
		if r != "" {
			_, _ = conn.Write([]byte(strings.ReplaceAll(r, "\n", "\r\n") + "\r\n"))
		}
	}
	say("220 raw.test ESMTP")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.seen = append(s.seen, line)
		s.mu.Unlock()
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			r := "250-raw.test"
			for _, e := range ehlo {
				r += "\n250-" + e
			}
			say(r[:strings.LastIndex(r, "250-")] + "250 " + r[strings.LastIndex(r, "250-")+4:])
			continue
		case cmd == "QUIT":
			say("221 Bye")
			return
		}
		r, hangUp := answer(line)
		say(r)
		if hangUp {
			return
		}
		if strings.HasPrefix(r, "354") {
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			r, hangUp := answer(".")
			say(r)
			if hangUp {
				return
			}
		}
	}
}

// lines returns what the client sent.
func (s *rawServer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// okAnswer accepts everything.
func okAnswer(line string) (string, bool) {
	switch cmd := strings.ToUpper(line); {
	case strings.HasPrefix(cmd, "DATA"):
		return "354 go ahead", false
	case cmd == ".":
		return "250 2.0.0 Ok", false
	}
	return "250 2.0.0 Ok", false
}
