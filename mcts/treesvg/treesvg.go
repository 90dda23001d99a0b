// Package treesvg draws an exported search tree (mcts.Export) as one self-contained SVG file:
// no scripts, no fonts or styles from the network, viewable in any browser.
//
// The tree grows left to right, one column per step. A node's size grows with the square root
// of its visits and its colour is its mean value Q, red (−1) through pale yellow (0) to green
// (+1); unvisited nodes are hollow, terminal nodes are squares. Each edge carries the start of
// its step's text; the chosen path is drawn in blue. Hovering a node shows its numbers and full
// step text (SVG <title>).
package treesvg

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"tsd/mcts"
)

// ErrBadOptions: an Options setting cannot work.
var ErrBadOptions = errors.New("treesvg: bad options")

// Options choose what to draw.
type Options struct {
	// MinVisits hides nodes with fewer completed visits, and their subtrees; the root and the
	// chosen path always show. 0 draws every node, unvisited children included.
	MinVisits int

	// LabelRunes is how much of a step's text an edge shows; longer texts end in "…".
	LabelRunes int
}

// DefaultOptions draw every visited node with 24 characters of each step.
func DefaultOptions() Options { return Options{MinVisits: 1, LabelRunes: 24} }

// Validate reports a setting that cannot work.
func (o Options) Validate() error {
	switch {
	case o.MinVisits < 0:
		return fmt.Errorf("%w: MinVisits %d < 0", ErrBadOptions, o.MinVisits)
	case o.LabelRunes < 1:
		return fmt.Errorf("%w: LabelRunes %d < 1", ErrBadOptions, o.LabelRunes)
	}
	return nil
}

// Geometry, in SVG user units (pixels).
const (
	colWidth  = 210.0 // between a node and its children
	rowHeight = 22.0  // between neighbouring leaves
	margin    = 24.0
	header    = 44.0 // room for the title line and the colour key
	maxRadius = 12.0
	minRadius = 3.0
)

// Render checks e and writes it as SVG to w.
func Render(w io.Writer, e *mcts.Export, opt Options) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	if err := e.Check(); err != nil {
		return err
	}
	l := layOut(e, opt)
	bw := bufio.NewWriter(w)
	d := drawing{w: bw, e: e, l: l, opt: opt}
	d.document()
	return bw.Flush()
}

// layout is where every shown node goes.
type layout struct {
	shown     []bool
	kids      [][]mcts.NodeID // shown children, in id order (prior order for one expansion)
	chosen    []bool
	x, y      []float64
	rows      int
	depth     int
	maxVisits int
}

// layOut places shown nodes: x by depth, leaves on successive rows, a parent midway between its
// first and last child.
func layOut(e *mcts.Export, opt Options) *layout {
	n := len(e.Nodes)
	l := &layout{shown: make([]bool, n), kids: make([][]mcts.NodeID, n), chosen: make([]bool, n),
		x: make([]float64, n), y: make([]float64, n), maxVisits: max(1, e.Nodes[0].Visits)}
	for _, id := range e.Chosen {
		l.chosen[id] = true
	}
	depth := make([]int, n)
	l.shown[0] = true
	for i := 1; i < n; i++ { // parents come before children
		nd := &e.Nodes[i]
		l.shown[i] = l.shown[nd.Parent] && (l.chosen[i] || nd.Visits >= opt.MinVisits)
		if l.shown[i] {
			depth[i] = depth[nd.Parent] + 1
			l.depth = max(l.depth, depth[i])
			l.kids[nd.Parent] = append(l.kids[nd.Parent], mcts.NodeID(i))
			l.maxVisits = max(l.maxVisits, nd.Visits)
		}
	}
	l.place(0, depth)
	return l
}

// place sets the position of id's subtree, depth first.
func (l *layout) place(id mcts.NodeID, depth []int) {
	l.x[id] = margin + maxRadius + float64(depth[id])*colWidth
	kids := l.kids[id]
	if len(kids) == 0 {
		l.y[id] = header + margin + float64(l.rows)*rowHeight
		l.rows++
		return
	}
	for _, k := range kids {
		l.place(k, depth)
	}
	l.y[id] = (l.y[kids[0]] + l.y[kids[len(kids)-1]]) / 2
}

// drawing writes the SVG; write errors surface at Flush.
type drawing struct {
	w   *bufio.Writer
	e   *mcts.Export
	l   *layout
	opt Options
}

func (d *drawing) printf(format string, args ...any) { fmt.Fprintf(d.w, format, args...) }

func (d *drawing) document() {
	width := 2*margin + 2*maxRadius + float64(d.l.depth)*colWidth + colWidth/2
	height := header + 2*margin + float64(max(d.l.rows-1, 0))*rowHeight
	d.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="monospace" font-size="11">`+"\n",
		width, height, width, height)
	d.printf(`<style>.e{fill:none;stroke:#999}.c{fill:none;stroke:#1f5fbf}.l{fill:#333}.n{stroke:#333}.h{fill:#fff;stroke:#999}.p{stroke:#1f5fbf;stroke-width:2.5}</style>` + "\n")
	d.printf(`<rect width="100%%" height="100%%" fill="#fff"/>` + "\n")
	d.title()
	d.key(width)
	for i := 1; i < len(d.e.Nodes); i++ {
		if d.l.shown[i] {
			d.edge(mcts.NodeID(i))
		}
	}
	for i := range d.e.Nodes {
		if d.l.shown[i] {
			d.node(mcts.NodeID(i))
		}
	}
	d.printf("</svg>\n")
}

// title says what the picture shows.
func (d *drawing) title() {
	shown := 0
	for _, s := range d.l.shown {
		if s {
			shown++
		}
	}
	last := &d.e.Nodes[d.e.Chosen[len(d.e.Chosen)-1]]
	end := "unfinished"
	if last.Reward != nil {
		end = fmt.Sprintf("reward %.3g", *last.Reward)
	}
	d.printf(`<text x="%.0f" y="%.0f" font-size="13">`, margin, margin)
	d.text(fmt.Sprintf("%d nodes (%d shown, visits ≥ %d) · root visits %d · chosen path: depth %d, %s",
		len(d.e.Nodes), shown, d.opt.MinVisits, d.e.Nodes[0].Visits, len(d.e.Chosen)-1, end))
	d.printf("</text>\n")
}

// key is the colour scale of Q in the top-right corner.
func (d *drawing) key(width float64) {
	x0, y := width-margin-150, margin+8
	for i := range 15 {
		q := -1 + float64(i)/7
		d.printf(`<rect x="%.0f" y="%.0f" width="10" height="8" fill="%s"/>`, x0+float64(i)*10, y, colour(q))
	}
	d.printf(`<text x="%.0f" y="%.0f" text-anchor="end">Q −1</text><text x="%.0f" y="%.0f">+1</text>`+"\n",
		x0-4, y+8, x0+154, y+8)
}

// edge draws the step into id, with the start of its text above the line's end.
func (d *drawing) edge(id mcts.NodeID) {
	n := &d.e.Nodes[id]
	x1, y1, x2, y2 := d.l.x[n.Parent], d.l.y[n.Parent], d.l.x[id], d.l.y[id]
	class := "e"
	if d.l.chosen[id] {
		class = "c"
	}
	mid := (x1 + x2) / 2
	d.printf(`<path class="%s" stroke-width="%.1f" d="M%.1f %.1fC%.1f %.1f %.1f %.1f %.1f %.1f"/>`,
		class, 1+3*share(n.Visits, d.l.maxVisits), x1, y1, mid, y1, mid, y2, x2, y2)
	d.printf(`<text class="l" x="%.1f" y="%.1f" text-anchor="end">`, x2-maxRadius-2, y2-4)
	d.text(label(n.Step, d.opt.LabelRunes))
	d.printf("</text>\n")
}

// node draws id as a circle (a square if terminal) with its numbers as a tooltip.
func (d *drawing) node(id mcts.NodeID) {
	n := &d.e.Nodes[id]
	r := minRadius + (maxRadius-minRadius)*share(n.Visits, d.l.maxVisits)
	class, fill := "n", "#fff"
	if n.Visits > 0 {
		fill = colour(n.ValueSum / float64(n.Visits))
	} else {
		class = "h"
	}
	if d.l.chosen[id] {
		class += " p"
	}
	x, y := d.l.x[id], d.l.y[id]
	d.printf(`<g><title>`)
	d.text(tooltip(n))
	if n.Terminal {
		d.printf(`</title><rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/></g>`+"\n", class, x-r, y-r, 2*r, 2*r, fill)
		return
	}
	d.printf(`</title><circle class="%s" cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/></g>`+"\n", class, x, y, r, fill)
}

// text writes s as XML character data.
func (d *drawing) text(s string) { _ = xml.EscapeText(d.w, []byte(s)) }

// tooltip is a node's numbers and full step text.
func tooltip(n *mcts.ExportNode) string {
	q := "—"
	if n.Visits > 0 {
		q = fmt.Sprintf("%.3f", n.ValueSum/float64(n.Visits))
	}
	s := fmt.Sprintf("node %d · visits %d · Q %s · prior %.3f · value %.3f · %d tokens", n.ID, n.Visits, q, n.Prior, n.Value, n.Tokens)
	if n.Reward != nil {
		s += fmt.Sprintf(" · terminal, reward %.3f", *n.Reward)
	}
	return s + "\n" + n.Step
}

// label is the first runes of a step's text on one line.
func label(step string, runes int) string {
	step = strings.Join(strings.Fields(step), " ")
	if r := []rune(step); len(r) > runes {
		return string(r[:runes-1]) + "…"
	}
	return step
}

// share maps visits to [0, 1] by square root, so sizes read as areas.
func share(visits, most int) float64 { return math.Sqrt(float64(visits) / float64(most)) }

// colour is the RdYlGn diverging scale at q in [−1, 1].
func colour(q float64) string {
	red, mid, green := [3]float64{215, 48, 39}, [3]float64{255, 255, 191}, [3]float64{26, 152, 80}
	from, to, t := mid, green, math.Min(q, 1)
	if q < 0 {
		from, to, t = mid, red, math.Min(-q, 1)
	}
	var c [3]int
	for i := range c {
		c[i] = int(math.Round(from[i] + (to[i]-from[i])*t))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}
