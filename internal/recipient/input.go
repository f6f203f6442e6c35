package recipient

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// skipBOM drops a UTF-8 byte order mark (Excel writes one in "CSV UTF-8")
// and rejects UTF-16 files (Excel's "Unicode text"), which would otherwise
// look like binary garbage.
func skipBOM(br *bufio.Reader) error {
	b, err := br.Peek(3)
	if err != nil && err != io.EOF {
		return fileIOError(err)
	}
	switch {
	case bytes.HasPrefix(b, []byte("\xef\xbb\xbf")):
		_, err := br.Discard(3)
		return err
	case bytes.HasPrefix(b, []byte("\xff\xfe")), bytes.HasPrefix(b, []byte("\xfe\xff")):
		return &FileError{Reason: "the file is UTF-16 text: save it as UTF-8 (in Excel: \"CSV UTF-8\")"}
	}
	return nil
}

// detectDelimiter picks ',', ';' or tab, whichever occurs most often
// outside double quotes in the first line (the header); a one-column file
// gets ','. Spreadsheets in locales with a decimal comma write ';'.
func detectDelimiter(br *bufio.Reader) (rune, error) {
	b, err := br.Peek(br.Size())
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return 0, fileIOError(err)
	}
	var commas, semis, tabs int
	inQuote := false
scan:
	for _, c := range b {
		switch {
		case c == '"':
			inQuote = !inQuote // "" inside quotes toggles twice: no change
		case inQuote:
		case c == '\n':
			break scan
		case c == ',':
			commas++
		case c == ';':
			semis++
		case c == '\t':
			tabs++
		}
	}
	switch {
	case semis > commas && semis >= tabs:
		return ';', nil
	case tabs > commas && tabs > semis:
		return '\t', nil
	}
	return ',', nil
}

// capReader fails with ErrTooLarge once more than left bytes were read.
type capReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.limit)
	}
	// Read one byte past the cap so that a file of exactly the cap passes
	// and one byte more fails.
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.limit)
	}
	return n, err
}

// readBuffer is the size of the buffer rows are read through.
const readBuffer = 64 << 10

// recordCap fails with ErrRecordTooLarge once the row being read has taken
// more than limit bytes from r; rowTracker.done moves start to the end of
// each row read. limit is the row cap plus readBuffer, since bytes read
// ahead into the buffer belong to the next row.
type recordCap struct {
	r     io.Reader
	n     int64 // bytes read from r
	start int64 // n where the row being read starts
	limit int64
}

func (c *recordCap) Read(p []byte) (int, error) {
	room := c.limit - (c.n - c.start)
	if room <= 0 {
		return 0, ErrRecordTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// rowTracker follows the rows encoding/csv reads: where each starts (for
// the line a row that never ends is reported on) and how many bytes it
// took (for Options.MaxRecordBytes).
type rowTracker struct {
	cr   *csv.Reader
	br   *bufio.Reader
	rc   *recordCap // nil without a row cap
	max  int
	next int   // the line after the last row read
	off  int64 // input offset after the last row read
}

// done is called after every Read but the one returning io.EOF, with its
// results; it returns a *FileError when the row is over the cap.
func (t *rowTracker) done(rec []string, err error) error {
	line := t.next
	if len(rec) > 0 {
		line, _ = t.cr.FieldPos(0)
	}
	tooLong := errors.Is(err, ErrRecordTooLarge)
	if !tooLong {
		off := t.cr.InputOffset()
		tooLong = t.max > 0 && off-t.off > int64(t.max)
		t.off = off
		if t.rc != nil {
			t.rc.start = t.rc.n - int64(t.br.Buffered())
		}
		if n := len(rec); n > 0 {
			l, _ := t.cr.FieldPos(n - 1)
			t.next = l + strings.Count(rec[n-1], "\n") + 1
		}
	}
	if tooLong {
		return &FileError{Line: line, Err: ErrRecordTooLarge,
			Reason: fmt.Sprintf("a row longer than %d bytes, the cap on one row: this is not a list of recipients, or its rows need a higher cap", t.max)}
	}
	return nil
}
