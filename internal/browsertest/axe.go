package browsertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Violation is one rule of axe-core that elements of the page break.
type Violation struct {
	ID      string          `json:"id"`     // the rule, such as "label" or "color-contrast"
	Impact  string          `json:"impact"` // "minor", "moderate", "serious" or "critical"
	Help    string          `json:"help"`   // what the rule asks for, in a sentence
	HelpURL string          `json:"helpUrl"`
	Nodes   []ViolationNode `json:"nodes"`
}

// ViolationNode is one element that breaks a rule.
type ViolationNode struct {
	// Target is the CSS selector of the element; for an element inside an
	// iframe or a shadow root, one selector a level, joined with " >>> ".
	Target  string `json:"target"`
	HTML    string `json:"html"`
	Summary string `json:"summary"` // axe's "Fix any of the following: ..."
}

// Serious reports whether the violation's impact is serious or critical:
// what keeps people who use assistive technology from using the page.
func (v Violation) Serious() bool {
	return v.Impact == "serious" || v.Impact == "critical"
}

func (v Violation) String() string {
	targets := make([]string, len(v.Nodes))
	for i, n := range v.Nodes {
		targets[i] = n.Target
	}
	return fmt.Sprintf("%s (%s): %s; elements: %s", v.ID, v.Impact, v.Help, strings.Join(targets, ", "))
}

// axeRun runs every rule of axe-core on the document and keeps what a test
// reports. Rules of the "experimental" tag stay off, as in axe's default.
const axeRun = `(async () => {
	const r = await axe.run(document, {resultTypes: ['violations']});
	return r.violations.map((v) => ({
		id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
		nodes: v.nodes.map((n) => ({
			target: n.target.map((s) => Array.isArray(s) ? s.join(' ') : String(s)).join(' >>> '),
			html: n.html, summary: n.failureSummary || '',
		})),
	}));
})()`

// Axe injects axe-core (MAILOUT_AXE) into the current page, unless the page
// has it already, runs it and returns the violations. When axe-core is not
// installed the test is skipped, or fails when MAILOUT_REQUIRE_PEERS=1.
func (b *Browser) Axe(t testing.TB) []Violation {
	t.Helper()
	src, err := b.axeSource()
	if err != nil {
		unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	// Evaluated through the DevTools protocol, axe-core is not subject to
	// the page's Content Security Policy and breaks none of its rules.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](
		`typeof axe === 'object' || (() => {`+src+"\n})()"))
	if err == nil {
		var vs []Violation
		vs, err = chromedp.Run(ctx, chromedp.Evaluate[[]Violation](axeRun, chromedp.EvalAwaitPromise))
		if err == nil {
			return vs
		}
	}
	t.Fatalf("browser: running axe-core on %s: %v", b.locationForMessage(), err)
	return nil
}

// AssertNoSeriousA11y runs axe-core on the current page and fails the test
// when a violation has the impact serious or critical, listing each with its
// rule, what the rule asks for and the elements that break it. Minor and
// moderate ones are logged.
func (b *Browser) AssertNoSeriousA11y(t testing.TB) {
	t.Helper()
	var serious []string
	for _, v := range b.Axe(t) {
		if v.Serious() {
			serious = append(serious, "  "+v.String())
		} else {
			t.Logf("accessibility (not failing): %s", v)
		}
	}
	if len(serious) > 0 {
		t.Errorf("axe-core: %d serious or critical accessibility violation(s) on %s:\n%s",
			len(serious), b.locationForMessage(), strings.Join(serious, "\n"))
	}
}

// axeSource reads axe.min.js once per browser.
func (b *Browser) axeSource() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.axeJS != "" {
		return b.axeJS, nil
	}
	if b.axeFile == "" {
		return "", fmt.Errorf("%w: %s is not set in the environment or the peers' env file", ErrUnavailable, envAxe)
	}
	src, err := os.ReadFile(b.axeFile)
	if err != nil {
		return "", fmt.Errorf("%w: %s=%s: %w", ErrUnavailable, envAxe, b.axeFile, err)
	}
	b.axeJS = string(src)
	return b.axeJS, nil
}

// locationForMessage is the page's address for a failure message, or a
// placeholder when even that cannot be read.
func (b *Browser) locationForMessage() string {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "the page"
	}
	return loc
}
