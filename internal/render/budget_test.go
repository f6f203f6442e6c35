package render

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// doubling returns a template fragment that declares $v0 = x and then
// $vN = $v(N-1) twice over, n times: 2^n times the length of x.
func doubling(x string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{{$v0 := %s}}", x)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{{$v%d := printf "%%s%%s" $v%d $v%d}}`, i, i-1, i-1)
	}
	return b.String()
}

// allocated returns the bytes the heap handed out while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Text/template cannot be stopped, and a declaration may double the one
// before it: 40 of them would need a terabyte. What template functions
// produce for one recipient is charged to a budget the size of the message
// cap, so the recipient fails with ErrTooLarge, naming the file and the
// line, after at most that many bytes — wherever the template is.
func TestFunctionResultsHaveABudget(t *testing.T) {
	const maxSize = 1 << 20
	chain := doubling(".x", 40) + "{{len $v40}}"
	for _, tc := range []struct {
		name string
		src  Source
		file string
		line int
	}{
		{"text body", Source{Text: []byte("From: a@example.com\nSubject: s\n\n" + chain + "\n")}, "message.txt", 4},
		{"header", Source{Text: []byte("From: a@example.com\nSubject: " + chain + "\n\nbody\n")}, "message.txt", 2},
		{"HTML body", Source{Text: []byte("From: a@example.com\n\n"), HTML: []byte("<p>\n" + chain + "</p>")}, "message.html", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := mustParse(t, tc.src, Options{MaxSize: maxSize})
			r := Recipient{Email: "r@example.com", Fields: map[string]string{"x": "abcd"}}
			var err error
			n := allocated(func() { _, err = tp.Render(r, "", nil) })
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != tc.file || e.Line != tc.line {
				t.Errorf("err = %v, want it located at %s:%d", err, tc.file, tc.line)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(maxSize)) {
				t.Errorf("err = %v, want it to name the cap %d", err, maxSize)
			}
			if n > 8*maxSize {
				t.Errorf("rendering allocated %d bytes, want at most %d", n, 8*maxSize)
			}
		})
	}
}

// A single call is refused before it builds its result when that result
// would not fit: forty copies of a 256 KiB value are not built to find out.
func TestFunctionResultRefusedBeforeItIsBuilt(t *testing.T) {
	const maxSize = 1 << 20
	src := "From: a@example.com\n\n{{$a := printf \"%s\" .x}}{{len (printf \"" + strings.Repeat("%s", 40) + "\"" + strings.Repeat(" $a", 40) + ")}}"
	tp := mustParse(t, Source{Text: []byte(src)}, Options{MaxSize: maxSize})
	r := Recipient{Email: "r@example.com", Fields: map[string]string{"x": strings.Repeat("y", 256<<10)}}
	var err error
	n := allocated(func() { _, err = tp.Render(r, "", nil) })
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if n > 4<<20 {
		t.Errorf("rendering allocated %d bytes; the 10 MiB result was built", n)
	}
}

// Within the budget the same constructs work, for every recipient in turn:
// each render starts with a full budget.
func TestFunctionsWithinBudget(t *testing.T) {
	src := Source{
		Text: []byte("From: a@example.com\nSubject: {{upper .x}} {{printf \"%s!\" .x}}\n\n" + doubling(".x", 10) + "{{len $v10}} {{$v3}}\n"),
		HTML: []byte("<p>" + doubling(".x", 10) + "{{len $v10}} {{html $v2}}</p>"),
	}
	tp := mustParse(t, src, Options{MaxSize: 64 << 10, Now: fixedNow})
	for i := range 50 {
		m, err := tp.Render(Recipient{Email: "r@example.com", Fields: map[string]string{"x": "ab"}}, "", nil)
		if err != nil {
			t.Fatalf("render %d: %v", i, err)
		}
		h, parts := parseMessage(t, m.Data)
		if got := h.Get("Subject"); got != "AB ab!" {
			t.Fatalf("Subject %q", got)
		}
		if got := string(parts[0].Body); got != "2048 abababababababab\r\n" {
			t.Fatalf("text body %q", got)
		}
		if got := string(parts[1].Body); got != "<p>2048 abababab</p>\r\n" {
			t.Fatalf("HTML body %q", got)
		}
	}
}

// Renders run concurrently (one per scheduler worker): each has its own
// budget, so a recipient that exhausts it does not fail the others, and
// none of them shares a budget with another (run with -race).
func TestConcurrentRendersHaveTheirOwnBudget(t *testing.T) {
	src := Source{
		Text: []byte("From: a@example.com\nSubject: {{upper .x | printf \"%.10s\"}}\n\n" + doubling(".x", 12) + "{{len $v12}}\n"),
		HTML: []byte("<p>" + doubling(".x", 12) + "{{len $v12}}</p>"),
	}
	tp := mustParse(t, src, Options{MaxSize: 1 << 20})
	errs := make(chan error, 8*40)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			var buf bytes.Buffer
			for i := range 40 {
				// Every fourth recipient's value is 128 times longer:
				// 4096 copies of it do not fit in 1 MiB.
				x, big := "ab", (w+i)%4 == 0
				if big {
					x = strings.Repeat("ab", 128)
				}
				_, err := tp.Render(Recipient{Email: "r@example.com", Fields: map[string]string{"x": x}}, "", &buf)
				if big != errors.Is(err, ErrTooLarge) {
					errs <- fmt.Errorf("worker %d render %d (big=%v): %v", w, i, big, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
