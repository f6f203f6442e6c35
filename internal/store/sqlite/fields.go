package sqlite

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// encodeFields stores merge fields as a compact JSON object ("{}" when
// there are none), byte for byte what json.Marshal writes: keys sorted,
// strings escaped. Values that need no escaping, the common case, are
// written directly (json.Marshal was a seventh of an import's CPU);
// anything else goes through json.Marshal.
func encodeFields(f map[string]string) (string, error) {
	if len(f) == 0 {
		return "{}", nil
	}
	keys := make([]string, 0, len(f))
	size := 2
	plain := true
	for k, v := range f {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
		plain = plain && needsNoEscape(k) && needsNoEscape(v)
	}
	if !plain {
		b, err := json.Marshal(f)
		if err != nil {
			return "", fmt.Errorf("fields: %w", err)
		}
		return string(b), nil
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(k)
		b.WriteString(`":"`)
		b.WriteString(f[k])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// needsNoEscape: json.Marshal writes s as it is, between quotes: valid
// UTF-8 without control characters, '"', '\\', the HTML characters '<',
// '>' and '&', or U+2028 and U+2029.
func needsNoEscape(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s) && !strings.Contains(s, "\u2028") && !strings.Contains(s, "\u2029")
}

// decodeFields reads what encodeFields wrote. Claim decodes one object per
// recipient, and encoding/json was a third of a claim's CPU: the common
// case, a flat object of strings without escapes, is split here directly
// (the values share the row's text); anything else (escapes, whitespace,
// invalid UTF-8, a repeated key) goes to encoding/json, so the result is
// always the one json.Unmarshal gives.
func decodeFields(s string) (map[string]string, error) {
	if m, ok := decodeFlat(s); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeFlat splits `{"k":"v",…}` with no escapes, or reports false.
func decodeFlat(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	m := make(map[string]string, strings.Count(body, `":"`))
	if body == "" {
		return m, true
	}
	for {
		k, rest, ok := plainString(body)
		if !ok || rest == "" || rest[0] != ':' {
			return nil, false
		}
		v, rest, ok := plainString(rest[1:])
		if !ok {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		m[k] = v
		if rest == "" {
			return m, true
		}
		if rest[0] != ',' {
			return nil, false
		}
		body = rest[1:]
	}
}

// plainString reads a JSON string at the start of s that needs no
// decoding: no backslash, no control character, valid UTF-8.
func plainString(s string) (str, rest string, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	j := strings.IndexByte(s[1:], '"')
	if j < 0 {
		return "", "", false
	}
	str = s[1 : 1+j]
	for i := 0; i < len(str); i++ {
		if c := str[i]; c < 0x20 || c == '\\' {
			return "", "", false
		}
	}
	if !utf8.ValidString(str) {
		return "", "", false
	}
	return str, s[2+j:], true
}
