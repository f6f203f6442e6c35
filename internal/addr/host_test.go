package addr

import "testing"

func TestHostName(t *testing.T) {
	good := []struct{ in, want string }{
		{"smtp.example.com", "smtp.example.com"},
		{"SMTP.Example.COM.", "smtp.example.com"},
		{"localhost", "localhost"},
		{"mailhub", "mailhub"},
		{"desk_top.lan", "desk_top.lan"},
		{"smtp.bücher.example", "smtp.xn--bcher-kva.example"},
		{"mail.BÜCHER.example", "mail.xn--bcher-kva.example"},
		{"smtp.xn--bcher-kva.example", "smtp.xn--bcher-kva.example"},
	}
	for _, tt := range good {
		got, err := HostName(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("HostName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", ".", "127.0.0.1:587", "host:25", "two words", "a..b", "-lead.example",
		"trail-.example", "[192.0.2.1]", "user@host", "a/b", "host\r\nRSET", "x\x00y",
		"a." + string(make([]byte, 64)) + ".example", "bad\u202e.example"} {
		if got, err := HostName(in); err == nil {
			t.Errorf("HostName(%q) = %q, want an error", in, got)
		}
	}
}
