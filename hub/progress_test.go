package hub

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeClock is advanced by hand so redraw throttling is tested without sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// playDownload feeds p a 3 MB file resumed from 1 MB: 20 chunks of 100 kB, 50 ms apart, then
// a second file of unknown size.
func playDownload(p *progress, clock *fakeClock) {
	p.begin("model.safetensors")
	p.resume(1_000_000, 3_000_000)
	chunk := make([]byte, 100_000)
	for range 20 {
		clock.advance(50 * time.Millisecond)
		p.Write(chunk)
	}
	p.end(true)
	p.begin("tokenizer.json")
	p.resume(0, -1)
	clock.advance(300 * time.Millisecond)
	p.Write(chunk[:1500])
	p.end(true)
}

func TestProgressGolden(t *testing.T) {
	for _, tty := range []bool{true, false} {
		name := map[bool]string{true: "progress_terminal.golden", false: "progress_log.golden"}[tty]
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			p := newProgress(&out, clock.now)
			p.tty = tty
			playDownload(p, clock)

			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("output:\n%q\nwant:\n%q", out.String(), want)
			}
		})
	}
}

// TestProgressThrottle checks the terminal redraw rate: 20 writes over one second redraw at
// most 1s/drawInterval times, plus the first draw and the final one.
func TestProgressThrottle(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(0, 0)}
	p := newProgress(&out, clock.now)
	p.tty = true
	playDownload(p, clock)
	first, _, _ := strings.Cut(out.String(), "\n")
	if draws, most := strings.Count(first, "\r"), int(time.Second/drawInterval)+2; draws > most || draws < 3 {
		t.Errorf("%d redraws in one second, want 3..%d", draws, most)
	}
	if !strings.HasSuffix(first, "100%") {
		t.Errorf("last redraw %q, want it to end at 100%%", first[strings.LastIndex(first, "\r"):])
	}
}

func TestProgressSilentWithoutWriter(t *testing.T) {
	clock := &fakeClock{}
	p := newProgress(nil, clock.now)
	playDownload(p, clock) // must not panic
	if p.done != 1500 {
		t.Errorf("done = %d, want 1500", p.done)
	}
}

func TestProgressNotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&bytes.Buffer{}) {
		t.Error("a regular file or buffer taken for a terminal")
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {785_456, "785.5 kB"},
		{3_087_467_144, "3.1 GB"}, {1 << 62, "4.6 EB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
