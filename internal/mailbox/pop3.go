package mailbox

import (
	"context"
	"errors"
	"fmt"

	"mailout/internal/pop3"
)

type pop3Box struct {
	c    *pop3.Client
	nums map[string]int
	max  int
}

func openPOP3(ctx context.Context, c *Config) (Box, error) {
	tc, err := c.tls()
	if err != nil {
		return nil, err
	}
	var implicit = tc
	if c.Security != ImplicitTLS {
		implicit = nil
	}
	cl, err := pop3.Dial(ctx, c.Addr(), implicit, c.timeout())
	if err != nil {
		return nil, fmt.Errorf("pop3 connect: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { cl.Close() })
	defer stop()
	if c.Security == StartTLS {
		// RFC 2595 §4: STLS before USER/PASS; refused when not offered, so
		// the password never goes out in clear.
		if err := cl.StartTLS(tc); err != nil {
			cl.Close()
			return nil, fmt.Errorf("pop3 STLS: %w", err)
		}
	}
	if err := cl.Login(c.User, c.Password); err != nil {
		cl.Close()
		return nil, fmt.Errorf("pop3 login as %s: %w", c.User, err)
	}
	return &pop3Box{c: cl, max: c.maxMessage()}, nil
}

func (b *pop3Box) List(ctx context.Context) ([]string, error) {
	stop := context.AfterFunc(ctx, func() { b.c.Close() })
	defer stop()
	msgs, err := b.c.UIDL()
	if err != nil {
		return nil, fmt.Errorf("pop3 uidl: %w", err)
	}
	b.nums = map[string]int{}
	var out []string
	for _, m := range msgs {
		b.nums[m.UID] = m.Num
		out = append(out, m.UID)
	}
	return out, nil
}

func (b *pop3Box) Get(ctx context.Context, uid string) ([]byte, error) {
	n, ok := b.nums[uid]
	if !ok {
		return nil, fmt.Errorf("pop3: %s: %w", uid, errGone)
	}
	stop := context.AfterFunc(ctx, func() { b.c.Close() })
	defer stop()
	data, err := b.c.Retr(n, b.max)
	if tl, ok := errors.AsType[*pop3.TooLargeError](err); ok {
		return data, tooLarge(int64(tl.Size), tl.Limit, tl.Lost)
	}
	if err != nil {
		return nil, fmt.Errorf("pop3 retr %s: %w", uid, err)
	}
	return data, nil
}

// Done does nothing: POP3 has no flags; Fetch remembers the UIDL.
func (b *pop3Box) Done(context.Context, string) error { return nil }

func (b *pop3Box) Close() error { return b.c.Quit() }
