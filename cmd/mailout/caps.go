package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"mailout/internal/campaign"
	"mailout/internal/recipient"
)

// capFlags are the caps on what `mailout send` reads: the recipient list's
// rows and fields, the message and HTML files, the attachments. Each error
// that hits one names the file, the line when there is one, the cap, and
// the flag that raises it.
type capFlags struct {
	rows        int
	rowBytes    byteSize
	fieldBytes  byteSize
	message     byteSize
	attachments byteSize
}

// Default caps, sized for real lists: a million-row export has rows of a
// few hundred bytes; a field of 64 KiB holds a long text block.
const (
	defaultMaxRows       = 10_000_000
	defaultMaxRowBytes   = 1 << 20
	defaultMaxFieldBytes = 64 << 10
)

func (c *capFlags) register(fl *pflag.FlagSet) {
	c.rowBytes, c.fieldBytes = defaultMaxRowBytes, defaultMaxFieldBytes
	c.message, c.attachments = campaign.DefaultMaxMessageBytes, campaign.DefaultMaxAttachmentBytes
	fl.IntVar(&c.rows, "max-rows", defaultMaxRows, "most data rows read from the recipient list")
	fl.Var(&c.rowBytes, "max-row-bytes", "longest row of the recipient list, all its lines (bytes, or with KiB, MiB, GiB)")
	fl.Var(&c.fieldBytes, "max-field-bytes", "longest field (cell) of the recipient list; a row with a longer one is rejected")
	fl.Var(&c.message, "max-message-bytes", "largest message file, and HTML file")
	fl.Var(&c.attachments, "max-attachment-bytes", "largest size of all attachments together")
}

// registerList registers the caps on a list file only (lists import); the
// message caps keep their defaults.
func (c *capFlags) registerList(fl *pflag.FlagSet) {
	c.rowBytes, c.fieldBytes = defaultMaxRowBytes, defaultMaxFieldBytes
	c.message, c.attachments = campaign.DefaultMaxMessageBytes, campaign.DefaultMaxAttachmentBytes
	fl.IntVar(&c.rows, "max-rows", defaultMaxRows, "most data rows read from the list file")
	fl.Var(&c.rowBytes, "max-row-bytes", "longest row of the list file, all its lines (bytes, or with KiB, MiB, GiB)")
	fl.Var(&c.fieldBytes, "max-field-bytes", "longest field (cell) of the list file; a row with a longer one is rejected")
}

func (c *capFlags) check() error {
	for _, v := range []struct {
		name string
		n    int64
	}{{"--max-rows", int64(c.rows)}, {"--max-row-bytes", int64(c.rowBytes)}, {"--max-field-bytes", int64(c.fieldBytes)},
		{"--max-message-bytes", int64(c.message)}, {"--max-attachment-bytes", int64(c.attachments)}} {
		if v.n <= 0 {
			return usageErr("%s must be positive", v.name)
		}
	}
	return nil
}

func (c *capFlags) listOptions() recipient.Options {
	return recipient.Options{MaxRows: c.rows, MaxRecordBytes: int(c.rowBytes), MaxFieldBytes: int(c.fieldBytes)}
}

func (c *capFlags) fileLimits() campaign.FileLimits {
	return campaign.FileLimits{Message: int64(c.message), Attachments: int64(c.attachments)}
}

// raise names the flag that raises the cap err hit, or "".
func raise(err error) string {
	flag := ""
	var fe *campaign.FileError
	switch {
	case errors.Is(err, recipient.ErrTooManyRows):
		flag = "--max-rows"
	case errors.Is(err, recipient.ErrRecordTooLarge):
		flag = "--max-row-bytes"
	case errors.Is(err, recipient.ErrFieldTooLarge):
		flag = "--max-field-bytes"
	case errors.As(err, &fe) && errors.Is(err, campaign.ErrFileTooLarge):
		flag = "--max-message-bytes"
		if fe.Role == campaign.RoleAttachment {
			flag = "--max-attachment-bytes"
		}
	default:
		return ""
	}
	return " (raise it with " + flag + ")"
}

// listError is a recipient list that cannot be read, as path:line.
type listError struct {
	path string
	fe   *recipient.FileError
}

func (e *listError) Error() string {
	loc := e.path
	if e.fe.Line > 0 {
		loc += ":" + strconv.Itoa(e.fe.Line)
	}
	return loc + ": " + e.fe.Reason + raise(e.fe)
}

func (e *listError) Unwrap() error { return e.fe }

// byteSize is a flag value in bytes: "1048576", "64KiB", "1 MiB", "2GiB"
// (KB, MB and GB are taken as the same powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "bytes" }

func (b *byteSize) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size: write bytes, or a number with KiB, MiB or GiB", s)
	}
	*b = byteSize(n * mult)
	return nil
}
