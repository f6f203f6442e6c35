package recipient

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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
