package doctor

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"mailout/internal/mx"
)

// DiscoverConfig says whose settings to find and how to reach the network.
type DiscoverConfig struct {
	// Address is the mailbox, e.g. user@example.com.
	Address string
	// DNS servers ("IP" or "IP:PORT"); empty = ResolvConf's.
	DNS        []string
	ResolvConf string
	// HTTPGet fetches an autoconfig document; nil = an http.Client with
	// the connect timeout. A non-200 answer must be an error.
	HTTPGet func(ctx context.Context, url string) ([]byte, error)
	// Ports are probed on the usual host names; default 587, 465, 25.
	Ports    []int
	HELO     string
	Timeouts Timeouts
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Discovery is the relay found for a mailbox.
type Discovery struct {
	Address string `json:"address"`
	// Source is how it was found: "autoconfig", "srv" or "probe".
	Source string `json:"source"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	// TLS is "implicit" (smtps://), "starttls" (smtp://) or "none".
	TLS            string   `json:"tls"`
	Username       string   `json:"username"`
	AuthMechanisms []string `json:"auth_mechanisms,omitempty"`
	// URL is the relay URL to use; the password is read from the
	// environment variable MAILOUT_RELAY_PASSWORD.
	URL string `json:"url"`
	// Tried is what was looked at, in order, with its result.
	Tried []string `json:"tried"`
}

// ErrNotFound: no way to send for that address was found.
var ErrNotFound = errors.New("no SMTP submission server found")

// PasswordEnv is the variable named in discovered relay URLs.
const PasswordEnv = "MAILOUT_RELAY_PASSWORD"

// Discover finds the relay settings of a mailbox the way mail clients do:
// the provider's autoconfig document, then SRV records (RFC 6186 §3.1,
// RFC 8314 §5.1), then probing smtp.DOMAIN, mail.DOMAIN and DOMAIN on the
// usual ports; each candidate is connected to and its AUTH mechanisms read.
// No credentials are sent.
func Discover(ctx context.Context, dc DiscoverConfig) (*Discovery, error) {
	at := strings.LastIndexByte(dc.Address, '@')
	if at <= 0 || at == len(dc.Address)-1 {
		return nil, fmt.Errorf("%q is not a mailbox address (user@example.com)", dc.Address)
	}
	domain := strings.ToLower(strings.TrimSuffix(dc.Address[at+1:], "."))
	c := (&Config{HELO: dc.HELO, Timeouts: dc.Timeouts, Dial: dc.Dial}).withDefaults()
	res, err := mx.New(mx.Config{Servers: dc.DNS, ResolvConf: dc.ResolvConf, Timeout: c.Timeouts.DNS, FailureTTL: -1})
	if err != nil {
		return nil, err
	}
	d := &Discovery{Address: dc.Address}
	get := dc.HTTPGet
	if get == nil {
		get = httpGetter(c.Timeouts.Connect, nil)
	}
	ports := dc.Ports
	if len(ports) == 0 {
		ports = []int{587, 465, 25}
	}

	// 1. Autoconfig (Thunderbird's format): the provider says.
	for _, u := range autoconfigURLs(domain, dc.Address) {
		body, err := get(ctx, u)
		if err != nil {
			d.Tried = append(d.Tried, fmt.Sprintf("autoconfig %s: %v", u, err))
			continue
		}
		servers, err := parseAutoconfig(body)
		if err != nil || len(servers) == 0 {
			d.Tried = append(d.Tried, fmt.Sprintf("autoconfig %s: no SMTP server in it (%v)", u, err))
			continue
		}
		for _, s := range servers {
			user := expandUser(s.Username, dc.Address)
			if ok := d.try(ctx, &c, res, "autoconfig", s.Hostname, s.Port, user); ok {
				return d, nil
			}
		}
	}

	// 2. SRV: _submissions._tcp (implicit TLS, RFC 8314 §5.1) first, then
	// _submission._tcp (RFC 6186 §3.1).
	for _, svc := range []string{"_submissions._tcp.", "_submission._tcp."} {
		srvs, err := lookupSRV(ctx, &c, res.Servers(), svc+domain)
		if err != nil {
			d.Tried = append(d.Tried, fmt.Sprintf("SRV %s%s: %v", svc, domain, err))
			continue
		}
		for _, s := range srvs {
			if s.Target == "." { // RFC 6186 §3.4: service not provided
				d.Tried = append(d.Tried, fmt.Sprintf("SRV %s%s: \".\" (not provided)", svc, domain))
				break
			}
			if d.try(ctx, &c, res, "srv", strings.TrimSuffix(s.Target, "."), int(s.Port), dc.Address) {
				return d, nil
			}
		}
	}

	// 3. The usual names on the usual ports.
	for _, h := range []string{"smtp." + domain, "mail." + domain, domain} {
		for _, p := range ports {
			if d.try(ctx, &c, res, "probe", h, p, dc.Address) {
				return d, nil
			}
		}
	}
	return d, ErrNotFound
}

// try connects to host:port and, when it speaks SMTP and offers a login,
// fills d.
func (d *Discovery) try(ctx context.Context, c *Config, res *mx.Resolver, source, host string, port int, user string) bool {
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		var err error
		if addrs, err = res.LookupHost(ctx, host); err != nil {
			d.Tried = append(d.Tried, fmt.Sprintf("%s %s: %v", source, host, err))
			return false
		}
	}
	addr := net.JoinHostPort(addrs[0].String(), strconv.Itoa(port))
	m := probeMode(ctx, c, host, addr)
	d.Tried = append(d.Tried, fmt.Sprintf("%s %s:%d: %s", source, host, port, m.evidence))
	if m.code != codeConnected || len(m.auth) == 0 {
		return false
	}
	d.Source, d.Host, d.Port, d.Username, d.AuthMechanisms = source, host, port, user, m.auth
	scheme := "smtp"
	switch {
	case m.implicit:
		d.TLS, scheme = "implicit", "smtps"
	case m.starttls:
		d.TLS = "starttls"
	default:
		d.TLS, scheme = "none", "smtp+insecure"
	}
	u := url.URL{Scheme: scheme, User: url.User(user), Host: net.JoinHostPort(host, strconv.Itoa(port)),
		RawQuery: "password-env=" + PasswordEnv}
	d.URL = u.String()
	return true
}

// autoconfigURLs are where mail clients look for a provider's settings:
// autoconfig.DOMAIN and DOMAIN/.well-known, HTTPS before HTTP.
func autoconfigURLs(domain, address string) []string {
	q := "?emailaddress=" + url.QueryEscape(address)
	return []string{
		"https://autoconfig." + domain + "/mail/config-v1.1.xml" + q,
		"https://" + domain + "/.well-known/autoconfig/mail/config-v1.1.xml" + q,
		"http://autoconfig." + domain + "/mail/config-v1.1.xml" + q,
	}
}

// autoconfigServer is one <outgoingServer type="smtp">.
type autoconfigServer struct {
	Hostname   string `xml:"hostname"`
	Port       int    `xml:"port"`
	SocketType string `xml:"socketType"`
	Username   string `xml:"username"`
}

// parseAutoconfig reads the SMTP servers of an autoconfig document
// (clientConfig version 1.1).
func parseAutoconfig(b []byte) ([]autoconfigServer, error) {
	var doc struct {
		XMLName  xml.Name `xml:"clientConfig"`
		Provider struct {
			Outgoing []struct {
				Type string `xml:"type,attr"`
				autoconfigServer
			} `xml:"outgoingServer"`
		} `xml:"emailProvider"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("autoconfig document: %w", err)
	}
	var out []autoconfigServer
	for _, o := range doc.Provider.Outgoing {
		s := o.autoconfigServer
		s.Hostname = strings.TrimSpace(s.Hostname)
		if !strings.EqualFold(o.Type, "smtp") || s.Hostname == "" || s.Port <= 0 || s.Port > 65535 {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// expandUser fills the placeholders of an autoconfig user name.
func expandUser(tmpl, address string) string {
	if tmpl == "" {
		return address
	}
	at := strings.LastIndexByte(address, '@')
	return strings.NewReplacer("%EMAILADDRESS%", address, "%EMAILLOCALPART%", address[:at],
		"%EMAILDOMAIN%", address[at+1:]).Replace(tmpl)
}

// lookupSRV asks the DNS servers for SRV records, sorted by priority, then
// weight, highest first (RFC 2782's order without the random draw).
func lookupSRV(ctx context.Context, c *Config, servers []string, name string) ([]*dns.SRV, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
	cl := &dns.Client{Timeout: c.Timeouts.DNS}
	var lastErr error
	for _, s := range servers {
		qctx, cancel := context.WithTimeout(ctx, c.Timeouts.DNS)
		resp, _, err := cl.ExchangeContext(qctx, m, s)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Rcode != dns.RcodeSuccess {
			return nil, fmt.Errorf("%s", dns.RcodeToString[resp.Rcode])
		}
		var out []*dns.SRV
		for _, rr := range resp.Answer {
			if s, ok := rr.(*dns.SRV); ok {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("no records")
		}
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Priority != out[j].Priority {
				return out[i].Priority < out[j].Priority
			}
			return out[i].Weight > out[j].Weight
		})
		return out, nil
	}
	return nil, lastErr
}

// httpGetter returns an HTTPGet over net/http; dial, when set, replaces the
// dialer (a lab points every host at a local server).
func httpGetter(timeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(context.Context, string) ([]byte, error) {
	tr := &http.Transport{DialContext: dial, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout}
	cl := &http.Client{Transport: tr, Timeout: 2 * timeout}
	return func(ctx context.Context, u string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := cl.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %s", resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
}

// HTTPGetVia returns an HTTPGet whose connections all go to addr,
// whatever the URL's host: the lab setting of `mailout doctor --account`.
func HTTPGetVia(addr string, timeout time.Duration) func(context.Context, string) ([]byte, error) {
	d := &net.Dialer{Timeout: timeout}
	return httpGetter(timeout, func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	})
}

// WriteText prints the discovery for a person.
func (d *Discovery) WriteText(w io.Writer, lang string) {
	es := lang == "es"
	for _, t := range d.Tried {
		fmt.Fprintf(w, "  %s\n", t)
	}
	if d.URL == "" {
		if es {
			fmt.Fprintf(w, "\nNo se encontró el servidor Smtp de %s: solicite a su proveedor servidor, puerto, usuario y contraseña.\n", d.Address)
		} else {
			fmt.Fprintf(w, "\nNo SMTP server found for %s: ask your provider for the server, port, user name and password.\n", d.Address)
		}
		return
	}
	if es {
		fmt.Fprintf(w, "\nEncontrado por %s: %s puerto %d (%s), autenticación %s\nUse: --relay '%s'\n(ponga la contraseña en la variable de entorno %s)\n",
			d.Source, d.Host, d.Port, d.TLS, strings.Join(d.AuthMechanisms, " "), d.URL, PasswordEnv)
		return
	}
	fmt.Fprintf(w, "\nFound by %s: %s port %d (%s), login %s\nUse: --relay '%s'\n(put the password in the environment variable %s)\n",
		d.Source, d.Host, d.Port, d.TLS, strings.Join(d.AuthMechanisms, " "), d.URL, PasswordEnv)
}
