// Package chart draws the benchmark's PNG charts with the standard library's
// image packages and a bitmap font: grouped bar charts, one panel per
// workload, panels tiled into one picture. It is small on purpose: the
// bench needs a handful of readable charts, not a plotting library.
package chart

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one bar colour across the groups; NaN values draw no bar.
type Series struct {
	Name   string
	Values []float64
}

// Panel is one bar chart: Groups along the x axis (e.g. thread counts),
// one bar per series in each group.
type Panel struct {
	Title  string
	YLabel string
	Groups []string
	Series []Series
	// RefLine, if positive, draws a dashed horizontal line at that value
	// (a goal, such as 1.0 for a ratio).
	RefLine float64
}

// Palette is the series colours, in order.
var palette = []color.RGBA{
	{0x4c, 0x72, 0xb0, 0xff}, // blue
	{0xdd, 0x84, 0x52, 0xff}, // orange
	{0x55, 0xa8, 0x68, 0xff}, // green
	{0xc4, 0x4e, 0x52, 0xff}, // red
	{0x81, 0x72, 0xb3, 0xff}, // purple
}

const (
	panelW, panelH = 420, 300
	marginL        = 64
	marginR        = 12
	marginT        = 52
	marginB        = 48
	charW          = 7 // basicfont.Face7x13
)

var (
	black = color.RGBA{0x20, 0x20, 0x20, 0xff}
	grey  = color.RGBA{0xd0, 0xd0, 0xd0, 0xff}
)

// WritePNG tiles the panels cols to a row and writes them to path, with a
// title above and a legend of the first panel's series names below it.
func WritePNG(path, title string, cols int, panels []Panel) error {
	rows := (len(panels) + cols - 1) / cols
	const header = 44
	img := image.NewRGBA(image.Rect(0, 0, cols*panelW, header+rows*panelH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, 8, 18, title, black)
	if len(panels) > 0 {
		x := 8
		for i, s := range panels[0].Series {
			c := palette[i%len(palette)]
			fill(img, image.Rect(x, 28, x+12, 38), c)
			text(img, x+16, 37, s.Name, black)
			x += 16 + len(s.Name)*charW + 16
		}
	}
	for i, p := range panels {
		ox, oy := (i%cols)*panelW, header+(i/cols)*panelH
		drawPanel(img, image.Rect(ox, oy, ox+panelW, oy+panelH), p)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drawPanel(img *image.RGBA, r image.Rectangle, p Panel) {
	text(img, r.Min.X+marginL, r.Min.Y+18, p.Title, black)
	plot := image.Rect(r.Min.X+marginL, r.Min.Y+marginT, r.Max.X-marginR, r.Max.Y-marginB)
	top := 0.0
	for _, s := range p.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				top = max(top, v)
			}
		}
	}
	top = max(top, p.RefLine)
	if top <= 0 {
		top = 1
	}
	step := niceStep(top / 4)
	top = math.Ceil(top/step) * step
	y := func(v float64) int { return plot.Max.Y - int(v/top*float64(plot.Dy())) }
	for v := 0.0; v <= top+step/2; v += step {
		yy := y(v)
		fill(img, image.Rect(plot.Min.X, yy, plot.Max.X, yy+1), grey)
		label := strconv.FormatFloat(v, 'f', decimals(step), 64)
		text(img, plot.Min.X-6-len(label)*charW, yy+4, label, black)
	}
	text(img, r.Min.X+4, plot.Min.Y-8, p.YLabel, black)
	if p.RefLine > 0 {
		yy := y(p.RefLine)
		for x := plot.Min.X; x < plot.Max.X; x += 8 {
			fill(img, image.Rect(x, yy-1, min(x+4, plot.Max.X), yy+1), palette[3])
		}
	}
	ng, ns := len(p.Groups), max(1, len(p.Series))
	if ng == 0 {
		return
	}
	gw := plot.Dx() / ng
	bw := max(2, (gw-12)/ns)
	for g, name := range p.Groups {
		gx := plot.Min.X + g*gw + (gw-bw*ns)/2
		for si, s := range p.Series {
			if g >= len(s.Values) || math.IsNaN(s.Values[g]) || math.IsInf(s.Values[g], 0) {
				continue
			}
			fill(img, image.Rect(gx+si*bw, y(s.Values[g]), gx+(si+1)*bw-1, plot.Max.Y), palette[si%len(palette)])
		}
		text(img, plot.Min.X+g*gw+gw/2-len(name)*charW/2, plot.Max.Y+16, name, black)
	}
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), black)
}

// niceStep rounds a raw grid step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func decimals(step float64) int {
	if step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step)))
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{c}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
