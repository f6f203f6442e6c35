package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chromedp/chromedp"
)

// ArtifactsDir returns the directory of the files a test leaves for a
// person to look at (screenshots), creating it:
// $MAILOUT_ARTIFACTS/browser/<test name>, or the same below the system's
// temporary directory when MAILOUT_ARTIFACTS is not set. It is kept after
// the test, so that a failure can be looked at.
func ArtifactsDir(t interface{ Name() string }) (string, error) {
	base := os.Getenv(envArtifacts)
	if base == "" {
		base = filepath.Join(os.TempDir(), "mailout-artifacts")
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, "browser", fileName(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the artefacts directory: %w", err)
	}
	return dir, nil
}

// fileName makes a test or screenshot name safe as one path element on
// every system: letters, digits, '.', '-' and '_' stay, the rest (the '/'
// of subtests too) becomes '_'.
func fileName(name string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
	s = strings.Trim(s, ".")
	if s == "" {
		s = "_"
	}
	return s
}

// Screenshot saves a PNG of the whole page (beyond the window's height)
// as <name>.png in the artefacts directory, logs its path and returns it.
// A file of the same name is replaced.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	path, err := b.screenshot(name)
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	return path
}

func (b *Browser) screenshot(name string) (string, error) {
	dir, err := ArtifactsDir(b.t)
	if err != nil {
		return "", err
	}
	// Its own deadline, from the tab's context: it also runs when a step
	// failed because its deadline passed.
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout())
	defer cancel()
	// Quality 100 means PNG; the capture goes beyond the window's height.
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fileName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", err
	}
	b.t.Logf("screenshot: %s", path)
	return path, nil
}
