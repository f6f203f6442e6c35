package sqlite

import (
	"encoding/json"
	"maps"
	"testing"
)

// What encodeFields writes, decodeFields reads back, whether it takes the
// direct path or encoding/json's.
func TestFieldsRoundTrip(t *testing.T) {
	for _, f := range []map[string]string{
		nil,
		{"first_name": "Ana", "city": "Málaga"},
		{"quote": `say "hi"`, "back": `a\b`, "html": "<b>&</b>", "nl": "a\nb", "tab": "\t"},
		{"": "", "empty": ""},
		{"bad utf-8": "\xff\xfe", "ok": "日本"},
	} {
		s, err := encodeFields(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFields(s)
		if err != nil {
			t.Fatalf("decode %s: %v", s, err)
		}
		var want map[string]string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) || len(got) != len(f) {
			t.Errorf("%s: decoded %v, want %v", s, got, want)
		}
	}
}

// FuzzDecodeFields: on any text, decodeFields gives exactly what
// json.Unmarshal gives (the same map, or an error when it errs).
func FuzzDecodeFields(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"a":"b","c":"d"}`, `{"a":"b","a":"c"}`, `{"a":"\u00e1"}`,
		`{"a": "b"}`, `{"a":1}`, `null`, `{"a":"b"`, "{\"a\":\"\x01\"}", "{\"\xff\":\"x\"}", `{"a":"b",}`, `{,}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gotErr := decodeFields(s)
		var want map[string]string
		wantErr := json.Unmarshal([]byte(s), &want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, json.Unmarshal's %v", s, gotErr, wantErr)
		}
		if gotErr == nil && (!maps.Equal(got, want) || (got == nil) != (want == nil)) {
			t.Fatalf("%q: %v, json.Unmarshal gives %v", s, got, want)
		}
	})
}

// BenchmarkDecodeFields: the merge fields of one claimed row, as the
// harness's list has them, by decodeFields and by encoding/json.
func BenchmarkDecodeFields(b *testing.B) {
	s, err := encodeFields(map[string]string{"first_name": "Name123", "city": "City7", "code": "C0000123"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decodeFields", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeFields(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		for b.Loop() {
			var m map[string]string
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzEncodeFields: encodeFields writes exactly what json.Marshal writes.
func FuzzEncodeFields(f *testing.F) {
	for _, s := range [][4]string{{"first_name", "Ana", "city", "Málaga"}, {"a", `"q"`, "b", `\`}, {"x", "<&>", "", ""},
		{"k", "\u2028", "k2", "\xff"}, {"é", "ü\x7f", "z", "a\tb"}} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		got, err := encodeFields(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Fatalf("%q: encodeFields %s, json.Marshal %s", m, got, want)
		}
	})
}

// BenchmarkEncodeFields: one imported row's merge fields.
func BenchmarkEncodeFields(b *testing.B) {
	m := map[string]string{"first_name": "Name123", "city": "City7", "code": "C0000123"}
	b.Run("encodeFields", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeFields(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
