package hub

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// drawInterval caps terminal redraws at five a second: enough to look alive, cheap to write.
const drawInterval = 200 * time.Millisecond

// progress reports one file's download: on a terminal a line redrawn in place with \r, elsewhere
// (logs, pipes) a single line when the file completes. A nil writer makes every method a no-op.
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	name  string
	start time.Time // when the file's first attempt began, for the rate
	moved int64     // bytes received by this process, for the rate (a resumed prefix is not)
	done  int64     // bytes in the partial file
	total int64     // -1 when unknown
	drawn time.Time // last redraw; zero before the first
	width int       // length of the last line drawn, to blank its leftovers
}

func newProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, tty: isTerminal(w), now: now, total: -1}
}

// isTerminal reports whether w is a character device, which \r can redraw.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// begin starts a file.
func (p *progress) begin(name string) {
	*p = progress{w: p.w, tty: p.tty, now: p.now, name: name, start: p.now(), total: -1}
}

// resume starts a transfer attempt with done bytes already on disk out of total (-1: unknown).
func (p *progress) resume(done, total int64) {
	p.done, p.total = done, total
	p.draw(false)
}

// Write counts received bytes; it is one of the download's io.MultiWriter targets.
func (p *progress) Write(b []byte) (int, error) {
	p.moved += int64(len(b))
	p.done += int64(len(b))
	p.draw(false)
	return len(b), nil
}

// end finishes the file's line; a failed download leaves a terminal line as it stood.
func (p *progress) end(ok bool) {
	if p.w == nil {
		return
	}
	switch {
	case p.tty && ok:
		p.draw(true)
		fmt.Fprintln(p.w)
	case p.tty && !p.drawn.IsZero():
		fmt.Fprintln(p.w)
	case ok:
		fmt.Fprintln(p.w, p.line())
	}
}

// draw redraws a terminal line when drawInterval has passed, or always when forced.
func (p *progress) draw(force bool) {
	if p.w == nil || !p.tty {
		return
	}
	now := p.now()
	if !force && !p.drawn.IsZero() && now.Sub(p.drawn) < drawInterval {
		return
	}
	p.drawn = now
	line := p.line()
	pad := max(p.width-len(line), 0)
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+strings.Repeat(" ", pad))
}

// line is "name  done / total  rate  percent", leaving out what an unknown total cannot give.
func (p *progress) line() string {
	rate := 0.0
	if s := p.now().Sub(p.start).Seconds(); s > 0 {
		rate = float64(p.moved) / s / 1e6
	}
	if p.total < 0 {
		return fmt.Sprintf("%s  %s  %.1f MB/s", p.name, formatBytes(p.done), rate)
	}
	pct := int64(100)
	if p.total > 0 {
		pct = 100 * p.done / p.total
	}
	return fmt.Sprintf("%s  %s / %s  %.1f MB/s  %3d%%", p.name, formatBytes(p.done), formatBytes(p.total), rate, pct)
}

// formatBytes writes n in decimal units, as the hub's web pages do.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	const prefixes = "kMGTPE"
	v, i := float64(n)/unit, 0
	for v >= unit && i < len(prefixes)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", v, prefixes[i])
}
