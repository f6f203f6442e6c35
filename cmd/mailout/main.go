// Command mailout sends a personalised message to every recipient of a list,
// through an SMTP relay or directly to each recipient's mail server, and
// says why when mail does not get out. See README.md.
package main

import (
	"os"
	"runtime/debug"
)

func main() {
	// The Go runtime ends a fatal error (out of memory, a crash in another
	// goroutine) with exit status 2, which mailout keeps for mistakes in
	// the command line. "crash" makes such an end an abort signal instead,
	// so a script never reads a crash as a usage error.
	debug.SetTraceback("crash")
	os.Exit(execute(os.Args[1:]))
}
