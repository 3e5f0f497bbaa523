#!/usr/bin/env python3
"""Figures and the L0-vs-FVU table of README "Transcoders" (plain SVG, standard library only).

usage: bench/transcoders/figures.py RUN_DIR OUT_DIR
RUN_DIR holds what bench/transcoders/run.sh writes: NAME.log (training progress lines),
NAME_eval.json (attrgraph transcoder eval) and NAME_graph*.log (attrgraph graph summaries).
"""
import json
import os
import re
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
STEP = re.compile(r"step (\d+)/(\d+)\s+loss ([\d.]+)\s+fvu ([\d.]+)\s+L0 ([\d.]+)\s+dead ([\d.]+)")


def read_log(path):
    pts = []
    with open(path) as f:
        for line in f:
            m = STEP.search(line)
            if m:
                pts.append(tuple(float(x) for x in m.groups()))
    return pts  # (step, total, loss, fvu, l0, dead)


def nice_ticks(lo, hi, n=5):
    span = hi - lo if hi > lo else 1.0
    raw = span / n
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=mag)
    t = (lo // step) * step
    out = []
    while t <= hi + 1e-12:
        if t >= lo - 1e-12:
            out.append(round(t, 10))
        t += step
    return out


def chart(path, title, xlabel, ylabel, series, logy=False, scatter=False, ymax=None):
    """series: list of (label, [(x, y)], color)"""
    W, H, L, R, T, B = 640, 400, 70, 180, 40, 50
    xs = [x for _, p, _ in series for x, _ in p]
    ys = [y for _, p, _ in series for _, y in p]
    x0, x1 = min(xs), max(xs)
    y0, y1 = (0.0, max(ys) * 1.05) if ymax is None else (0.0, ymax)
    if scatter:
        x0, x1 = 0.0, max(xs) * 1.1
    px = lambda x: L + (x - x0) / ((x1 - x0) or 1) * (W - L - R)
    py = lambda y: H - B - (y - y0) / ((y1 - y0) or 1) * (H - T - B)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2 - R/2 + L/2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for t in nice_ticks(x0, x1):
        o.append(f'<line x1="{px(t):.1f}" y1="{H-B}" x2="{px(t):.1f}" y2="{T}" stroke="#eee"/>')
        o.append(f'<text x="{px(t):.1f}" y="{H-B+16}" text-anchor="middle">{t:g}</text>')
    for t in nice_ticks(y0, y1):
        o.append(f'<line x1="{L}" y1="{py(t):.1f}" x2="{W-R}" y2="{py(t):.1f}" stroke="#eee"/>')
        o.append(f'<text x="{L-6}" y="{py(t)+4:.1f}" text-anchor="end">{t:g}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{W-L-R}" height="{H-T-B}" fill="none" stroke="#444"/>')
    o.append(f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">{xlabel}</text>')
    o.append(f'<text x="16" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 16 {(T+H-B)/2})">{ylabel}</text>')
    for k, (label, pts, color) in enumerate(series):
        pts = [(x, min(y, y1)) for x, y in pts]
        if scatter:
            for x, y in pts:
                o.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{color}"/>')
        else:
            d = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(pts))
            o.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = T + 14 + 18 * k
        o.append(f'<rect x="{W-R+12}" y="{ly-9}" width="12" height="12" fill="{color}"/>')
        o.append(f'<text x="{W-R+30}" y="{ly+1}">{label}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def bars(path, title, groups, labels):
    """groups: {name: [values per layer]}"""
    W, H, L, R, T, B = 640, 360, 60, 180, 40, 50
    n = max(len(v) for v in groups.values())
    vmax = max(max(v) for v in groups.values()) * 1.1
    gw = (W - L - R) / n
    bw = gw * 0.8 / len(groups)
    py = lambda y: H - B - y / vmax * (H - T - B)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{(W-R+L)/2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for t in nice_ticks(0, vmax):
        o.append(f'<line x1="{L}" y1="{py(t):.1f}" x2="{W-R}" y2="{py(t):.1f}" stroke="#eee"/>')
        o.append(f'<text x="{L-6}" y="{py(t)+4:.1f}" text-anchor="end">{t:g}</text>')
    for k, (name, vals) in enumerate(groups.items()):
        for l, v in enumerate(vals):
            x = L + l * gw + gw * 0.1 + k * bw
            o.append(f'<rect x="{x:.1f}" y="{py(v):.1f}" width="{bw:.1f}" height="{H-B-py(v):.1f}" fill="{COLORS[k]}"/>')
        ly = T + 14 + 18 * k
        o.append(f'<rect x="{W-R+12}" y="{ly-9}" width="12" height="12" fill="{COLORS[k]}"/>')
        o.append(f'<text x="{W-R+30}" y="{ly+1}">{name}</text>')
    for l in range(n):
        o.append(f'<text x="{L + l*gw + gw/2:.1f}" y="{H-B+16}" text-anchor="middle">{labels[l]}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{W-L-R}" height="{H-T-B}" fill="none" stroke="#444"/>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def main():
    run, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    main_runs = [("plt_relu", "PLT ReLU+L1"), ("plt_topk", "PLT TopK k=16"), ("clt_topk", "CLT TopK k=16"),
                 ("plt_topk32", "PLT TopK k=32"), ("clt_topk32", "CLT TopK k=32")]
    curves = []
    for k, (name, label) in enumerate(main_runs):
        p = os.path.join(run, name + ".log")
        if os.path.exists(p):
            curves.append((label, read_log(p), COLORS[k]))
    if curves:
        chart(os.path.join(out, "training_fvu.svg"), "Training: fraction of variance unexplained", "step",
              "FVU (batch, mean over layers)", [(l, [(s[0], s[3]) for s in p], c) for l, p, c in curves], ymax=1.0)
        chart(os.path.join(out, "training_l0.svg"), "Training: active features per token", "step",
              "L0 (mean over layers)", [(l, [(s[0], s[4]) for s in p], c) for l, p, c in curves], ymax=64)
    evals = []
    for f in sorted(os.listdir(run)):
        if f.endswith("_eval.json"):
            with open(os.path.join(run, f)) as fh:
                try:
                    evals.append((f[:-10], json.load(fh)))
                except ValueError:
                    pass
    if evals:
        pts = [(name, [(e["mean_l0"], e["mean_fvu"])], COLORS[k % len(COLORS)]) for k, (name, e) in enumerate(evals)]
        chart(os.path.join(out, "l0_vs_fvu.svg"), "Held-out FVU against L0 (stories260K)", "mean L0", "mean FVU", pts,
              scatter=True)
        groups = {name: [ly["fvu"] for ly in e["layers"]] for name, e in evals if name in dict(main_runs)}
        if groups:
            bars(os.path.join(out, "fvu_per_layer.svg"), "Held-out FVU per layer", groups,
                 [f"layer {l}" for l in range(max(len(v) for v in groups.values()))])
        print("| set | features/layer | mean L0 | mean FVU | dead | loss (real) | loss (replacement) | ratio | recovered |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, e in sorted(evals, key=lambda x: x[1]["mean_l0"]):
            print(f"| {name} | {e['n_features']} | {e['mean_l0']:.1f} | {e['mean_fvu']:.3f} | {e['mean_dead_fraction']:.3f} | "
                  f"{e['loss_model']:.3f} | {e['loss_replacement']:.3f} | {e['loss_replacement']/e['loss_model']:.3f} | "
                  f"{e['loss_recovered']:.3f} |")


if __name__ == "__main__":
    main()
