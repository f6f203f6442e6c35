package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes data to name in a new temporary folder.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// nothingStored fails when db holds a campaign.
func nothingStored(t *testing.T, db string) {
	t.Helper()
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return // not even the database was created
	}
	if c := mailout(t, nil, "campaigns", "--db", db); !strings.Contains(c.stdout, "No campaigns") {
		t.Errorf("a campaign was stored although the input was refused:\n%s", c.stdout)
	}
}

// wantRefused checks a send refused with exit 1 and an error holding every
// one of want.
func wantRefused(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("error does not say %q:\n%s", w, r.stderr)
		}
	}
}

// A field over the cap rejects its row, with the file, the line, the cap
// and the flag; the other rows are sent. The flag (or its variable in the
// environment) raises the cap.
func TestFieldOverTheCap(t *testing.T) {
	big := strings.Repeat("x", 70000)
	list := writeFile(t, "list.csv", []byte("email,notes\na@example.org,short\nb@example.org,"+big+"\nc@example.org,short\n"))
	msg := writeMessage(t, testMessage[:strings.Index(testMessage, "\n")+1]+"Subject: hi\n\nHello\n")
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "fields", "--recipients", list, "--message", msg)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, w := range []string{`list.csv:3: column "notes" is 70000 bytes long, over the cap of 65536 bytes`, "--max-field-bytes", "2 recipients imported"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
		}
	}
	if rows := byEmail(reportRows(t, db, "fields")); len(rows) != 2 || rows["b@example.org"] != nil {
		t.Errorf("report has %d recipients (%v), want a and c only", len(rows), rows)
	}

	r = mailout(t, nil, "send", "--db", db, "--campaign", "raised", "--recipients", list, "--message", msg, "--max-field-bytes", "128KiB")
	if r.code != exitOK || !strings.Contains(r.stderr, "3 recipients imported") {
		t.Errorf("--max-field-bytes 128KiB: exit %d, want all 3 imported\n%s", r.code, r.stderr)
	}
	r = mailout(t, map[string]string{"MAILOUT_MAX_FIELD_BYTES": "70000"}, "send", "--db", db, "--campaign", "env", "--recipients", list, "--message", msg)
	if r.code != exitOK || !strings.Contains(r.stderr, "3 recipients imported") {
		t.Errorf("MAILOUT_MAX_FIELD_BYTES=70000: exit %d, want all 3 imported\n%s", r.code, r.stderr)
	}
}

func TestRowsOverTheCap(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "a@example.org", "b@example.org", "c@example.org")
	r := mailout(t, nil, "send", "--db", db, "--recipients", list, "--message", writeMessage(t, testMessage), "--max-rows", "2")
	wantRefused(t, r, list+": more than 2 rows", "--max-rows")
	nothingStored(t, db)

	line := "d@example.org," + strings.Repeat("y", 300) + "\n"
	long := writeFile(t, "long.csv", []byte("email,first_name\na@example.org,A\n"+line))
	r = mailout(t, nil, "send", "--db", db, "--recipients", long, "--message", writeMessage(t, testMessage), "--max-row-bytes", "256")
	wantRefused(t, r, long+":3: a row longer than 256 bytes", "--max-row-bytes")
	nothingStored(t, db)
}

// The message and HTML files and the attachments are read whole into the
// campaign: each must be a regular file within its cap, or nothing is
// stored and the error names the file, the cap and the flag.
func TestMessageFilesOverTheCap(t *testing.T) {
	list := writeList(t, "a@example.org")
	msg := writeMessage(t, testMessage)
	big := func(name string, size int64) string { // sparse: nothing is written
		p := filepath.Join(t.TempDir(), name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"message file over 1 MiB", []string{"--message", big("message.txt", 1<<20+1)},
			[]string{"message.txt: 1 MiB is over the cap on a message file (1048576 bytes)", "--max-message-bytes"}},
		{"HTML file over a lowered cap", []string{"--message", msg, "--html", writeFile(t, "news.html", []byte(strings.Repeat("<p>x</p>\n", 200))), "--max-message-bytes", "1KiB"},
			[]string{"news.html: 1.8 KiB is over the cap on a message file (1024 bytes)", "--max-message-bytes"}},
		{"attachment over 15 MiB", []string{"--message", msg, "--attach", big("video.mp4", 16<<20)},
			[]string{"video.mp4: 16 MiB is over what is left of the 15 MiB cap on all attachments together", "--max-attachment-bytes"}},
		{"attachments together over the cap", []string{"--message", msg, "--attach", writeFile(t, "a.pdf", make([]byte, 700)), "--attach", writeFile(t, "b.pdf", make([]byte, 700)), "--max-attachment-bytes", "1KiB"},
			[]string{"b.pdf: 700 bytes is over what is left of the 1 KiB cap on all attachments together (324 bytes)", "--max-attachment-bytes"}},
		{"attachment is a directory", []string{"--message", msg, "--attach", dir},
			[]string{"attachment " + dir + ": is a directory, not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "mailout.db")
			r := mailout(t, nil, append([]string{"send", "--db", db, "--recipients", list}, tc.args...)...)
			wantRefused(t, r, tc.want...)
			nothingStored(t, db)
		})
	}
	// At the cap exactly, the files are taken.
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "send", "--db", db, "--recipients", list, "--message", msg,
		"--attach", writeFile(t, "a.pdf", make([]byte, 1000)), "--attach", writeFile(t, "b.pdf", make([]byte, 24)), "--max-attachment-bytes", "1KiB",
		"--max-message-bytes", fmt.Sprint(len(testMessage)))
	if r.code != exitOK {
		t.Errorf("files exactly at the caps: exit %d\n%s", r.code, r.stderr)
	}
}

func TestCapFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{{"--max-rows", "0"}, {"--max-field-bytes", "lots"}, {"--max-message-bytes", "-1"}, {"--max-attachment-bytes", "0"}} {
		r := mailout(t, nil, append([]string{"send", "--db", filepath.Join(t.TempDir(), "m.db"), "--recipients", "x.csv", "--message", "m.txt"}, args...)...)
		if r.code == exitOK || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("%v: exit %d, want an error naming the flag\n%s", args, r.code, r.stderr)
		}
	}
}

// What template functions build for one recipient is capped like the
// message: the recipient whose data makes it too large fails with
// render-failed and the reason, the others are delivered.
func TestOneRecipientOverTheCapFailsAlone(t *testing.T) {
	// $v12 is 4096 copies of bio, and the chain builds twice that: 16 KiB
	// for "ab", 32 MiB for a 4 KiB bio, over the 25 MiB cap.
	var msg strings.Builder
	msg.WriteString("From: news@example.com\nSubject: hi\n\n{{$v0 := .bio}}")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&msg, `{{$v%d := printf "%%s%%s" $v%d $v%d}}`, i, i-1, i-1)
	}
	msg.WriteString("Your bio, 4096 times, is {{len $v12}} bytes long.\n")
	list := writeFile(t, "list.csv", []byte("email,bio\na@example.org,ab\nb@example.org,"+strings.Repeat("x", 4096)+"\nc@example.org,ab\n"))
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "bios", "--recipients", list, "--message", writeMessage(t, msg.String()))
	if r.code != exitOK {
		t.Fatalf("exit %d, want %d (every recipient final)\n%s", r.code, exitOK, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "bios"))
	for _, e := range []string{"a@example.org", "c@example.org"} {
		if rows[e]["state"] != "delivered" {
			t.Errorf("%s: %v, want delivered", e, rows[e])
		}
	}
	b := rows["b@example.org"]
	if b["state"] != "failed" || b["class"] != "render-failed" || !strings.Contains(fmt.Sprint(b["text"]), "26214400 bytes") {
		t.Errorf("b@example.org: %v; want failed, render-failed, naming the 26214400-byte cap", b)
	}
}
