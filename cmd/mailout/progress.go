package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"mailout/internal/campaign"
)

// progress shows a campaign's progress: a redrawn bar on a terminal, a
// plain line every 10 seconds otherwise (logs, CI).
type progress struct {
	w        io.Writer
	name     string
	tty      bool
	mu       sync.Mutex
	last     time.Time
	drawn    bool
	lastLine campaign.Progress
}

func newProgress(w io.Writer, name string) *progress {
	p := &progress{w: w, name: name}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progress) update(s campaign.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastLine = s
	now := time.Now()
	if !p.tty && (now.Sub(p.last) < 10*time.Second || s.Sent == 0) {
		return
	}
	p.last = now
	done := s.Delivered + s.Failed + s.Suppressed
	elapsed := now.Sub(s.Started).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Sent) / elapsed
	}
	eta := "-"
	if rate > 0 && s.Total > done {
		eta = (time.Duration(float64(s.Pending+s.Deferred)/rate) * time.Second).Round(time.Second).String()
	}
	if p.tty {
		const width = 30
		fill := 0
		if s.Total > 0 {
			fill = done * width / s.Total
		}
		bar := strings.Repeat("#", fill) + strings.Repeat(".", width-fill)
		fmt.Fprintf(p.w, "\r[%s] %d/%d  delivered %d  failed %d  deferred %d  %.0f msg/s  ETA %s \x1b[K",
			bar, done, s.Total, s.Delivered, s.Failed, s.Deferred, rate, eta)
		p.drawn = true
		return
	}
	fmt.Fprintf(p.w, "progress %s: %d/%d final, delivered %d, failed %d, deferred %d, %.0f msg/s\n",
		p.name, done, s.Total, s.Delivered, s.Failed, s.Deferred, rate)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
