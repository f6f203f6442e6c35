package campaign

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"mailout/internal/store"
)

// FileLimits cap the files a campaign's message is read from. A file is
// read once, whole, into the campaign: without a cap, a wrong path (a
// device, a huge archive) would take the process's memory, and a named
// pipe would block it.
type FileLimits struct {
	Message     int64 // the message file, and the HTML file, each
	Attachments int64 // all attachments together
}

// The default caps. A message template is text written by a person; the
// attachments must fit in a message once base64 has made them a third
// larger: 15 MiB of files make about 20 MiB on the wire, under the 25 MB
// most providers accept.
const (
	DefaultMaxMessageBytes    = 1 << 20
	DefaultMaxAttachmentBytes = 15 << 20
)

// Errors a caller may tell apart in a *FileError.
var (
	ErrNotRegular   = errors.New("not a regular file")
	ErrFileTooLarge = errors.New("file over the size cap")
)

// File roles, for FileError.Role.
const (
	RoleMessage    = "message"
	RoleHTML       = "html"
	RoleAttachment = "attachment"
)

// FileError is a message, HTML or attachment file that cannot be used.
type FileError struct {
	Role   string // RoleMessage, RoleHTML or RoleAttachment
	Path   string
	Reason string
	Limit  int64 // the cap that was hit, with ErrFileTooLarge
	Err    error
}

func (e *FileError) Error() string { return e.Role + " " + e.Path + ": " + e.Reason }
func (e *FileError) Unwrap() error { return e.Err }

// ReadMessageFiles reads the message file, the optional HTML file and the
// attachments into a campaign message. Each must be a regular file: a
// directory, device, named pipe or socket is refused without reading it
// (a pipe is opened without waiting for a writer). Errors are *FileError.
func ReadMessageFiles(text, html string, attachments []string, lim FileLimits) (*store.Message, error) {
	m := &store.Message{TemplateName: filepath.Base(text)}
	var err error
	if m.Template, err = readRegular(RoleMessage, text, lim.Message, "the cap on a message file"); err != nil {
		return nil, err
	}
	if html != "" {
		m.HTMLName = filepath.Base(html)
		if m.HTML, err = readRegular(RoleHTML, html, lim.Message, "the cap on a message file"); err != nil {
			return nil, err
		}
	}
	left := lim.Attachments
	for _, p := range attachments {
		data, err := readRegular(RoleAttachment, p, left, fmt.Sprintf("what is left of the %s cap on all attachments together", sizeText(lim.Attachments)))
		if err != nil {
			var fe *FileError
			if errors.As(err, &fe) && errors.Is(err, ErrFileTooLarge) {
				fe.Limit = lim.Attachments
			}
			return nil, err
		}
		left -= int64(len(data))
		m.Attachments = append(m.Attachments, store.Attachment{Name: filepath.Base(p), Data: data})
	}
	return m, nil
}

// readRegular reads a regular file of at most limit bytes; capName says
// what the limit is, for the error.
func readRegular(role, path string, limit int64, capName string) ([]byte, error) {
	f, err := openNoWait(path)
	if err != nil {
		return nil, &FileError{Role: role, Path: path, Reason: errText(err), Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &FileError{Role: role, Path: path, Reason: errText(err), Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &FileError{Role: role, Path: path, Err: ErrNotRegular,
			Reason: fmt.Sprintf("is %s, not a regular file: give the path of a file", kind(fi.Mode()))}
	}
	tooLarge := func(size string) error {
		return &FileError{Role: role, Path: path, Limit: limit, Err: ErrFileTooLarge,
			Reason: fmt.Sprintf("%s is over %s (%d bytes)", size, capName, limit)}
	}
	if fi.Size() > limit {
		return nil, tooLarge(sizeText(fi.Size()))
	}
	// The file may grow while it is read: never read more than the cap.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &FileError{Role: role, Path: path, Reason: errText(err), Err: err}
	}
	if int64(len(data)) > limit {
		return nil, tooLarge("the file")
	}
	return data, nil
}

// errText is an *fs.PathError's reason without the path, which FileError
// already names.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// sizeText writes n bytes for a person: "15 MiB", "1.5 MiB", "700 KiB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return trimUnit(float64(n)/(1<<30), "GiB")
	case n >= 1<<20:
		return trimUnit(float64(n)/(1<<20), "MiB")
	case n >= 1<<10:
		return trimUnit(float64(n)/(1<<10), "KiB")
	}
	return fmt.Sprintf("%d bytes", n)
}

func trimUnit(v float64, unit string) string {
	s := fmt.Sprintf("%.1f", v)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " " + unit
}

// openNoWait opens path for reading without blocking on a named pipe
// that has no writer (see open_*.go).
func openNoWait(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|nonBlock, 0)
}
