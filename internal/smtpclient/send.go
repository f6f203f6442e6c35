package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RcptResult is the answer to one RCPT TO.
type RcptResult struct {
	Rcpt string
	// Err is nil when the server accepted the recipient, else an *Error.
	// An accepted recipient got the message only when Send's err is nil.
	Err error
}

// SendOptions are per-message parameters of MAIL FROM.
type SendOptions struct {
	// SMTPUTF8 asks for RFC 6531; Send fails before MAIL when the server
	// does not offer it.
	SMTPUTF8 bool
	// Size is announced as SIZE= when the server offers SIZE (RFC 1870);
	// 0 means len(body).
	Size int
	// EightBit says the body has 8-bit content: BODY=8BITMIME is sent
	// (RFC 6152), and Send fails when the server lacks 8BITMIME.
	EightBit bool
}

// Send runs one mail transaction: MAIL FROM, RCPT TO for each recipient,
// DATA, the body, ".". When the server offers PIPELINING (RFC 2920 §3.1)
// MAIL, the RCPTs and DATA go out in one write and the replies are read in
// order; otherwise each command waits for its reply.
//
// body must be the whole message; line endings are made CRLF and lines
// starting with "." are dot-stuffed (RFC 5321 §4.5.2) while writing.
//
// The results hold one entry per recipient. err is non-nil when the
// transaction failed as a whole: MAIL refused, DATA refused while some
// recipient was accepted, the reply to the final "." a failure, or an I/O
// error. When every recipient is refused no message is sent and err is nil:
// each result carries its own refusal. A refusal read before the server
// hangs up stays the answer, whatever reply was still due (RFC 2920 §3.1).
// A lost connection after the final "." gives a "BODY" *Error whose
// Ambiguous() is true.
//
// After a failed transaction the next Send first resets the session
// (RSET, RFC 5321 §4.1.1.5); EHLO is not repeated.
func (c *Client) Send(ctx context.Context, from string, rcpts []string, body []byte, opt SendOptions) ([]RcptResult, error) {
	r := c.SendMany(ctx, []Tx{{From: from, Rcpts: rcpts, Body: body, Opt: opt}}, nil)
	return r[0].Rcpts, r[0].Err
}

// Tx is one mail transaction for SendMany.
type Tx struct {
	From  string
	Rcpts []string
	Body  []byte
	Opt   SendOptions
}

// TxResult is the outcome of one Tx, with the meaning of Send's results.
type TxResult struct {
	Rcpts []RcptResult
	Err   error
}

// ErrNotAttempted is wrapped in the Err of a "MAIL" Error for a transaction
// SendMany did not start because the session had ended (I/O error, 421)
// before it. No byte of its message was sent: it can go on another session
// without any risk of a duplicate.
var ErrNotAttempted = errors.New("not attempted: the session ended before this message")

// ErrStopped is wrapped in the Err of a "MAIL" Error for a transaction
// SendMany did not start because the context's stop channel (WithStop) was
// closed: no byte of it was sent, and the caller gives it back rather than
// trying it on another session.
var ErrStopped = errors.New("not started: sending is stopping")

type stopKey struct{}

// WithStop returns a context under which SendMany starts no transaction
// once stop is closed: the one under way is finished — its reply read, so
// nothing is left in doubt — and the ones after it get ErrStopped. It is
// how a pause takes effect between two messages of a pipelined group,
// where cancelling the context would cut a message off mid-transfer.
func WithStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// Stopping reports whether ctx carries a stop channel (WithStop) that is
// closed.
func Stopping(ctx context.Context) bool {
	ch, _ := ctx.Value(stopKey{}).(<-chan struct{})
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// SendMany runs several mail transactions on the session, in order, each
// with Send's meaning. With PIPELINING the final "." of one message goes out
// in the same write as the next transaction's MAIL, RCPTs and DATA: RFC 2920
// §3.1 lets message content be the first "command" of a group. Each message
// then costs one round trip instead of two. The replies are still read one
// by one in order, so a refusal or failure of one transaction never touches
// another; only the end of the session does, and every transaction after it
// gets an Error wrapping ErrNotAttempted.
//
// done, when not nil, is called with each transaction's result as soon as
// it is known, before the next transaction's reply is awaited: a caller can
// record a delivery while the rest of the batch is still on the wire.
func (c *Client) SendMany(ctx context.Context, txs []Tx, done func(i int, r TxResult)) []TxResult {
	out := make([]TxResult, len(txs))
	defer c.watch(ctx)()
	_, pipe := c.ext["PIPELINING"]
	var cur txn
	ahead := false // cur's commands went out with the previous message's "."
	// one runs transaction i and fills out[i].
	one := func(i int) {
		if !ahead && Stopping(ctx) {
			// Not started: its commands did not go out ahead.
			out[i].Err = &Error{Command: "MAIL", Err: ErrStopped}
			return
		}
		if !ahead {
			cur = c.prepare(txs[i])
		}
		out[i].Rcpts = cur.results
		if cur.err != nil {
			out[i].Err = cur.err
			return
		}
		if c.broken {
			out[i].Err = &Error{Command: "MAIL", Err: ErrNotAttempted}
			ahead = false
			return
		}
		if cur.none {
			// Every recipient was refused before asking the server: each
			// result carries its refusal and nothing is sent.
			return
		}
		var accepted int
		var dr reply
		var err error
		switch {
		case ahead:
			accepted, dr, err = c.readCommandReplies(ctx, &cur, true)
		case pipe:
			if err = c.resetIfDirty(ctx); err == nil {
				c.dirty = true // from here on the server is mid-transaction
				accepted, dr, err = c.pipelined(ctx, &cur)
			}
		default:
			if err = c.resetIfDirty(ctx); err == nil {
				c.dirty = true
				accepted, dr, err = c.serial(ctx, &cur)
			}
		}
		ahead = false
		if err != nil {
			out[i].Err = err
			return
		}
		var next *txn
		if pipe && i+1 < len(txs) && !Stopping(ctx) {
			if nx := c.prepare(txs[i+1]); nx.err == nil && !nx.none {
				next = &nx
			}
		}
		sentAhead, err := c.finish(ctx, &cur, txs[i].Body, accepted, dr, next)
		out[i].Err = err
		if sentAhead {
			cur, ahead = *next, true
		}
	}
	for i := range txs {
		one(i)
		if done != nil {
			done(i, out[i])
		}
	}
	return out
}

// txn is a transaction checked before any I/O.
type txn struct {
	mailLine  string
	rcptLines []string
	rcptIdx   []int // rcptIdx[k] is the index in results of rcptLines[k]
	results   []RcptResult
	err       error // refused before asking the server
	none      bool  // no recipient could be used
}

// prepare builds the command lines of tx, or the error that keeps it from
// being sent to this server at all.
func (c *Client) prepare(tx Tx) txn {
	t := txn{results: make([]RcptResult, len(tx.Rcpts))}
	for i, r := range tx.Rcpts {
		t.results[i].Rcpt = r
	}
	if len(tx.Rcpts) == 0 {
		t.err = &Error{Command: "RCPT", Text: "no recipients"}
		return t
	}
	t.mailLine, t.err = c.mailCommand(tx.From, len(tx.Body), tx.Opt)
	if t.err != nil {
		return t
	}
	for i, r := range tx.Rcpts {
		if err := checkAddress(r); err != nil {
			t.results[i].Err = &Error{Command: "RCPT", Text: err.Error()}
			continue
		}
		t.rcptLines = append(t.rcptLines, "RCPT TO:<"+r+">")
		t.rcptIdx = append(t.rcptIdx, i)
	}
	t.none = len(t.rcptLines) == 0
	return t
}

// finish ends a transaction whose command replies were read: the body and
// "." when DATA was accepted, and the reply to ".". When next is not nil
// and the body goes out, next's commands are written behind the "." in the
// same write (RFC 2920 §3.1) and sentAhead is true: the caller reads their
// replies next.
func (c *Client) finish(ctx context.Context, t *txn, body []byte, accepted int, dr reply, next *txn) (sentAhead bool, err error) {
	if accepted == 0 {
		if dr.Code == CodeStartMailInput {
			// RFC 2920 §3.1: DATA was accepted although no recipient was;
			// end it with an empty message and read the reply.
			if err := c.writeBody(ctx, nil, nil); err != nil {
				return false, err
			}
			if _, err := c.readWithin(ctx, "BODY", c.to.DataTerm); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if dr.Code != CodeStartMailInput {
		return false, c.replyError("DATA", dr)
	}
	if err := c.writeBody(ctx, body, next); err != nil {
		return false, err
	}
	sentAhead = next != nil
	r, err := c.readWithin(ctx, "BODY", c.to.DataTerm)
	if err != nil {
		// The whole message was written and no proper reply came back
		// (lost connection, timeout, cancellation, garbage): the server may
		// have taken it (RFC 5321 §3.8, RFC 1047).
		e := err.(*Error)
		e.Err = fmt.Errorf("%w: %w", ErrAmbiguous, e.Err)
		return sentAhead, e
	}
	// RFC 5321 §4.1.1.4: after the reply to "." the transaction is over;
	// commands written ahead open the next one.
	c.dirty = sentAhead
	if r.Code/100 != 2 {
		return sentAhead, c.replyError("BODY", r)
	}
	return sentAhead, nil
}

// pipelined writes MAIL, the RCPTs and DATA at once and reads the replies
// in order (RFC 2920 §3.1), so the client stays in step with the server
// whatever it answers.
func (c *Client) pipelined(ctx context.Context, t *txn) (int, reply, error) {
	stop := c.deadline(ctx, c.to.Mail)
	err := c.writeCommands(t)
	if err == nil {
		err = c.bw.Flush()
	}
	stop()
	if err != nil {
		return 0, reply{}, c.ioError(ctx, "MAIL", err)
	}
	return c.readCommandReplies(ctx, t, false)
}

// writeCommands buffers MAIL, the RCPTs and DATA of t without flushing.
func (c *Client) writeCommands(t *txn) error {
	err := c.writeLine(t.mailLine)
	for _, l := range t.rcptLines {
		if err == nil {
			err = c.writeLine(l)
		}
	}
	if err == nil {
		err = c.writeLine("DATA")
	}
	return err
}

// readCommandReplies reads the replies to pipelined MAIL, RCPTs and DATA in
// order. It returns how many recipients were accepted and DATA's reply.
// ahead says the commands went out behind the previous message's ".".
//
// A server may refuse and hang up at once, before the replies to the rest
// of the group (Outlook and Spamhaus-listed hosts do it at MAIL or RCPT).
// A reply read before the end of the session is kept (RFC 2920 §3.1: each
// reply answers its own command); see lost.
func (c *Client) readCommandReplies(ctx context.Context, t *txn, ahead bool) (int, reply, error) {
	results := t.results
	mr, err := c.readWithin(ctx, "MAIL", c.to.Mail)
	if err != nil {
		if ahead {
			// The session ended before any reply to this transaction, and
			// its body was never sent: it may go on another session.
			e := err.(*Error)
			e.Err = fmt.Errorf("%w: %w", ErrNotAttempted, e.Err)
		}
		return 0, reply{}, err
	}
	var mailErr error
	if mr.Code != CodeOK {
		mailErr = c.replyError("MAIL", mr)
		if mr.Code == CodeServiceNotAvailable {
			return 0, reply{}, mailErr
		}
	}
	accepted := 0
	for _, i := range t.rcptIdx {
		r, err := c.readWithin(ctx, "RCPT", c.to.Rcpt)
		if err != nil {
			return 0, reply{}, lost(mailErr, 1, err)
		}
		switch {
		case r.Code == CodeServiceNotAvailable:
			results[i].Err = c.replyError("RCPT", r)
			return 0, reply{}, results[i].Err
		case mailErr != nil:
			// Replies to RCPT after a refused MAIL (usually 503) say
			// nothing about the recipient: the MAIL error is the answer.
		case r.Code/100 == 2:
			accepted++
		default:
			results[i].Err = c.replyError("RCPT", r)
		}
	}
	dr, err := c.readWithin(ctx, "DATA", c.to.DataInit)
	if err != nil {
		return 0, reply{}, lost(mailErr, accepted, err)
	}
	if dr.Code == CodeServiceNotAvailable {
		return 0, reply{}, c.replyError("DATA", dr)
	}
	if mailErr != nil {
		if dr.Code == CodeStartMailInput {
			// A server that refused MAIL but accepted DATA: end the data
			// at once so the session stays in step.
			if err := c.writeBody(ctx, nil, nil); err == nil {
				_, _ = c.readWithin(ctx, "BODY", c.to.DataTerm)
			}
		}
		return 0, reply{}, mailErr
	}
	return accepted, dr, nil
}

// lost is the transaction's error when the session ended (err) before all
// the replies to its pipelined commands were read. A MAIL refusal read
// before stays the answer. When no recipient was accepted and none is
// left without its reply (pending is 0), every recipient has its own
// answer and nothing was to be sent: no error. Otherwise err stands for
// the recipients still waiting; the body was never sent.
func lost(mailErr error, pending int, err error) error {
	switch {
	case mailErr != nil:
		return mailErr
	case pending == 0:
		return nil
	}
	return err
}

// serial sends MAIL, each RCPT and DATA one at a time.
func (c *Client) serial(ctx context.Context, t *txn) (int, reply, error) {
	results := t.results
	mr, err := c.cmd(ctx, "MAIL", c.to.Mail, t.mailLine)
	if err != nil {
		return 0, reply{}, err
	}
	if mr.Code != CodeOK {
		return 0, reply{}, c.replyError("MAIL", mr)
	}
	accepted := 0
	for k, i := range t.rcptIdx {
		r, err := c.cmd(ctx, "RCPT", c.to.Rcpt, t.rcptLines[k])
		if err != nil {
			return 0, reply{}, err
		}
		if r.Code/100 == 2 {
			accepted++
			continue
		}
		results[i].Err = c.replyError("RCPT", r)
		if r.Code == CodeServiceNotAvailable {
			return 0, reply{}, results[i].Err
		}
	}
	if accepted == 0 {
		return 0, reply{}, nil
	}
	dr, err := c.cmd(ctx, "DATA", c.to.DataInit, "DATA")
	if err != nil {
		return 0, reply{}, err
	}
	return accepted, dr, nil
}

// mailCommand builds MAIL FROM with its parameters, or fails before any I/O
// when the message cannot go to this server.
func (c *Client) mailCommand(from string, bodyLen int, opt SendOptions) (string, error) {
	if err := checkAddress(from); err != nil {
		return "", &Error{Command: "MAIL", Text: err.Error()}
	}
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + from + ">")
	size := opt.Size
	if size <= 0 {
		size = bodyLen
	}
	if params, ok := c.ext["SIZE"]; ok {
		// RFC 1870 §4: a declared maximum of 0 means no fixed limit.
		if max, err := strconv.ParseInt(params, 10, 64); err == nil && max > 0 && int64(size) > max {
			return "", &Error{Command: "MAIL", Code: CodeExceededStorage, Enhanced: "5.3.4",
				Text: fmt.Sprintf("message of %d bytes exceeds the server's SIZE limit of %d (RFC 1870); not sent", size, max)}
		}
		b.WriteString(" SIZE=" + strconv.Itoa(size))
	}
	if opt.EightBit {
		if _, ok := c.ext["8BITMIME"]; !ok {
			return "", &Error{Command: "MAIL", Code: CodeTransactionFailed, Enhanced: "5.6.3",
				Text: "message has 8-bit content but the server does not offer 8BITMIME (RFC 6152); not sent"}
		}
		b.WriteString(" BODY=8BITMIME")
	}
	if opt.SMTPUTF8 {
		if _, ok := c.ext["SMTPUTF8"]; !ok {
			return "", &Error{Command: "MAIL", Code: CodeMailboxNameNotAllowed, Enhanced: "5.6.7",
				Text: "message needs SMTPUTF8 but the server does not offer it (RFC 6531 §3.2); not sent"}
		}
		b.WriteString(" SMTPUTF8")
	}
	return b.String(), nil
}

// checkAddress refuses what would break the command line (CR or LF
// would let an address inject commands).
func checkAddress(a string) error {
	if strings.ContainsAny(a, "\r\n<>\x00") {
		return fmt.Errorf("address %q contains CR, LF, NUL or angle brackets", a)
	}
	return nil
}

// resetIfDirty sends RSET after a failed transaction.
func (c *Client) resetIfDirty(ctx context.Context) error {
	if !c.dirty {
		return nil
	}
	r, err := c.cmd(ctx, "RSET", c.to.Mail, "RSET")
	if err != nil {
		return err
	}
	if r.Code != CodeOK {
		c.broken = true
		c.conn.Close()
		return c.replyError("RSET", r)
	}
	c.dirty = false
	return nil
}

// writeBody writes the message with CRLF line ends and dot-stuffing
// (RFC 5321 §4.5.2), then the terminating "." and, when next is not nil,
// next's commands. Each block written gets the DataBlock timeout of its
// own (connWriter).
func (c *Client) writeBody(ctx context.Context, body []byte, next *txn) error {
	stop := c.deadline(ctx, c.to.DataBlock)
	defer stop()
	c.blockCtx = ctx
	defer func() { c.blockCtx = nil }()
	if c.cfg.Trace != nil {
		c.trace(fmt.Sprintf("C: <message body, %d bytes>", len(body)))
	}
	if err := writeDotStuffed(c.bw, body); err != nil {
		return c.ioError(ctx, "BODY", err)
	}
	if _, err := c.bw.WriteString(".\r\n"); err != nil {
		return c.ioError(ctx, "BODY", err)
	}
	c.trace("C: .")
	if next != nil {
		if err := c.writeCommands(next); err != nil {
			return c.ioError(ctx, "BODY", err)
		}
	}
	if err := c.bw.Flush(); err != nil {
		return c.ioError(ctx, "BODY", err)
	}
	return nil
}

// writeDotStuffed copies body to w, turning bare LF and bare CR into CRLF,
// doubling a leading "." on every line (RFC 5321 §4.5.2), and ending with
// CRLF. It copies line by line: lines are found with bytes.IndexByte, which
// is vectorised, so a rendered message (CRLF already) costs one search per
// line rather than a look at every byte.
func writeDotStuffed(w *bufio.Writer, body []byte) error {
	if onWireAlready(body) {
		_, err := w.Write(body)
		return err
	}
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1] // the CR of this CRLF
			}
		} else {
			line, body = body, nil
			if line[len(line)-1] == '\r' {
				line = line[:len(line)-1] // a final bare CR ends the line
			}
		}
		writeStuffedLine(w, line)
	}
	_, err := w.Write(nil)
	return err
}

// onWireAlready reports whether body needs no change to go out as DATA:
// every line, the last included, ends in CRLF, there is no other CR or LF,
// and no line starts with ".". A rendered message is like this, and is then
// copied at once instead of line by line. The checks are vectorised counts
// and one IndexByte per line.
func onWireAlready(body []byte) bool {
	n := len(body)
	if n == 0 {
		return true
	}
	if body[0] == '.' || n < 2 || body[n-2] != '\r' || body[n-1] != '\n' {
		return false
	}
	// With as many CRs as LFs and a CR before every LF, every CR is part
	// of a CRLF.
	if bytes.Count(body, crByte) != bytes.Count(body, lfByte) {
		return false
	}
	for i := 0; ; {
		j := bytes.IndexByte(body[i:], '\n')
		if j < 0 {
			return true
		}
		i += j
		if i == 0 || body[i-1] != '\r' {
			return false
		}
		i++
		if i < n && body[i] == '.' {
			return false
		}
	}
}

var crByte, lfByte = []byte{'\r'}, []byte{'\n'}

// writeStuffedLine writes one line (no LF in it) and CRLF; a bare CR
// inside it is a line break too, so the text after it is a line of its own
// and gets its leading dot doubled.
func writeStuffedLine(w *bufio.Writer, line []byte) {
	for {
		if len(line) > 0 && line[0] == '.' {
			w.WriteByte('.')
		}
		j := bytes.IndexByte(line, '\r')
		if j < 0 {
			w.Write(line)
			w.WriteString("\r\n")
			return
		}
		w.Write(line[:j])
		w.WriteString("\r\n")
		line = line[j+1:]
	}
}

// Verify runs MAIL FROM and RCPT TO for one address, then RSET, without
// DATA: it reports whether the server would take mail for rcpt now. The
// error is the MAIL or RCPT refusal as an *Error.
func (c *Client) Verify(ctx context.Context, from, rcpt string) error {
	if err := checkAddress(from); err != nil {
		return &Error{Command: "MAIL", Text: err.Error()}
	}
	if err := checkAddress(rcpt); err != nil {
		return &Error{Command: "RCPT", Text: err.Error()}
	}
	if err := c.resetIfDirty(ctx); err != nil {
		return err
	}
	c.dirty = true
	r, err := c.cmd(ctx, "MAIL", c.to.Mail, "MAIL FROM:<"+from+">")
	if err != nil {
		return err
	}
	if r.Code != CodeOK {
		return c.replyError("MAIL", r)
	}
	r, err = c.cmd(ctx, "RCPT", c.to.Rcpt, "RCPT TO:<"+rcpt+">")
	if err != nil {
		return err
	}
	var rcptErr error
	if r.Code/100 != 2 {
		rcptErr = c.replyError("RCPT", r)
		if r.Code == CodeServiceNotAvailable {
			return rcptErr
		}
	}
	if err := c.resetIfDirty(ctx); err != nil && rcptErr == nil {
		return err
	}
	return rcptErr
}
