package demo

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Table renders the results as Markdown: the source's table (mean@k without search), then the
// test-time comparison when it was run.
func (r *Results) Table() string {
	var b strings.Builder
	k := r.Config.Eval.K
	fmt.Fprintf(&b, "| method | mean@%d | pass@%d | dense reward | learner steps | rollouts trained |\n|---|---|---|---|---|---|\n", k, k)
	for _, row := range r.Rows {
		steps, rollouts := "", ""
		if row.Steps > 0 {
			steps, rollouts = fmt.Sprint(row.Steps), fmt.Sprint(row.Rollouts)
		}
		fmt.Fprintf(&b, "| %s | %.1f%% | %.1f%% | %+.3f | %s | %s |\n", row.Name, 100*row.Summary.MeanAtK,
			100*row.Summary.PassAtK, row.Summary.MeanDense, steps, rollouts)
	}
	if len(r.TestTime) > 0 {
		fmt.Fprintf(&b, "\n| at test time, same token budget | accuracy | tokens per problem |\n|---|---|---|\n")
		for _, row := range r.TestTime {
			fmt.Fprintf(&b, "| %s | %.1f%% | %.0f |\n", row.Name, 100*row.Summary.MeanAtK,
				float64(row.Summary.Tokens)/float64(max(row.Summary.Problems, 1)))
		}
	}
	return b.String()
}

// Write saves results.json, results.md and plot.png in the demo directory.
func (r *Results) Write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	md := fmt.Sprintf("%s\nbudget: %s of RL per algorithm on loopback (%d actors), %d held-out problems, mean@%d at temperature %.1f; took %s\n",
		r.Table(), r.Config.RLBudget, r.Config.Actors, r.Config.TestProblems, r.Config.Eval.K, r.Config.Eval.Temperature, r.Took.Round(1e9))
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return r.Plot(filepath.Join(dir, "plot.png"))
}

// palette colours one line per algorithm.
var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 148, G: 103, B: 189, A: 255},
}

// Plot draws, against seconds of RL, each run's training reward (mean dense reward of the samples
// the learner trained on) as a line, and its evaluation mean@k before and after as two points
// joined by a dashed line.
func (r *Results) Plot(path string) error {
	p := plot.New()
	p.Title.Text = "Countdown, tiny model: training reward and held-out mean@k"
	p.X.Label.Text = "seconds of RL"
	p.Y.Label.Text = "reward (dense) / mean@k"
	p.Legend.Top = true
	before := r.Rows[0].Summary.MeanAtK
	for i, row := range r.Rows[1:] {
		recs, err := ReadProgress(row.Progress)
		if err != nil || len(recs) == 0 {
			continue
		}
		c := palette[i%len(palette)]
		xys := make(plotter.XYs, len(recs))
		for j, rec := range recs {
			xys[j].X, xys[j].Y = rec.Seconds, rec.RewardMean
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		line.Color = c
		line.Width = vg.Points(1.5)
		evals := plotter.XYs{{X: 0, Y: before}, {X: recs[len(recs)-1].Seconds, Y: row.Summary.MeanAtK}}
		el, pts, err := plotter.NewLinePoints(evals)
		if err != nil {
			return err
		}
		el.Color, pts.Color = c, c
		el.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(line, el, pts)
		p.Legend.Add(row.Name+": training reward", line)
		p.Legend.Add(fmt.Sprintf("%s: mean@%d %.1f%% → %.1f%%", row.Name, r.Config.Eval.K, 100*before, 100*row.Summary.MeanAtK), el, pts)
	}
	p.Add(plotter.NewGrid())
	// Leave room above the data for the legend, a line per entry.
	entries := 2 * (len(r.Rows) - 1)
	p.Y.Max += (p.Y.Max - p.Y.Min) * 0.09 * float64(entries)
	return p.Save(9*vg.Inch, vg.Length(5+0.3*float64(entries))*vg.Inch, path)
}

// Print writes the table to w.
func (r *Results) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", r.Table())
}
