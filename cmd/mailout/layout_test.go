package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasADocComment: a newcomer follows a recipient from folder
// to folder by reading package comments, so every package has one.
func TestEveryPackageHasADocComment(t *testing.T) {
	dirs := map[string]bool{}
	for _, root := range []string{"../../internal", "."} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				dirs[filepath.Dir(p)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d packages; the walk is wrong", len(dirs))
	}
	for dir := range dirs {
		documented, name := false, ""
		for _, f := range sourceFiles(t, dir, parser.ParseComments|parser.PackageClauseOnly) {
			name = f.Name.Name
			if f.Doc != nil && len(strings.TrimSpace(f.Doc.Text())) > 20 {
				documented = true
			}
		}
		if !documented {
			t.Errorf("package %s (%s) has no doc comment saying where it sits in the flow", name, dir)
		}
	}
}

// TestProtocolPackagesStayOutOfStorage: protocol packages import only the
// standard library, golang.org/x and their protocol libraries, never the
// store, configuration, web UI, campaign or scheduler packages.
func TestProtocolPackagesStayOutOfStorage(t *testing.T) {
	forbidden := []string{"mailout/internal/store", "mailout/internal/config", "mailout/internal/web", "mailout/internal/campaign", "mailout/internal/scheduler"}
	for _, pkg := range []string{"addr", "mx", "smtpclient", "queue", "throttle", "outcome"} {
		dir := filepath.Join("../../internal", pkg)
		for _, f := range sourceFiles(t, dir, parser.ImportsOnly) {
			for _, imp := range f.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				for _, bad := range forbidden {
					if path == bad || strings.HasPrefix(path, bad+"/") {
						t.Errorf("%s (package %s) imports %s", dir, pkg, path)
					}
				}
			}
		}
	}
}

// sourceFiles parses the non-test Go files of one folder.
func sourceFiles(t *testing.T, dir string, mode parser.Mode) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*ast.File
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, mode)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// TestCommandsOnlyWireTheService: package main parses flags and prints;
// the engine is the campaign service. It opens the store backend itself,
// and the transports, the scheduler and the SMTP client stay behind it,
// so that every front end (this command line, the web app, the fleet's
// workers) drives exactly the same engine.
func TestCommandsOnlyWireTheService(t *testing.T) {
	forbidden := []string{
		"mailout/internal/store/", // any backend: the service opens it
		"mailout/internal/transport",
		"mailout/internal/scheduler",
		"mailout/internal/smtpclient",
	}
	// What the commands may use, and for what.
	allowed := map[string]string{
		"mailout/internal/campaign":  "the campaign service",
		"mailout/internal/audience":  "the lists service",
		"mailout/internal/route":     "the route flag's values",
		"mailout/internal/recipient": "the list source given to the service, its caps",
		"mailout/internal/store":     "the domain types that are printed",
		"mailout/internal/report":    "printing summaries and reports",
		"mailout/internal/doctor":    "printing diagnoses; doctor --account",
		"mailout/internal/outcome":   "the outcome classes of retry --class",
		"mailout/internal/queue":     "the delivery states that are printed",
		"mailout/internal/throttle":  "the speed profiles of the speed flags",
		"mailout/internal/dkim":      "dkim keygen and dkim check",
		"mailout/internal/mx":        "the DNS server of dkim check",
		"mailout/internal/smtptest":  "the sink command's server",
		"mailout/internal/account":   "admin create and the token commands",
		"mailout/internal/web":       "the serve command's web app",
		"mailout/internal/api":       "the serve command's JSON API",
		"mailout/internal/metrics":   "the serve command's /metrics",
		"mailout/internal/secret":    "the serve command's secret key",
		"mailout/internal/setting":   "the serve command's stored relay passwords, for the campaign service",
		"mailout/internal/mailbox":   "the bounce mailbox service of bounces fetch",
		"mailout/internal/worker":    "the worker command and serve's own worker of a fleet",
	}
	files := sourceFiles(t, ".", parser.ImportsOnly)
	if len(files) < 10 {
		t.Fatalf("found only %d files of package main", len(files))
	}
	for _, f := range files {
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(path, "mailout/") {
				continue
			}
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, strings.TrimSuffix(bad, "/")+"/") {
					t.Errorf("package main imports %s: that is the campaign service's business", path)
				}
			}
			if _, ok := allowed[path]; !ok {
				t.Errorf("package main imports %s, which is neither the service nor a presentation package", path)
			}
		}
	}
}
