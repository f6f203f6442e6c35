package campaign

import (
	"bytes"
	"context"
	"fmt"

	"mailout/internal/addr"
	"mailout/internal/render"
	"mailout/internal/route"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// TestResult is the end of a test send.
type TestResult struct {
	// Sandbox: the route is the sandbox, so nothing left the machine;
	// Data is the message as it would have been sent.
	Sandbox bool
	// Result is the classified outcome of the one delivery (not set for
	// the sandbox).
	transport.Result
	// Data is the message as rendered for the test (CRLF line ends).
	Data []byte
}

// TestSend renders the draft's message with the merge fields of rcpt and
// sends it to the address to (its To and RCPT TO), through the draft's
// route, outside any campaign: nothing is stored. The {{.email}} field is
// the test address, as it is each recipient's own address in the
// campaign. With the sandbox route nothing leaves the machine and the
// message is returned in Data. An address that cannot be used is an
// *InputError (field "to"); a message that does not render is render's
// error.
func (s *Service) TestSend(ctx context.Context, d *Draft, rcpt render.Recipient, to string) (*TestResult, error) {
	a, err := addr.Parse(to)
	if err != nil {
		return nil, &InputError{Field: "to", Err: err}
	}
	domain := FromDomain(d.tmpl)
	id := fmt.Sprintf("test.%s@%s", NewSalt(), domain)
	var buf bytes.Buffer
	m, err := d.tmpl.Render(d.sampleUnsubscribe(render.Recipient{Email: a.String(), Fields: rcpt.Fields}), id, &buf)
	if err != nil {
		return nil, err
	}
	data := m.Data
	if d.settings.DKIM != nil {
		signer, _, err := d.settings.DKIM.LoadSigner(s.opt.Env.ReadFile, domain)
		if err != nil {
			return nil, err
		}
		if data, err = signInPlace(signer, &buf); err != nil {
			return nil, err
		}
	}
	out := &TestResult{Data: bytes.Clone(data)}
	rt := d.nc.Routing
	if rt.Route() == route.Sandbox {
		out.Sandbox = true
		return out, nil
	}
	tr, err := rt.transport(s.st, throttle.Profile{Name: "test", Connections: 1}, s.opt.Logger, false)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	out.Result = tr.Deliver(ctx, &transport.Message{From: m.From, To: m.To, Domain: a.Domain, MessageID: m.MessageID,
		Data: out.Data, SMTPUTF8: needsUTF8(m.From) || needsUTF8(m.To)})
	return out, nil
}

// Render renders the draft's message for r, as a campaign would (a
// preview): the message with CRLF line ends, not signed.
func (d *Draft) Render(r render.Recipient) ([]byte, error) {
	m, err := d.tmpl.Render(d.sampleUnsubscribe(r), d.tmpl.NewMessageID(), nil)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
