package transport

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
	"mailout/internal/smtptest"
)

// The direct route's throughput to local sinks across many domains:
//
//	go test -run '^$' -bench BenchmarkDirect -benchtime 20000x ./internal/transport/
//
// 100 recipient domains share 4 MX hosts (4 sink addresses on 127.0.0.x,
// one port), as a campaign's domains share their providers' MX hosts. Each
// op is one message, one RCPT, to the next domain in turn, from `workers`
// goroutines at once (the scheduler's connections). The MX cache is warm
// after the first round, so the figure is SMTP cost: session reuse per MX
// host address, one transaction after another.

const benchDomains = 100

// benchSinks starts the sinks: smtptest (go-smtp, in-process) or Postfix's
// smtp-sink (a separate process, the machine's ceiling). It returns the
// port they share.
type benchSink func(b *testing.B, ips []string) int

func smtptestSinks(b *testing.B, ips []string) int {
	b.Helper()
	for range 20 {
		port, ok := 0, true
		var started []*smtptest.Server
		for _, ip := range ips {
			s, err := smtptest.New(smtptest.Options{Addr: net.JoinHostPort(ip, strconv.Itoa(port))})
			if err != nil {
				ok = false
				break
			}
			started = append(started, s)
			if port == 0 {
				_, p, _ := net.SplitHostPort(s.Addr)
				port, _ = strconv.Atoi(p)
			}
		}
		if ok {
			b.Cleanup(func() {
				for _, s := range started {
					s.Close()
				}
			})
			return port
		}
		for _, s := range started {
			s.Close()
		}
	}
	b.Fatal("no port free on every sink address")
	return 0
}

// postfixSinks runs Postfix's smtp-sink(1) on each address: it answers
// every command at once and discards the mail.
func postfixSinks(b *testing.B, ips []string) int {
	b.Helper()
	bin := os.Getenv("MAILOUT_PEER_SMTP_SINK")
	if bin == "" {
		bin, _ = exec.LookPath("smtp-sink")
	}
	if bin == "" {
		if p := "/usr/sbin/smtp-sink"; fileExists(p) {
			bin = p
		}
	}
	if bin == "" {
		b.Skip("smtp-sink not installed (scripts/test-setup.sh installs it)")
	}
	l, err := net.Listen("tcp", ips[0]+":0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		// 256: listen backlog. smtp-sink(1) requires -u when run as root.
		args := []string{addr, "256"}
		if os.Geteuid() == 0 {
			args = append([]string{"-u", "nobody"}, args...)
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			b.Fatalf("smtp-sink: %v", err)
		}
		b.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		waitListening(b, addr)
	}
	return port
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func waitListening(b *testing.B, addr string) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("%s is not listening", addr)
}

func BenchmarkDirect(b *testing.B) {
	for _, sink := range []struct {
		name  string
		start benchSink
		ips   []string
	}{
		{"smtptest", smtptestSinks, []string{"127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"}},
		{"smtp-sink", postfixSinks, []string{"127.0.0.51", "127.0.0.52", "127.0.0.53", "127.0.0.54"}},
	} {
		for _, workers := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("sink=%s/workers=%d", sink.name, workers), func(b *testing.B) {
				benchDirect(b, sink.start, sink.ips, workers, 0)
			})
		}
		// The same without session reuse: one session per message.
		b.Run(fmt.Sprintf("sink=%s/workers=8/per-connection=1", sink.name), func(b *testing.B) {
			benchDirect(b, sink.start, sink.ips, 8, 1)
		})
	}
}

func benchDirect(b *testing.B, start benchSink, ips []string, workers, perConn int) {
	port := start(b, ips)
	z := mxtest.NewZone()
	msgs := make([]*Message, benchDomains)
	for i := range benchDomains {
		dom := fmt.Sprintf("d%03d.bench.test", i)
		host := fmt.Sprintf("mx%d.bench.test", i%len(ips))
		z.MX(dom, 10, host)
		to := "rcpt@" + dom
		body := fmt.Sprintf("From: news@example.com\r\nTo: %s\r\nSubject: bench\r\nMessage-ID: <%d@example.com>\r\n\r\n%s", to, i, benchBody)
		msgs[i] = &Message{From: "news@example.com", To: to, Domain: dom, MessageID: fmt.Sprint(i) + "@example.com", Data: []byte(body)}
	}
	for i, ip := range ips {
		z.A(fmt.Sprintf("mx%d.bench.test", i), ip)
	}
	ns := mxtest.Start(b, z)
	r, err := mx.New(mx.Config{Servers: []string{ns.Addr()}, AllowLoopback: true, Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDirect(DirectConfig{Resolver: r, LocalName: "sender.example.com", Port: port, PerConnection: perConn,
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()

	var next atomic.Int64
	var firstErr sync.Once
	b.SetBytes(int64(len(msgs[0].Data)))
	b.ResetTimer()
	start0 := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				res := d.Deliver(b.Context(), msgs[i%benchDomains])
				if res.Class != outcome.Delivered {
					firstErr.Do(func() { b.Errorf("message %d: %+v", i, res.Result) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(ns.Queries(dns.TypeMX)), "mx-queries")
	if n := ns.Queries(dns.TypeMX); n > benchDomains {
		b.Errorf("%d MX queries for %d domains", n, benchDomains)
	}
}

// benchBody is a 1 KiB text body.
var benchBody = func() string {
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
	s := ""
	for len(s) < 1024 {
		s += line
	}
	return s
}()
