// Command mailout sends a personalised message to every recipient of a list,
// through an SMTP relay or directly to each recipient's mail server, and
// says why when mail does not get out. See README.md.
package main

import "os"

func main() { os.Exit(execute(os.Args[1:])) }
