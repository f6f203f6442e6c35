package dkim

import (
	"testing"
)

// BenchmarkSign signs campaign-shaped messages (the header fields render
// writes, a quoted-printable UTF-8 text body) into a reused buffer, as a
// scheduler worker would.
func BenchmarkSign(b *testing.B) {
	for _, k := range []struct{ name, file string }{{"rsa2048", "rsa2048.pem"}, {"ed25519", "ed25519.pem"}} {
		s := newSigner(b, k.file, Options{})
		for _, size := range []struct {
			name string
			n    int
		}{{"1KB", 1 << 10}, {"20KB", 20 << 10}} {
			b.Run("algo="+k.name+"/size="+size.name, func(b *testing.B) {
				msg := campaignMessage(size.n)
				var buf []byte
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					buf, err = s.AppendSigned(buf[:0], msg)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
