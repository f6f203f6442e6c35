package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The options table is the command's own flags: every flag can also be set
// in a configuration file or in the environment, so there is one list of
// options, one set of names and one help text. Precedence: command line,
// then environment (MAILOUT_ + the flag name in upper case with _ for -,
// e.g. MAILOUT_ALLOW_LOOPBACK_MX=true), then the file, then the default.
//
// The file (--config FILE, or MAILOUT_CONFIG) has one "name = value" per
// line, names as the flags without the dashes; "#" starts a comment; a
// repeatable flag (relay, dns, attach, ...) may appear on several lines:
//
//	# mailout.conf — a lab
//	route = direct
//	dns = 127.0.0.1:5354
//	allow-loopback-mx = true
//	relay-password-env = SMTP_PASSWORD
//
// Only the options the running command has are applied; the others are
// ignored, so one file can serve send, resume and doctor.

// applyOptions sets every flag of cmd that the command line left unset
// from the environment, then from the configuration file.
func (a *app) applyOptions(cmd *cobra.Command) error {
	file, err := a.readConfig(cmd)
	if err != nil {
		return err
	}
	var errs []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		env := "MAILOUT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := a.getenv(env); v != "" {
			if err := setFlag(f, []string{v}); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", env, err))
			}
			return
		}
		if vals, ok := file.values[f.Name]; ok {
			if err := setFlag(f, vals); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %s: %v", file.path, f.Name, err))
			}
		}
	})
	if len(errs) > 0 {
		return usageErr("%s", strings.Join(errs, "; "))
	}
	return nil
}

func setFlag(f *pflag.Flag, vals []string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.Replace(vals)
	}
	if len(vals) > 1 {
		return fmt.Errorf("given %d times; it takes one value", len(vals))
	}
	return f.Value.Set(vals[0])
}

type configFile struct {
	path   string
	values map[string][]string
}

func (a *app) readConfig(cmd *cobra.Command) (configFile, error) {
	cf := configFile{values: map[string][]string{}}
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = a.getenv("MAILOUT_CONFIG")
	}
	if path == "" {
		return cf, nil
	}
	cf.path = path
	data, err := os.ReadFile(path)
	if err != nil {
		return cf, usageErr("configuration file: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimPrefix(strings.TrimSpace(name), "--")
		if !ok || name == "" {
			return cf, usageErr("%s:%d: expected name = value", path, n)
		}
		cf.values[name] = append(cf.values[name], strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		return cf, usageErr("configuration file %s: %v", path, err)
	}
	// A name that no command knows is a typo worth reporting.
	known := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(cmd.Root())
	for name := range cf.values {
		if !known[name] {
			return cf, usageErr("%s: unknown option %q (options are the flags of mailout's commands)", path, name)
		}
	}
	return cf, nil
}
