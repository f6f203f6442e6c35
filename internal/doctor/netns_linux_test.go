package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"mailout/internal/mx/mxtest"
	"mailout/internal/peertest"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/transport"
)

// The firewall situations of the guide, for real: each case runs in a
// network namespace the test creates (only its loopback is up, so nothing
// can leave it) with nftables rules in that namespace (input or output hook) that
// drop or reject port 53 or 25, exactly as a firewall, an antivirus or a
// gateway would. The lab (a DNS server on 127.0.0.1:53, an MX on
// 127.0.0.1:25, a relay on 127.0.0.1:587) and the doctor run in a child
// process started inside the namespace (`ip netns exec`); it prints the
// report's JSON, which the parent checks.

const netnsCaseEnv = "MAILOUT_DOCTOR_NETNS_CASE"

var netnsCases = []struct {
	name string
	// hook is where the rules sit: "input" stands for a gateway or an ISP
	// (a dropped packet is never answered, a rejected one gets an ICMP
	// error or a TCP reset back), "output" for a firewall on this very
	// computer (the kernel refuses to send: EPERM).
	hook  string
	rules string // nft statements
	want  want
}{
	{"working", "input", "", want{verdict: VerdictOK, en: "small test campaign", es: "envío pequeño de prueba"}},
	{"dns-dropped", "input", "udp dport 53 drop\n tcp dport 53 drop", want{verdict: VerdictDNSBlocked,
		en: "No DNS server answers on port 53", es: "Ningún servidor DNS responde en el puerto 53"}},
	{"dns-rejected", "input", "udp dport 53 reject\n tcp dport 53 reject with tcp reset", want{verdict: VerdictDNSRefused,
		en: "allow port 53 in your firewall", es: "permita el puerto 53 en su firewall"}},
	{"dns-blocked-here", "output", "udp dport 53 drop\n tcp dport 53 drop", want{verdict: VerdictDNSBlocked,
		en: "a firewall, an antivirus", es: "un firewall, la «protección de gusanos de Internet»"}},
	{"port25-dropped", "input", "tcp dport 25 drop", want{verdict: VerdictPort25Blocked,
		en: "Port 25 is blocked on the way out", es: "El puerto 25 está bloqueado a la salida"}},
	{"port25-rejected", "input", "tcp dport 25 reject with tcp reset", want{verdict: VerdictPort25Refused,
		en: "Every connection to port 25 is refused", es: "Todas las conexiones al puerto 25 se rechazan"}},
	{"relay-port-dropped", "input", "tcp dport 587 drop", want{verdict: VerdictRelayWrongPort,
		en: "the same server answers on another one", es: "el mismo servidor responde en otro", suggest: "smtps://u@127.0.0.1:465"}},
	{"relay-all-dropped", "input", "tcp dport { 465, 587 } drop", want{verdict: VerdictRelayBlocked,
		en: "a firewall, an antivirus or your gateway blocks it", es: "un firewall, un antivirus o su gateway lo bloquea"}},
}

func TestNetns(t *testing.T) {
	if os.Getenv(netnsCaseEnv) != "" {
		t.Skip("inside the namespace")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range netnsCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := peertest.NewNetns(t)
			if tc.rules != "" {
				ns.Firewall(t, "doctor_test", tc.hook, tc.rules)
			}
			cmd := ns.Command(exe, "-test.run=^TestNetnsChild$", "-test.v")
			cmd.Env = append(os.Environ(), netnsCaseEnv+"="+tc.name)
			out, err := cmd.CombinedOutput()
			js, ok := between(out, "<<<REPORT", "REPORT>>>")
			if err != nil || !ok {
				t.Fatalf("child in %s: %v\n%s", ns.Name, err, out)
			}
			r, err := ParseReport(js)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, r, tc.want, "relay-pw")
		})
	}
}

// TestNetnsChild is the lab and the doctor, run inside a namespace by
// TestNetns.
func TestNetnsChild(t *testing.T) {
	name := os.Getenv(netnsCaseEnv)
	if name == "" {
		t.Skip("run by TestNetns inside a network namespace")
	}
	srvTLS, pool, _ := smtptest.NewTestCert(t, "mx.lab.test", "127.0.0.1")
	z := mxtest.NewZone().MX("lab.test", 10, "mx.lab.test").A("mx.lab.test", "127.0.0.1").
		MX("other.test", 10, "mx.other.test").A("mx.other.test", "127.0.0.1")
	d, err := mxtest.New("127.0.0.1:53", z)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := Config{Route: route.Direct, DNS: []string{"127.0.0.1"}, Domains: []string{"lab.test", "other.test"},
		AllowLoopbackMX: true, MXRootCAs: pool, RootCAs: pool, HELO: "doctor.lab.test", Timeouts: fastTimeouts}
	if strings.HasPrefix(name, "relay-") {
		auth := map[string]string{"u": "relay-pw"}
		for _, o := range []smtptest.Options{
			{Addr: "127.0.0.1:587", TLS: srvTLS, Auth: auth, Domain: "relay.lab.test"},
			{Addr: "127.0.0.1:465", TLS: srvTLS, ImplicitTLS: true, Auth: auth, Domain: "relay.lab.test"},
		} {
			smtptest.Start(t, o)
		}
		acc, _, err := transport.ParseRelayURL("smtp://u:relay-pw@127.0.0.1:587", os.Getenv, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Route, cfg.Relays, cfg.ProbePorts = route.Relay, []*transport.RelayAccount{acc}, []int{465}
	} else {
		smtptest.Start(t, smtptest.Options{Addr: "127.0.0.1:25", TLS: srvTLS, Domain: "mx.lab.test"})
	}
	r := Run(context.Background(), cfg)
	fmt.Printf("<<<REPORT%sREPORT>>>\n", r.JSON())
}

func between(b []byte, start, end string) ([]byte, bool) {
	i := bytes.Index(b, []byte(start))
	j := bytes.LastIndex(b, []byte(end))
	if i < 0 || j < i {
		return nil, false
	}
	return b[i+len(start) : j], true
}
