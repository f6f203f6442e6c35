package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func (a *app) exportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export CAMPAIGN DIR",
		Short: "Write the messages kept by the sandbox route as .eml files",
		Long: `export writes every message the sandbox route kept for a campaign into DIR,
one .eml file per recipient (named by line number and address), ready to
open in any mail program.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, c, err := a.openCampaign(ctx, args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			dir := args[1]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			n := 0
			err = st.Messages(ctx, c.ID, func(id int64, email, _ string, data []byte) error {
				name := fmt.Sprintf("%06d-%s.eml", id, safeFileName(email))
				n++
				return os.WriteFile(filepath.Join(dir, name), data, 0o644)
			})
			if err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintf(a.stderr, "campaign %q has no kept messages (only the sandbox route keeps them)\n", c.Name)
				return nil
			}
			fmt.Fprintf(a.stderr, "%d messages written to %s\n", n, dir)
			return nil
		},
	}
}

// safeFileName keeps letters, digits and a few marks of an address.
func safeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '@' || c == '.' || c == '-' || c == '_' || c == '+' ||
			c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}
