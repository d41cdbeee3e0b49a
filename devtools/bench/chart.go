package bench

import (
	"fmt"
	"strings"
)

// chart draws the run as an SVG: the step search (offered vs completed rate
// for the baseline and the saga), then the fixed-rate run's throughput and
// completion latency percentiles second by second.
func chart(res *Result) string {
	const w, ph, pad = 900, 220, 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, 3*(ph+pad)+pad)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>`)

	// Panel 1: the step search.
	var maxRate float64
	all := append([]Step{}, res.OrderSteps...)
	for _, bl := range res.Baselines {
		all = append(all, bl.Steps...)
	}
	for _, s := range all {
		maxRate = max(maxRate, s.Rate, s.Achieved)
	}
	p1 := panel{x: pad, y: pad, w: w - 2*pad, h: ph, xmax: maxRate * 1.05, ymax: maxRate * 1.05,
		title:  fmt.Sprintf("step search: completed vs offered (orders %.1f/s, baseline %.1f/s, ratio %.2f)", res.OrdersPerSec, res.BaselinePerSec, res.Ratio),
		xlabel: "offered per second", ylabel: "completed per second"}
	p1.frame(&b)
	p1.line(&b, [][2]float64{{0, 0}, {maxRate, maxRate}}, "#bbb", "4 3")
	for _, bl := range res.Baselines {
		color, label := "#888", "baseline (standard start)"
		if bl.Eager {
			color, label = "#444", "baseline (eager start)"
		}
		p1.points(&b, steps(bl.Steps), color, label)
	}
	p1.points(&b, steps(res.OrderSteps), "#1f6feb", "orders")

	// Panels 2 and 3: the fixed-rate run.
	var tmax, cmax, lmax float64
	for _, p := range res.Timeline {
		tmax, cmax, lmax = max(tmax, p.T), max(cmax, float64(p.Completed)), max(lmax, p.P99)
	}
	p2 := panel{x: pad, y: 2*pad + ph, w: w - 2*pad, h: ph, xmax: tmax + 1, ymax: cmax*1.1 + 1,
		title:  fmt.Sprintf("fixed run at %.1f orders/s: completed per second", res.FixedRate),
		xlabel: "seconds", ylabel: "orders/s"}
	p2.frame(&b)
	p2.line(&b, [][2]float64{{0, res.FixedRate}, {tmax + 1, res.FixedRate}}, "#bbb", "4 3")
	p2.line(&b, series(res.Timeline, func(p Point) float64 { return float64(p.Completed) }), "#1f6feb", "")
	p3 := panel{x: pad, y: 3*pad + 2*ph, w: w - 2*pad, h: ph, xmax: tmax + 1, ymax: lmax*1.1 + 1,
		title:  fmt.Sprintf("completion latency by second (ms): p50 %.0f, p95 %.0f, p99 %.0f overall", res.CompleteMS.P50, res.CompleteMS.P95, res.CompleteMS.P99),
		xlabel: "seconds", ylabel: "ms"}
	p3.frame(&b)
	p3.line(&b, series(res.Timeline, func(p Point) float64 { return p.P50 }), "#2da44e", "")
	p3.line(&b, series(res.Timeline, func(p Point) float64 { return p.P95 }), "#d29922", "")
	p3.line(&b, series(res.Timeline, func(p Point) float64 { return p.P99 }), "#cf222e", "")
	p3.legend(&b, []string{"p50", "p95", "p99"}, []string{"#2da44e", "#d29922", "#cf222e"})
	b.WriteString(`</svg>`)
	return b.String()
}

func steps(s []Step) [][2]float64 {
	out := make([][2]float64, len(s))
	for i, st := range s {
		out[i] = [2]float64{st.Rate, st.Achieved}
	}
	return out
}

func series(tl []Point, f func(Point) float64) [][2]float64 {
	out := make([][2]float64, len(tl))
	for i, p := range tl {
		out[i] = [2]float64{p.T, f(p)}
	}
	return out
}

type panel struct {
	x, y, w, h            float64
	xmax, ymax            float64
	title, xlabel, ylabel string
}

func (p panel) px(x, y float64) (float64, float64) {
	if p.xmax <= 0 {
		p.xmax = 1
	}
	if p.ymax <= 0 {
		p.ymax = 1
	}
	return p.x + x/p.xmax*p.w, p.y + p.h - y/p.ymax*p.h
}

func (p panel) frame(b *strings.Builder) {
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`, p.x, p.y-8, p.title)
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`, p.x, p.y, p.w, p.h)
	for i := 0; i <= 4; i++ {
		v := p.ymax * float64(i) / 4
		_, y := p.px(0, v)
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, p.x, p.x+p.w, y, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`, p.x-4, y+4, v)
		xv := p.xmax * float64(i) / 4
		x, _ := p.px(xv, 0)
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%.0f</text>`, x, p.y+p.h+14, xv)
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`, p.x+p.w/2, p.y+p.h+28, p.xlabel)
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555" transform="rotate(-90 %.0f %.0f)">%s</text>`,
		p.x-38, p.y+p.h/2, p.x-38, p.y+p.h/2, p.ylabel)
}

func (p panel) line(b *strings.Builder, pts [][2]float64, color, dash string) {
	if len(pts) == 0 {
		return
	}
	var s strings.Builder
	for _, pt := range pts {
		x, y := p.px(pt[0], pt[1])
		fmt.Fprintf(&s, "%.1f,%.1f ", x, y)
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>`, s.String(), color, dash)
}

func (p panel) points(b *strings.Builder, pts [][2]float64, color, label string) {
	p.line(b, pts, color, "")
	for _, pt := range pts {
		x, y := p.px(pt[0], pt[1])
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x, y, color)
	}
	if len(pts) > 0 {
		x, y := p.px(pts[len(pts)-1][0], pts[len(pts)-1][1])
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`, x+6, y-6, color, label)
	}
}

func (p panel) legend(b *strings.Builder, names, colors []string) {
	for i, n := range names {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`, p.x+p.w-120+float64(i)*40, p.y+16, colors[i], n)
	}
}
