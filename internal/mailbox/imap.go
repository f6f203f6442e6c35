package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Keyword is the IMAP keyword set on processed messages, with \Seen.
const Keyword = "$MailoutProcessed"

type imapBox struct {
	c        *imapclient.Client
	validity uint32
	max      int
}

func openIMAP(ctx context.Context, c *Config) (Box, error) {
	tc, err := c.tls()
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: c.timeout()}
	var conn net.Conn
	if c.Security == ImplicitTLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", c.Addr())
	} else {
		conn, err = d.DialContext(ctx, "tcp", c.Addr())
	}
	if err != nil {
		return nil, err
	}
	opts := &imapclient.Options{TLSConfig: tc}
	var cl *imapclient.Client
	if c.Security == StartTLS {
		// RFC 9051 §6.2.1: STARTTLS before LOGIN; NewStartTLS fails when
		// the server does not offer it, so the password never goes out in
		// clear.
		if cl, err = imapclient.NewStartTLS(conn, opts); err != nil {
			return nil, fmt.Errorf("imap STARTTLS: %w", err)
		}
	} else {
		cl = imapclient.New(conn, opts)
		if err := cl.WaitGreeting(); err != nil {
			cl.Close()
			return nil, fmt.Errorf("imap greeting: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { cl.Close() })
	defer stop()
	if err := cl.Login(c.User, c.Password).Wait(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("imap login as %s: %w", c.User, err)
	}
	sel, err := cl.Select(c.Folder, nil).Wait()
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("imap select %s: %w", c.Folder, err)
	}
	return &imapBox{c: cl, validity: sel.UIDValidity, max: c.maxMessage()}, nil
}

// uid is the message's name in the store: UIDVALIDITY/UID (RFC 9051
// §2.3.1.1: a UID is only unique with its mailbox's UIDVALIDITY).
func (b *imapBox) uid(u imap.UID) string {
	return strconv.FormatUint(uint64(b.validity), 10) + "/" + strconv.FormatUint(uint64(u), 10)
}

func (b *imapBox) parse(s string) (imap.UID, error) {
	v, u, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(u, 10, 32)
	if !ok || err != nil || v != strconv.FormatUint(uint64(b.validity), 10) {
		return 0, fmt.Errorf("imap: bad uid %q", s)
	}
	return imap.UID(n), nil
}

func (b *imapBox) List(ctx context.Context) ([]string, error) {
	stop := context.AfterFunc(ctx, func() { b.c.Close() })
	defer stop()
	data, err := b.c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{Keyword}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("imap search: %w", err)
	}
	var out []string
	for _, u := range data.AllUIDs() {
		out = append(out, b.uid(u))
	}
	return out, nil
}

func (b *imapBox) Get(ctx context.Context, uid string) ([]byte, error) {
	u, err := b.parse(uid)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { b.c.Close() })
	defer stop()
	// BODY.PEEK[]<0.max+1> (RFC 9051 §6.4.5): reading does not set
	// \Seen (Done does once the message was applied), and a message
	// over the limit is not sent whole: one byte more than the limit
	// says it is over, RFC822.SIZE by how much.
	sec := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: int64(b.max) + 1}}
	msgs, err := b.c.Fetch(imap.UIDSetNum(u), &imap.FetchOptions{UID: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("imap fetch %s: %w", uid, err)
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("imap fetch %s: %w", uid, errGone)
	}
	data := msgs[0].FindBodySection(sec)
	if size := msgs[0].RFC822Size; len(data) > b.max || size > int64(b.max) {
		return data[:min(len(data), b.max)], tooLarge(max(size, int64(len(data))), b.max, false)
	}
	return data, nil
}

var errGone = errors.New("the message is gone")

func (b *imapBox) Done(ctx context.Context, uid string) error {
	u, err := b.parse(uid)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { b.c.Close() })
	defer stop()
	err = b.c.Store(imap.UIDSetNum(u), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
		Flags: []imap.Flag{imap.FlagSeen, Keyword}}, nil).Close()
	if err != nil {
		return fmt.Errorf("imap store flags %s: %w", uid, err)
	}
	return nil
}

func (b *imapBox) Close() error {
	_ = b.c.Logout().Wait()
	return b.c.Close()
}
