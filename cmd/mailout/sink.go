package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/spf13/cobra"

	"mailout/internal/smtptest"
)

func (a *app) sinkCmd() *cobra.Command {
	var (
		listen string
		dir    string
	)
	cmd := &cobra.Command{
		Use:   "sink [--listen 127.0.0.1:2525] [--dir DIR]",
		Short: "A local SMTP server for trying campaigns: the recipient's local part picks a failure",
		Long: `sink runs an SMTP server on this machine that accepts every message, so a
campaign can be tried for real without sending anything out:

  mailout sink &
  mailout send --recipients list.csv --message message.txt \
      --relay smtp+insecure://127.0.0.1:2525

The recipient's local part (before any +tag) makes the sink misbehave the way
real servers do, to see how mailout reports and retries each case:
  greylist@…   451 4.7.1 the first time, then accepted
  unknown@…    550 5.1.1 user unknown
  full@…       452 4.2.2 mailbox full
  ratelimit@…  421 4.7.28 too many messages
  temp@…       451 4.3.0 temporary failure
  reject@…     554 5.7.1 rejected after the message
  drop@…       connection dropped in the middle of the message
  dropafter@…  connection dropped after the message, before the reply
  slow@…       final reply one second late
With --dir, each accepted message is written there as an .eml file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			var n atomic.Int64
			s, err := smtptest.New(smtptest.Options{Addr: listen, Domain: "mailout-sink.localhost", LocalPartFaults: true,
				OnMessage: func(m smtptest.Received) {
					i := n.Add(1)
					if dir == "" {
						return
					}
					name := filepath.Join(dir, fmt.Sprintf("%08d.eml", i))
					if err := os.WriteFile(name, m.Data, 0o644); err != nil {
						a.logger.Error("sink: cannot keep a message", "err", err)
					}
				}})
			if err != nil {
				return &exitErr{code: exitError, err: fmt.Errorf("sink: %w", err)}
			}
			defer s.Close()
			fmt.Fprintf(a.stderr, "sink: listening on %s (relay URL smtp+insecure://%s); Ctrl-C stops it\n", s.Addr, s.Addr)
			<-cmd.Context().Done()
			fmt.Fprintf(a.stderr, "sink: %d messages accepted\n", n.Load())
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:2525", "address to listen on")
	cmd.Flags().StringVar(&dir, "dir", "", "keep each accepted message as an .eml file in this folder")
	return cmd
}
