package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ConsoleMessage is an error the page's console showed: a console.error or
// failed console.assert call, an exception nothing caught, or an error of
// the browser itself about the page (a failed request, a refused script:
// Chromium logs every CSP violation here too, with Source "security").
type ConsoleMessage struct {
	// Source is "console", "exception", or the browser log's source
	// ("network", "security", "javascript", ...).
	Source string
	Text   string
	URL    string // where it came from, when known
	Line   int64  // 1-based; 0 when unknown
}

func (m ConsoleMessage) String() string {
	s := m.Source + ": " + m.Text
	if m.URL != "" {
		s += fmt.Sprintf(" (%s:%d)", m.URL, m.Line)
	}
	return s
}

// CSPViolation is one securitypolicyviolation event of the page: something
// the Content Security Policy refused (an inline script, a script or style
// from elsewhere, an inline event handler...).
type CSPViolation struct {
	// Directive is the directive that refused it, such as "script-src-elem".
	Directive string `json:"directive"`
	// BlockedURI is what was refused: "inline", "eval" or an address.
	BlockedURI string `json:"blockedURI"`
	// Document is the address of the page, SourceFile and Line where the
	// refused thing is (Line is 1-based, 0 when unknown).
	Document   string `json:"document"`
	SourceFile string `json:"sourceFile"`
	Line       int64  `json:"line"`
	// Sample is the start of the refused inline code, when the policy asks
	// for it ('report-sample').
	Sample string `json:"sample"`
	// Disposition is "enforce", or "report" for a report-only policy.
	Disposition string `json:"disposition"`
}

func (v CSPViolation) String() string {
	s := fmt.Sprintf("%s refused %s on %s", v.Directive, v.BlockedURI, v.Document)
	if v.SourceFile != "" {
		s += fmt.Sprintf(" (%s:%d)", v.SourceFile, v.Line)
	}
	return s
}

// cspBinding is the function the reporter calls: a DevTools binding, so
// the page's policy cannot refuse the report itself.
const cspBinding = "mailoutReportCSPViolation"

// cspReporter runs in every document before the page's scripts (CSP does
// not apply to scripts the DevTools protocol adds). The event bubbles from
// the element that broke the rule to the document; the capture listener
// sees it even when the page stops its propagation.
const cspReporter = `(() => {
	const report = globalThis.` + cspBinding + `;
	if (typeof report !== 'function') return;
	document.addEventListener('securitypolicyviolation', (e) => {
		report(JSON.stringify({
			directive: e.effectiveDirective || e.violatedDirective,
			blockedURI: e.blockedURI, document: e.documentURI,
			sourceFile: e.sourceFile, line: e.lineNumber,
			sample: e.sample, disposition: e.disposition,
		}));
	}, true);
})();`

// onEvent runs on chromedp's reading goroutine, in the order the browser
// sent the events, before the reply of any later command is handled: it
// only records.
func (b *Browser) onEvent(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		m := ConsoleMessage{Source: "console", Text: argsText(ev.Args)}
		if ev.StackTrace != nil && len(ev.StackTrace.CallFrames) > 0 {
			f := ev.StackTrace.CallFrames[0]
			m.URL, m.Line = f.URL, f.LineNumber+1
		}
		b.addConsole(m)
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d == nil {
			return
		}
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		b.addConsole(ConsoleMessage{Source: "exception", Text: text, URL: d.URL, Line: d.LineNumber + 1})
	case *log.EventEntryAdded:
		e := ev.Entry
		if e == nil || e.Level != log.EntryLevelError {
			return
		}
		m := ConsoleMessage{Source: string(e.Source), Text: e.Text, URL: e.URL}
		if e.LineNumber > 0 {
			m.Line = e.LineNumber + 1
		}
		b.addConsole(m)
	case *runtime.EventBindingCalled:
		if ev.Name != cspBinding {
			return
		}
		var v CSPViolation
		if err := json.Unmarshal([]byte(ev.Payload), &v); err != nil {
			v = CSPViolation{Directive: "?", BlockedURI: "unreadable report: " + err.Error()}
		}
		b.mu.Lock()
		b.csp = append(b.csp, v)
		b.notifyLocked()
		b.mu.Unlock()
	}
}

func (b *Browser) addConsole(m ConsoleMessage) {
	b.mu.Lock()
	b.console = append(b.console, m)
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *Browser) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// argsText joins the arguments of a console call as the console shows
// them: strings as they are, other values by their description.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		if a == nil {
			continue
		}
		var s string
		if a.Type == runtime.RemoteObjectTypeString && len(a.Value) > 0 && json.Unmarshal(a.Value, &s) == nil {
			parts = append(parts, s)
			continue
		}
		switch {
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// settle lets the page run what it has queued (a violation event is fired
// from a task of its own, after the code that caused it): two turns of
// the timer task queue. The browser sends the events of that work
// before the reply, and the reply is handled after them.
func (b *Browser) settle() {
	b.t.Helper()
	b.step("letting the page settle", chromedp.Evaluate[chromedp.Void](
		`new Promise((done) => setTimeout(() => setTimeout(done, 0), 0))`,
		chromedp.EvalAwaitPromise))
}

// ConsoleErrors returns the errors of the page's console since the browser
// started (or since ClearLogs), after letting the page settle.
func (b *Browser) ConsoleErrors() []ConsoleMessage {
	b.t.Helper()
	b.settle()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]ConsoleMessage(nil), b.console...)
}

// CSPViolations returns the Content Security Policy violations of the
// pages since the browser started (or since ClearLogs), after letting the
// page settle.
func (b *Browser) CSPViolations() []CSPViolation {
	b.t.Helper()
	b.settle()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]CSPViolation(nil), b.csp...)
}

// WaitCSPViolation waits (one step's deadline) until at least one CSP
// violation has been reported and returns them all.
func (b *Browser) WaitCSPViolation() []CSPViolation {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	for {
		b.mu.Lock()
		got, changed := append([]CSPViolation(nil), b.csp...), b.changed
		b.mu.Unlock()
		if len(got) > 0 {
			return got
		}
		select {
		case <-changed:
		case <-ctx.Done():
			b.fail("waiting for a CSP violation", ctx.Err())
			return nil
		}
	}
}

// ClearLogs forgets the console errors and CSP violations collected so
// far, for a test that checks one page after another.
func (b *Browser) ClearLogs() {
	b.t.Helper()
	b.settle()
	b.mu.Lock()
	b.console, b.csp = nil, nil
	b.mu.Unlock()
}

// AssertNoConsoleErrors fails the test when the page's console showed an
// error (CSP violations included: Chromium logs them too), listing them.
func (b *Browser) AssertNoConsoleErrors(t testing.TB) {
	t.Helper()
	if msgs := b.ConsoleErrors(); len(msgs) > 0 {
		lines := make([]string, len(msgs))
		for i, m := range msgs {
			lines[i] = "  " + m.String()
		}
		t.Errorf("the browser console showed %d error(s):\n%s", len(msgs), strings.Join(lines, "\n"))
	}
}

// AssertNoCSPViolations fails the test when a page broke its Content
// Security Policy, listing what was refused.
func (b *Browser) AssertNoCSPViolations(t testing.TB) {
	t.Helper()
	if vs := b.CSPViolations(); len(vs) > 0 {
		lines := make([]string, len(vs))
		for i, v := range vs {
			lines[i] = "  " + v.String()
		}
		t.Errorf("%d Content Security Policy violation(s):\n%s", len(vs), strings.Join(lines, "\n"))
	}
}
