package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"mailout/internal/campaign"
	"mailout/internal/web"
)

// shutdownGrace is how long serve waits on SIGINT/SIGTERM for requests to
// end and for the campaigns it sends to pause after their messages in
// flight.
const shutdownGrace = 2 * time.Minute

func (a *app) serveCmd() *cobra.Command {
	var (
		listen   string
		oneClick campaign.OneClick
	)
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8025] [--db FILE]",
		Short: "Run the web app: campaigns, live progress, the doctor and the sandbox inbox",
		Long: `serve runs mailout's web app on --listen (loopback by default) over the
database of --db, which it creates when it does not exist, and prints its
address. The first visit creates the administrator.

Campaigns started from the web are sent by this process; campaigns stored
as running whose process died are resumed at start. Campaigns sent by
mailout send in another process are shown live and can be paused or
cancelled from the web.

On SIGINT or SIGTERM the campaigns being sent pause once their messages in
flight are finished and recorded (resume them from the web or with
mailout resume), and the server stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), listen, oneClick)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8025", "address and port to listen on")
	cmd.Flags().StringVar(&oneClick.PublicURL, "public-url", "", "where this app is reached from the Internet (https://…): campaigns made on the compose page get one-click unsubscribe links under it")
	cmd.Flags().StringVar(&oneClick.Mailto, "unsubscribe-mailto", "", "with --public-url: an address List-Unsubscribe also names as mailto:")
	return cmd
}

func (a *app) serve(ctx context.Context, listen string, oneClick campaign.OneClick) error {
	oneClick, err := oneClick.Check()
	if err != nil {
		return inputErr(err)
	}
	svc, err := a.openService(ctx, true)
	if err != nil {
		return err
	}
	defer svc.Close()
	// Runs outlive the signal: Shutdown pauses them cleanly.
	runner := web.NewRunner(context.WithoutCancel(ctx), svc, a.logger)
	h, err := web.New(web.Config{
		Campaigns: svc, Accounts: web.NewMemoryAccounts(), Runner: runner, Logger: a.logger, OneClick: oneClick,
		AccountErrors: web.AccountErrors{RateLimited: web.ErrRateLimited, AdminExists: web.ErrAdminExists},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return usageErr("--listen %s: %v", listen, err)
	}
	n, err := runner.ResumeInterrupted(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	if n > 0 {
		fmt.Fprintf(a.stderr, "mailout serve: resumed %d interrupted campaigns\n", n)
	}
	// Requests (the progress streams among them) end when serving ends.
	base, stopRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRequests()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(a.stdout, "mailout serve: http://%s/\n", ln.Addr())

	select {
	case err := <-served:
		_ = runner.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(a.stderr, "mailout serve: stopping; campaigns being sent pause after their messages in flight")
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopRequests()
	herr := srv.Shutdown(grace)
	rerr := runner.Shutdown(grace)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(herr, rerr)
}
