package main

import (
	"os/exec"
	"testing"
)

// TestQuoteArgSurvivesTheShell: the resume hint printed for a campaign must
// give the shell back exactly the campaign's name.
func TestQuoteArgSurvivesTheShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, name := range []string{"spring-2026", "Spring sale", `it's "new"`, "a$b`c`", "x;rm -rf y", "ñandú"} {
		out, err := exec.Command(sh, "-c", "printf %s "+quoteArg(name)).Output()
		if err != nil || string(out) != name {
			t.Errorf("quoteArg(%q) = %s: the shell gave back %q (%v)", name, quoteArg(name), out, err)
		}
	}
}
