package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasADocComment: a newcomer follows a recipient from folder
// to folder by reading package comments (STYLE.md habit 2).
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
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		for name, pkg := range pkgs {
			documented := false
			for _, f := range pkg.Files {
				if f.Doc != nil && len(strings.TrimSpace(f.Doc.Text())) > 20 {
					documented = true
				}
			}
			if !documented {
				t.Errorf("package %s (%s) has no doc comment saying where it sits in the flow", name, dir)
			}
		}
	}
}

// TestProtocolPackagesStayOutOfStorage: protocol packages import only the
// standard library, golang.org/x and their protocol libraries (STYLE.md).
func TestProtocolPackagesStayOutOfStorage(t *testing.T) {
	forbidden := []string{"mailout/internal/store", "mailout/internal/config", "mailout/internal/web", "mailout/internal/campaign", "mailout/internal/scheduler"}
	for _, pkg := range []string{"addr", "mx", "smtpclient", "queue", "throttle", "outcome"} {
		dir := filepath.Join("../../internal", pkg)
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			for fname, f := range p.Files {
				for _, imp := range f.Imports {
					path := strings.Trim(imp.Path.Value, `"`)
					for _, bad := range forbidden {
						if path == bad || strings.HasPrefix(path, bad+"/") {
							t.Errorf("%s imports %s", fname, path)
						}
					}
				}
			}
		}
	}
}
