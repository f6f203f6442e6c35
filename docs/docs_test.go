package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// goTool runs the go command from the repository's root with extra
// environment variables and returns its combined output. go test puts the
// go command that runs the tests first in PATH.
func goTool(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH: %v", err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The mailout binary (the sink command included) must not link the testing
// package: it would register the test flags and grow the binary. A helper
// for tests that imports testing belongs in a _test.go file or takes a
// small interface instead.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	out, err := goTool(t, nil, "list", "-deps", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "mailout/cmd/mailout")
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var importers []string
	linked := false
	for line := range strings.Lines(out) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), ": ")
		if pkg == "testing" {
			linked = true
		}
		if slices.Contains(strings.Fields(imports), "testing") {
			importers = append(importers, pkg)
		}
	}
	if !strings.Contains(out, "mailout/cmd/mailout:") {
		t.Fatalf("go list did not list mailout/cmd/mailout:\n%s", out)
	}
	if linked {
		t.Errorf("cmd/mailout links the testing package; imported by %v", importers)
	}
}

// The campaign lock has an implementation for unix (flock) and Windows
// (LockFileEx); everywhere else (js/wasm, wasip1, plan9) the package must
// still build, and say that it cannot lock rather than fail to compile.
func TestCampaignLockBuildsWithoutFlockOrLockFileEx(t *testing.T) {
	// The lock's files alone: the rest of the package needs the SQLite
	// driver, which has no port to js/wasm.
	files := []string{"./internal/campaign/lock.go", "./internal/campaign/lock_other.go"}
	out, err := goTool(t, []string{"GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0"}, append([]string{"vet"}, files...)...)
	if err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go vet %s: %v\n%s", strings.Join(files, " "), err, out)
	}
}

// go.mod and go.sum are what go mod tidy makes of the code (scripts/test.sh
// checks the same before vet, and says what to run).
func TestModuleIsTidy(t *testing.T) {
	if out, err := goTool(t, nil, "mod", "tidy", "-diff"); err != nil {
		t.Fatalf("go.mod or go.sum is not tidy (run go mod tidy): %v\n%s", err, out)
	}
}

// repoPath matches a file or folder of the repository written in a page:
// internal/x/y.go, cmd/mailout/z.go, internal/store/sqlite.
var repoPath = regexp.MustCompile(`\b(?:internal|cmd|scripts|docs)/[A-Za-z0-9_./-]*[A-Za-z0-9_]`)

// Every file and folder that docs/architecture.md names exists: the page
// walks a recipient through real files, and a renamed or moved file must
// be renamed there too.
func TestArchitectureNamesRealFiles(t *testing.T) {
	page, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	paths := repoPath.FindAllString(string(page), -1)
	goFiles := 0
	for _, p := range paths {
		if strings.HasSuffix(p, ".go") {
			goFiles++
		}
		if _, err := os.Stat(filepath.Join("..", filepath.FromSlash(p))); err != nil {
			t.Errorf("docs/architecture.md names %s, which does not exist", p)
		}
	}
	if goFiles < 20 {
		t.Errorf("docs/architecture.md names %d .go files; the walk from the CSV to the report should name the file of each step", goFiles)
	}
}

var (
	// testName is a test, fuzz target or conformance case written in
	// backquotes: `TestKill9MidCampaignLosesNobody`, `testCrashLoop`.
	testName = regexp.MustCompile("`((?:Test|Fuzz|test)[A-Z0-9][A-Za-z0-9_]*)`")
	// goFile is a .go file written in backquotes.
	goFile = regexp.MustCompile("`((?:internal|cmd)/[A-Za-z0-9_./-]+\\.go)`")
)

// Every test docs/reliability.md cites is defined in a file named on the
// same line: the page lists only behaviour that has a test, and a renamed
// or deleted test must take its line with it.
func TestReliabilityCitesRealTests(t *testing.T) {
	page, err := os.ReadFile("reliability.md")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	source := func(path string) (string, bool) {
		if s, ok := sources[path]; ok {
			return s, true
		}
		b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
		if err != nil {
			return "", false
		}
		sources[path] = string(b)
		return string(b), true
	}
	cited := 0
	for n, line := range strings.Split(string(page), "\n") {
		names := testName.FindAllStringSubmatch(line, -1)
		files := goFile.FindAllStringSubmatch(line, -1)
		if len(names) > 0 && len(files) == 0 {
			t.Errorf("reliability.md:%d cites %s without the file that holds it", n+1, names[0][1])
		}
		for _, f := range files {
			if _, ok := source(f[1]); !ok {
				t.Errorf("reliability.md:%d names %s, which does not exist", n+1, f[1])
			}
		}
	names:
		for _, name := range names {
			cited++
			for _, f := range files {
				if src, ok := source(f[1]); ok && strings.Contains(src, "\nfunc "+name[1]+"(") {
					continue names
				}
			}
			t.Errorf("reliability.md:%d cites %s, which none of the files on that line defines", n+1, name[1])
		}
	}
	if cited < 100 {
		t.Errorf("reliability.md cites %d tests; the page should show each behaviour's test", cited)
	}
}
