package run

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// Series is one run's history on a curves chart.
type Series struct {
	Name    string // legend prefix; may be empty for a single run
	History head.History
	// ValidationOnly leaves out the training curves (for comparing runs).
	ValidationOnly bool
}

// Line colours: one hue per series, training dashed, validation solid and
// the holdout, where there is one, dotted.
var seriesColors = []color.Color{
	color.RGBA{31, 119, 180, 255},  // blue
	color.RGBA{214, 39, 40, 255},   // red
	color.RGBA{44, 160, 44, 255},   // green
	color.RGBA{148, 103, 189, 255}, // purple
	color.RGBA{255, 127, 14, 255},  // orange
	color.RGBA{23, 190, 207, 255},  // cyan
}

// PlotCurves draws accuracy (left) and loss (right) per epoch, training
// (dashed) and validation (solid) for every series, with the title above
// both panels, and writes the PNG to path atomically.
func PlotCurves(path, title string, series ...Series) error {
	acc, loss := plot.New(), plot.New()
	acc.Title.Text, loss.Title.Text = "Accuracy", "Loss"
	acc.Y.Label.Text, loss.Y.Label.Text = "accuracy", "categorical cross-entropy"
	for _, p := range []*plot.Plot{acc, loss} {
		p.X.Label.Text = "epoch"
		p.X.Tick.Marker = integerTicks{}
		p.Add(plotter.NewGrid())
		styleAxes(p)
	}
	// One legend under both panels: inside a panel it would hide curves,
	// which can pass through any corner.
	var legend []legendEntry
	for i, s := range series {
		c := seriesColors[i%len(seriesColors)]
		name := func(what string) string {
			if s.Name == "" {
				return what
			}
			return s.Name + " " + what
		}
		holdout := !s.ValidationOnly && s.History.HasHoldout()
		for _, panel := range []struct {
			p                   *plot.Plot
			train, val, holdout func(head.Epoch) float64
		}{
			{acc, func(e head.Epoch) float64 { return e.Accuracy }, func(e head.Epoch) float64 { return e.ValAccuracy }, func(e head.Epoch) float64 { return e.HoldoutAccuracy }},
			{loss, func(e head.Epoch) float64 { return e.Loss }, func(e head.Epoch) float64 { return e.ValLoss }, func(e head.Epoch) float64 { return e.HoldoutLoss }},
		} {
			if !s.ValidationOnly {
				if err := addLine(panel.p, s.History, panel.train, lineStyle(c, true)); err != nil {
					return err
				}
			}
			if holdout {
				if err := addLine(panel.p, s.History, panel.holdout, dottedStyle(c)); err != nil {
					return err
				}
			}
			if err := addLine(panel.p, s.History, panel.val, lineStyle(c, false)); err != nil {
				return err
			}
		}
		if !s.ValidationOnly {
			legend = append(legend, legendEntry{name("training"), lineStyle(c, true)})
		}
		if holdout {
			legend = append(legend, legendEntry{name("holdout (selects)"), dottedStyle(c)})
		}
		legend = append(legend, legendEntry{name("validation"), lineStyle(c, false)})
	}
	acc.Y.Min = math.Min(acc.Y.Min, 0)
	acc.Y.Max = math.Max(acc.Y.Max, 1)
	loss.Y.Min = math.Min(loss.Y.Min, 0)

	const w, h = 30 * vg.Centimeter, 13 * vg.Centimeter
	return writePNG(path, w, h, title, func(dc draw.Canvas) {
		used := drawLegend(dc, legend)
		dc.Min.Y += used
		canvases := plot.Align([][]*plot.Plot{{acc, loss}}, draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 5, PadBottom: vg.Millimeter * 2}, dc)
		acc.Draw(canvases[0][0])
		loss.Draw(canvases[0][1])
	})
}

// legendEntry is one line of a legend.
type legendEntry struct {
	label string
	style draw.LineStyle
}

// drawLegend lays the entries out in centred rows at the bottom of dc and
// returns the height it used.
func drawLegend(dc draw.Canvas, entries []legendEntry) vg.Length {
	if len(entries) == 0 {
		return 0
	}
	text := draw.TextStyle{Color: color.Black, YAlign: draw.YCenter, Handler: plot.DefaultTextHandler, Font: plot.DefaultFont}
	text.Font.Size = vg.Points(12)
	sample, gap, spacing := vg.Centimeter, vg.Millimeter*2, vg.Centimeter
	rowH := vg.Points(20)
	width := func(e legendEntry) vg.Length { return sample + gap + text.Width(e.label) }
	// Greedy rows that fit the canvas width.
	var rows [][]legendEntry
	var cur []legendEntry
	var curW vg.Length
	for _, e := range entries {
		ew := width(e)
		if len(cur) > 0 && curW+spacing+ew > dc.Size().X-2*spacing {
			rows = append(rows, cur)
			cur, curW = nil, 0
		}
		if len(cur) > 0 {
			curW += spacing
		}
		cur = append(cur, e)
		curW += ew
	}
	rows = append(rows, cur)
	for r, row := range rows {
		var rw vg.Length
		for i, e := range row {
			if i > 0 {
				rw += spacing
			}
			rw += width(e)
		}
		x := dc.Min.X + (dc.Size().X-rw)/2
		y := dc.Min.Y + rowH*vg.Length(len(rows)-r) - rowH/2 + vg.Millimeter
		for _, e := range row {
			dc.StrokeLine2(e.style, x, y, x+sample, y)
			dc.FillText(text, vg.Point{X: x + sample + gap, Y: y}, e.label)
			x += width(e) + spacing
		}
	}
	return rowH*vg.Length(len(rows)) + vg.Millimeter*2
}

func lineStyle(c color.Color, dashed bool) draw.LineStyle {
	s := draw.LineStyle{Color: c, Width: vg.Points(1.5)}
	if dashed {
		s.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return s
}

// dottedStyle is the holdout's line: the hue of its series, dotted.
func dottedStyle(c color.Color) draw.LineStyle {
	s := lineStyle(c, false)
	s.Dashes = []vg.Length{vg.Points(1.5), vg.Points(2.5)}
	return s
}

func addLine(p *plot.Plot, h head.History, f func(head.Epoch) float64, style draw.LineStyle) error {
	pts := make(plotter.XYs, len(h))
	for i, e := range h {
		pts[i] = plotter.XY{X: float64(e.Epoch), Y: f(e)}
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("run: plot: %w", err)
	}
	l.LineStyle = style
	p.Add(l)
	if len(h) == 1 {
		// A single epoch is a point, not a line: mark it.
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		s.Color = style.Color
		p.Add(s)
	}
	return nil
}

func styleAxes(p *plot.Plot) {
	p.Title.TextStyle.Font.Size = vg.Points(14)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(12)
		a.Tick.Label.Font.Size = vg.Points(10)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(11)
}

// integerTicks labels whole epochs only, about ten of them.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	lo, hi = math.Ceil(lo), math.Floor(hi)
	step := math.Max(1, niceStep((hi-lo)/8))
	var t []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		t = append(t, plot.Tick{Value: v, Label: fmt.Sprint(int(v))})
	}
	return t
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// PlotConfusion draws the confusion matrix of r as a heat map: rows are
// true classes (top to bottom), columns predicted classes, each cell shows
// its count and is shaded by the fraction of its row (the class's recall
// on the diagonal), so that small classes stay readable.
//
// Above head.MaxConfusionClasses classes (where the report keeps no full
// matrix, and a k×k grid would take minutes and gigabytes to draw) it
// draws the most frequent confusions as bars instead, so that the drawing
// stays small and quick whatever the class count.
func PlotConfusion(path, title string, r *head.Report) error {
	k := len(r.Classes)
	if r.Confusion == nil || k > head.MaxConfusionClasses {
		return plotTopConfusions(path, title, r)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("accuracy %.4f on %d examples", r.Accuracy, r.N)
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	styleAxes(p)
	p.Add(&confusionCells{r: r})
	names := func(reverse bool) plot.TickerFunc {
		return func(float64, float64) []plot.Tick {
			t := make([]plot.Tick, k)
			for i, c := range r.Classes {
				v := float64(i)
				if reverse {
					v = float64(k - 1 - i)
				}
				t[i] = plot.Tick{Value: v + 0.5, Label: c}
			}
			return t
		}
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = names(false), names(true)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, float64(k), 0, float64(k)
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Tick.Length, p.Y.Tick.Length = 0, 0
	longest := 0
	for _, c := range r.Classes {
		longest = max(longest, len(c))
	}
	if longest*k > 60 {
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YTop
	}
	side := vg.Length(math.Max(14, math.Min(40, 1.2*float64(k)+8))) * vg.Centimeter
	return writePNG(path, side+4*vg.Centimeter, side, title, func(dc draw.Canvas) {
		p.Draw(draw.Crop(dc, vg.Millimeter*3, -vg.Millimeter*5, vg.Millimeter*3, 0))
	})
}

// confusionCells is the plotter of PlotConfusion.
type confusionCells struct{ r *head.Report }

func (c *confusionCells) Plot(dc draw.Canvas, p *plot.Plot) {
	k := len(c.r.Classes)
	tx, ty := p.Transforms(&dc)
	font := plot.DefaultTextHandler
	size := vg.Points(math.Max(7, math.Min(14, 140/float64(k))))
	for i, row := range c.r.Confusion {
		total := 0
		for _, n := range row {
			total += n
		}
		for j, n := range row {
			frac := 0.0
			if total > 0 {
				frac = float64(n) / float64(total)
			}
			x0, x1 := tx(float64(j)), tx(float64(j+1))
			y0, y1 := ty(float64(k-1-i)), ty(float64(k-i))
			rect := vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x1, Y: y1}}
			dc.SetColor(cellColor(frac))
			dc.Fill(rect.Path())
			style := draw.TextStyle{
				Color: color.Black, XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: font,
				Font: plot.DefaultFont,
			}
			style.Font.Size = size
			if frac > 0.5 {
				style.Color = color.White
			}
			dc.FillText(style, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, fmt.Sprint(n))
		}
	}
	// Thin white grid lines between cells.
	ls := draw.LineStyle{Color: color.White, Width: vg.Points(1)}
	for i := 0; i <= k; i++ {
		dc.StrokeLine2(ls, tx(float64(i)), ty(0), tx(float64(i)), ty(float64(k)))
		dc.StrokeLine2(ls, tx(0), ty(float64(i)), tx(float64(k)), ty(float64(i)))
	}
}

// DataRange is the k×k square.
func (c *confusionCells) DataRange() (xmin, xmax, ymin, ymax float64) {
	k := float64(len(c.r.Classes))
	return 0, k, 0, k
}

// cellColor runs from white (0) to dark blue (1).
func cellColor(frac float64) color.Color {
	f := math.Sqrt(math.Max(0, math.Min(1, frac))) // spreads the small fractions
	lerp := func(a, b float64) uint8 { return uint8(math.Round(a + (b-a)*f)) }
	return color.RGBA{lerp(247, 8), lerp(251, 48), lerp(255, 107), 255}
}

// writePNG draws a figure with a title strip on top and writes it as PNG.
func writePNG(path string, w, h vg.Length, title string, paint func(draw.Canvas)) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	img.SetColor(color.White)
	img.Fill(vg.Rectangle{Max: vg.Point{X: w, Y: h}}.Path())
	dc := draw.New(img)
	titleHeight := vg.Length(0)
	if title != "" {
		titleHeight = vg.Points(32)
		style := draw.TextStyle{Color: color.Black, XAlign: draw.XCenter, YAlign: draw.YCenter,
			Handler: plot.DefaultTextHandler, Font: plot.DefaultFont}
		style.Font.Size = vg.Points(16)
		style.Font.Weight = 700
		dc.FillText(style, vg.Point{X: w / 2, Y: h - titleHeight/2}, title)
	}
	dc.Max.Y -= titleHeight
	paint(dc)
	err := fsutil.WriteWith(path, 0o644, func(out io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(out)
		return err
	})
	if err != nil {
		return fmt.Errorf("run: plot: %w", err)
	}
	return nil
}

// plotTopConfusions draws the head.MaxTopConfusions largest off-diagonal
// counts of r as horizontal bars, the largest on top, each labelled "true
// → predicted".
func plotTopConfusions(path, title string, r *head.Report) error {
	cs := r.Confusions(head.MaxTopConfusions)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("accuracy %.4f on %d examples, %d classes: the %d most frequent confusions", r.Accuracy, r.N, len(r.Classes), len(cs))
	p.X.Label.Text = "examples"
	p.Y.Label.Text = "true class → predicted class"
	styleAxes(p)
	n := len(cs)
	p.Add(&confusionBars{cs: cs})
	p.Y.Tick.Marker = plot.TickerFunc(func(float64, float64) []plot.Tick {
		t := make([]plot.Tick, n)
		for i, c := range cs {
			t[i] = plot.Tick{Value: float64(n-1-i) + 0.5, Label: fmt.Sprintf("%s → %s", c.True, c.Predicted)}
		}
		return t
	})
	p.Y.Min, p.Y.Max = 0, float64(max(n, 1))
	p.X.Min = 0
	p.Y.Padding, p.Y.Tick.Length = 0, 0
	h := vg.Length(math.Max(10, 0.5*float64(n)+4)) * vg.Centimeter
	return writePNG(path, 24*vg.Centimeter, h, title, func(dc draw.Canvas) {
		p.Draw(draw.Crop(dc, vg.Millimeter*3, -vg.Millimeter*5, vg.Millimeter*3, 0))
	})
}

// confusionBars is the plotter of plotTopConfusions.
type confusionBars struct{ cs []head.Confusion }

func (b *confusionBars) Plot(dc draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&dc)
	n := len(b.cs)
	style := draw.TextStyle{Color: color.Black, XAlign: draw.XLeft, YAlign: draw.YCenter,
		Handler: plot.DefaultTextHandler, Font: plot.DefaultFont}
	style.Font.Size = vg.Points(9)
	for i, c := range b.cs {
		y0, y1 := ty(float64(n-1-i)+0.1), ty(float64(n-i)-0.1)
		x0, x1 := tx(0), tx(float64(c.Count))
		dc.SetColor(cellColor(0.8))
		dc.Fill(vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x1, Y: y1}}.Path())
		dc.FillText(style, vg.Point{X: x1 + vg.Points(3), Y: (y0 + y1) / 2}, fmt.Sprint(c.Count))
	}
}

// DataRange leaves room right of the longest bar for its count.
func (b *confusionBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	most := 1
	for _, c := range b.cs {
		most = max(most, c.Count)
	}
	return 0, 1.15 * float64(most), 0, float64(max(len(b.cs), 1))
}
