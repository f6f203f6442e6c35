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
