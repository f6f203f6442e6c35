package campaign

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"mailout/internal/dkim"
)

// DKIMSettings say how a campaign's messages are signed (RFC 6376). The key
// itself is never stored with the campaign: only the file it is read from
// at every start, so a resume signs with the same key.
type DKIMSettings struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	KeyFile  string `json:"key_file"`
}

// ErrDKIM wraps every failure to set up DKIM signing.
var ErrDKIM = errors.New("DKIM")

// LoadSigner reads the key and builds the signer; fromDomain is the domain
// of the message's From, used for the alignment warning. The errors name
// the file and the problem, never the key's bytes.
func (d *DKIMSettings) LoadSigner(readFile func(string) ([]byte, error), fromDomain string) (s *dkim.Signer, warnings []string, err error) {
	key, err := readFile(d.KeyFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: key file %s does not exist (create one with: mailout dkim keygen --domain %s --out %s)", ErrDKIM, d.KeyFile, d.Domain, d.KeyFile)
		}
		return nil, nil, fmt.Errorf("%w: reading the key: %w", ErrDKIM, err)
	}
	s, err = dkim.New(d.Domain, d.Selector, key, dkim.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: key file %s: %w", ErrDKIM, d.KeyFile, err)
	}
	warnings = s.Warnings()
	// RFC 7489 §3.1.1: DMARC passes on DKIM only when d= is the From
	// domain or, relaxed, shares its organisational domain; a signature
	// for another domain still helps reputation but not DMARC.
	if fd := strings.ToLower(fromDomain); fd != "" && fd != s.Domain() && !strings.HasSuffix(fd, "."+s.Domain()) && !strings.HasSuffix(s.Domain(), "."+fd) {
		warnings = append(warnings, fmt.Sprintf("the messages are From %s but signed for %s: DMARC will not count this signature (sign with --dkim-domain %s)", fd, s.Domain(), fd))
	}
	return s, warnings, nil
}

// signInPlace puts the DKIM-Signature header field in front of the message
// held in buf, moving the message within buf's memory (no second copy of a
// large body), and returns the signed message.
func signInPlace(s *dkim.Signer, buf *bytes.Buffer) ([]byte, error) {
	field, err := s.HeaderField(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: signing: %w", ErrDKIM, err)
	}
	n := buf.Len()
	buf.WriteString(field)
	b := buf.Bytes()
	copy(b[len(field):], b[:n])
	copy(b, field)
	return b, nil
}
