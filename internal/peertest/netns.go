package peertest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Netns is a network namespace a test creates and deletes: only its
// loopback is up, so nothing sent inside it can leave it. Tests put a lab
// on its 127.0.0.1 and firewall rules (nftables) in it to reproduce what a
// firewall, an antivirus, a gateway or an ISP does to port 53 or 25.
type Netns struct {
	Name string
}

var netnsSeq atomic.Int64

// NewNetns creates a namespace, deleted when the test ends. It needs root
// and the ip and nft commands (Debian iproute2, nftables): without them the
// test is skipped, or fails when RequirePeers is true.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	need := func(why string) {
		t.Helper()
		if RequirePeers() {
			t.Fatalf("network namespace: %s (%s=1); %s", why, requireVar, setupHint)
		}
		t.Skipf("network namespace: %s", why)
	}
	if os.Geteuid() != 0 {
		need("not root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			need(tool + " not installed (Debian packages iproute2, nftables)")
		}
	}
	n := &Netns{Name: fmt.Sprintf("mailout-test-%d-%d", os.Getpid(), netnsSeq.Add(1))}
	run(t, "", "ip", "netns", "add", n.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.Name).Run() })
	run(t, "", "ip", "-n", n.Name, "link", "set", "lo", "up")
	return n
}

// Firewall loads nftables rules into the namespace as one chain of table
// inet TABLE at the given hook ("input": a gateway or ISP that drops or
// rejects; "output": a firewall on this very computer), e.g.
// Firewall(t, "lab", "input", "tcp dport 25 drop").
func (n *Netns) Firewall(t testing.TB, table, hook, rules string) {
	t.Helper()
	ruleset := "table inet " + table + " {\n chain c {\n  type filter hook " + hook + " priority 0; policy accept;\n  " + rules + "\n }\n}\n"
	run(t, ruleset, "ip", "netns", "exec", n.Name, "nft", "-f", "-")
}

// Command is a command that runs inside the namespace.
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

func run(t testing.TB, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
