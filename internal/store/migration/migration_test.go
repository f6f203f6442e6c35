package migration

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		ok    bool
	}{
		{"embedded-like", []string{"0001_init.sql", "0002_more.sql"}, true},
		{"gap", []string{"0001_init.sql", "0003_more.sql"}, false},
		{"repeat", []string{"0001_init.sql", "0001_again.sql"}, false},
		{"no number", []string{"init.sql"}, false},
		{"short number", []string{"1_init.sql"}, false},
		{"starts at 2", []string{"0002_init.sql"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			migs, err := Load(fsys)
			if (err == nil) != tc.ok {
				t.Fatalf("Load(%v) err = %v, want ok=%v", tc.files, err, tc.ok)
			}
			if tc.ok && (len(migs) != 2 || migs[1].Version != 2 || migs[1].Name != "more" || migs[1].SQL != "SELECT 1;") {
				t.Fatalf("Load = %+v", migs)
			}
		})
	}
}
