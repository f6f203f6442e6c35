package smtpclient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		code     int
		enhanced string
		text     string
		protoErr bool
	}{
		{"single", "250 Ok\r\n", 250, "", "Ok", false},
		{"code only", "250\r\n", 250, "", "", false},
		{"bare LF", "250 Ok\n", 250, "", "Ok", false},
		{"multi-line", "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n", 250, "", "mx.example\nPIPELINING\nSIZE 100", false},
		{"enhanced", "550 5.1.1 User unknown\r\n", 550, "5.1.1", "User unknown", false},
		{"enhanced every line", "550-5.7.1 Blocked\r\n550 5.7.1 see url\r\n", 550, "5.7.1", "Blocked\nsee url", false},
		{"enhanced class mismatch kept as text", "550 4.1.1 odd\r\n", 550, "", "4.1.1 odd", false},
		{"not enhanced: version-like text", "250 1.2.3 build\r\n", 250, "", "1.2.3 build", false},
		{"enhanced four-digit part is text", "451 4.7.1000 x\r\n", 451, "", "4.7.1000 x", false},
		{"four-digit code", "2500 ok\r\n", 0, "", "", true},
		{"letters", "abc\r\n", 0, "", "", true},
		{"bad first digit", "150 x\r\n", 0, "", "", true},
		{"bad second digit", "260 x\r\n", 0, "", "", true},
		{"mixed codes", "250-a\r\n251 b\r\n", 0, "", "", true},
		{"no separator", "250x\r\n", 0, "", "", true},
		{"too long", "250 " + strings.Repeat("a", 2000) + "\r\n", 0, "", "", true},
		{"too many lines", strings.Repeat("250-a\r\n", 200) + "250 a\r\n", 0, "", "", true},
		{"too many bytes", strings.Repeat("250-"+strings.Repeat("b", 900)+"\r\n", 90) + "250 a\r\n", 0, "", "", true},
		{"Latin-1 text", "550 5.1.1 Unbekannter Empf\xe4nger\r\n", 550, "5.1.1", "Unbekannter Empfänger", false},
		{"control characters", "550 a\x1b[2Jb\r\n", 550, "", "a\ufffd[2Jb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readReply(bufio.NewReaderSize(strings.NewReader(tt.in), readerSize))
			if tt.protoErr {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("got %+v, %v; want a protocol error", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != tt.code || r.Enhanced != tt.enhanced || r.Text() != tt.text {
				t.Errorf("got %d %q %q, want %d %q %q", r.Code, r.Enhanced, r.Text(), tt.code, tt.enhanced, tt.text)
			}
		})
	}
}

func TestReadReplyTruncated(t *testing.T) {
	_, err := readReply(bufio.NewReader(strings.NewReader("250-a\r\n250")))
	if !errors.Is(err, io.EOF) {
		t.Errorf("got %v, want EOF", err)
	}
}

// FuzzReadReply: the parser never panics, never returns more than the caps,
// and any accepted reply has a valid code and consistent enhanced code.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 Ok\r\n", "250-a\r\n250 b\r\n", "550 5.1.1 x\r\n", "2500 ok\r\n", "abc\r\n",
		"250-a\r\n251 b\r\n", "250x\r\n", "421 4.7.0 bye\r\n", "250\r\n", "\xff\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), readerSize)
		for i := 0; i < 5; i++ {
			r, err := readReply(br)
			if err != nil {
				return
			}
			if r.Code < 200 || r.Code > 559 || len(r.Lines) > maxReplyLines {
				t.Fatalf("accepted bad reply %+v", r)
			}
			if r.Enhanced != "" && (!validEnhanced(r.Enhanced) || int(r.Enhanced[0]-'0') != r.Code/100) {
				t.Fatalf("bad enhanced code %q for %d", r.Enhanced, r.Code)
			}
		}
	})
}

func TestDotStuffing(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\r\n", "a\r\n"},
		{".a\r\n", "..a\r\n"},
		{"x\r\n.\r\ny", "x\r\n..\r\ny\r\n"},
		{"x\n.\ny\n", "x\r\n..\r\ny\r\n"},
		{"bare\rcr", "bare\r\ncr\r\n"},
		{"..two\n", "...two\r\n"},
		{"mid.dot\n", "mid.dot\r\n"},
		{"a\r", "a\r\n"},
		{"a\r\r", "a\r\n\r\n"},
		{"a\r\r\n", "a\r\n\r\n"},
		{"a\r.b\r\n", "a\r\n..b\r\n"},
		{"\r\n.\r\n", "\r\n..\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"\r", "\r\n"},
		// Already as on the wire: copied as is.
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"\r\n\r\n", "\r\n\r\n"},
		{"a.\r\n b\r\n", "a.\r\n b\r\n"},
		// Almost: a dot, a bare CR or LF, or no final CRLF anywhere.
		{"a\r\nb\r\n.\r\n", "a\r\nb\r\n..\r\n"},
		{".a\r\n", "..a\r\n"},
		{"a\rb\r\n\n", "a\r\nb\r\n\r\n"},
		{"a\r\r\n\n", "a\r\n\r\n\r\n"},
		{"\na\r\n", "\r\na\r\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := writeDotStuffed(w, []byte(tt.in)); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if b.String() != tt.want {
			t.Errorf("writeDotStuffed(%q) = %q, want %q", tt.in, b.String(), tt.want)
		}
	}
}

// FuzzDotStuffing: whatever the body, reading the stuffed output back as
// DATA (RFC 5321 §4.5.2, net/textproto's DotReader) gives the body with
// normalised line ends, and the terminator cannot appear early.
func FuzzDotStuffing(f *testing.F) {
	for _, s := range []string{"", ".", "a\r\n.\r\nb", ".\n.\n", "x\r.\ry", "..\r\n", "a\r", "\r\r\n.", "\r.\r\n.\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := writeDotStuffed(w, body); err != nil {
			t.Fatal(err)
		}
		w.WriteString(".\r\n")
		w.Flush()
		got, err := io.ReadAll(textproto.NewReader(bufio.NewReader(&b)).DotReader())
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(string(body), "\r\n", "\n"), "\r", "\n")
		if want != "" && !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if string(got) != want {
			t.Fatalf("round trip of %q gave %q, want %q", body, got, want)
		}
	})
}

// BenchmarkDotStuffing stuffs a rendered 20 KB message (CRLF lines of 76
// characters), the hot path of every DATA.
func BenchmarkDotStuffing(b *testing.B) {
	line := append(bytes.Repeat([]byte("x"), 74), '.', '\r', '\n')
	var body []byte
	for len(body) < 20<<10 {
		body = append(body, line...)
	}
	w := bufio.NewWriterSize(io.Discard, 4096)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := writeDotStuffed(w, body); err != nil {
			b.Fatal(err)
		}
	}
}
