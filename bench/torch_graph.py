#!/usr/bin/python3
"""The straightforward PyTorch version of attrgraph's graph rows, run side by side with
bench_graph (not a CI dependency; Debian's python3-torch and python3-numpy).

    ./build/bench/bench_graph --no-long --dump /tmp/agbench
    /usr/bin/python3 bench/torch_graph.py /tmp/agbench   (Debian's python3 with python3-torch)

It reads the generated model (model.bin, llama2.c format) and rows.json (the prompt, the logit
targets, the units attrgraph expanded, attrgraph's wall time and a sample of its edges), then
computes the same rows the way circuit-tracer does: one batch-replicated forward pass (batch
256) with autograd, the frozen factors detached (norm scales, attention patterns, SwiGLU gate
factors) and every MLP output held fixed (detached, re-entered as a leaf whose gradient is the
cotangent of the MLP output); then one backward per batch of 256 targets (retain_graph), and
at every layer the einsum of the MLP-output gradients with W2 scaled by the neurons (every
unit's edge), plus the embedding edges. It reports the wall time next to attrgraph's, and
checks attrgraph's sampled edges against its own rows.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch


def load_llama2c(path):
    hdr = np.fromfile(path, dtype=np.int32, count=7)
    D, Hd, L, H, KVH, Vs, S = (int(v) for v in hdr)
    V = abs(Vs)
    hs = D // H
    KV = KVH * hs
    w = np.fromfile(path, dtype=np.float32, offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = w[off:off + n].reshape(shape)
        off += n
        return torch.from_numpy(a.copy())

    m = dict(D=D, Hd=Hd, L=L, H=H, KVH=KVH, V=V, hs=hs, KV=KV)
    m["emb"] = take(V, D)
    m["rms_att"] = take(L, D)
    m["wq"] = take(L, D, D)
    m["wk"] = take(L, KV, D)
    m["wv"] = take(L, KV, D)
    m["wo"] = take(L, D, D)
    m["rms_ffn"] = take(L, D)
    m["w1"] = take(L, Hd, D)
    m["w2"] = take(L, D, Hd)
    m["w3"] = take(L, Hd, D)
    m["rms_final"] = take(D)
    off += S * hs  # legacy RoPE tables
    m["wcls"] = take(V, D) if Vs < 0 else m["emb"]
    return m


def rope(x, T, hs, theta=10000.0):
    # x [B, T, heads, hs]; adjacent pairs (2i, 2i+1) rotated by pos * theta^(-2i/hs)
    i = torch.arange(0, hs, 2, dtype=torch.float64)
    freq = theta ** (-i / hs)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
    c, s = torch.cos(ang).float(), torch.sin(ang).float()
    a, b = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = a * c[None, :, None, :] - b * s[None, :, None, :]
    out[..., 1::2] = a * s[None, :, None, :] + b * c[None, :, None, :]
    return out


def forward(m, tokens, B, eps=1e-5):
    """Batch-replicated forward of the local replacement model with autograd."""
    T, D, H, KVH, hs = len(tokens), m["D"], m["H"], m["KVH"], m["hs"]
    tok = torch.tensor(tokens)
    x0 = m["emb"][tok].unsqueeze(0).expand(B, T, D).clone().requires_grad_(True)
    x = x0
    mask = torch.full((T, T), float("-inf")).triu(1)
    mlp_leaves, neurons = [], []
    for l in range(m["L"]):
        r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps).detach()  # frozen norm scale
        a = x * r * m["rms_att"][l]
        q = (a @ m["wq"][l].T).view(B, T, H, hs)
        k = (a @ m["wk"][l].T).view(B, T, KVH, hs)
        v = (a @ m["wv"][l].T).view(B, T, KVH, hs)
        q, k = rope(q, T, hs), rope(k, T, hs)
        rep = H // KVH
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hs) + mask
        p = torch.softmax(s, dim=-1).detach()  # frozen attention pattern: OV path only
        heads = torch.einsum("bhqk,bkhd->bqhd", p, v).reshape(B, T, D)
        x = x + heads @ m["wo"][l].T
        r2 = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps).detach()
        u = x * r2 * m["rms_ffn"][l]
        gate = u @ m["w1"][l].T
        up = u @ m["w3"][l].T
        n = torch.nn.functional.silu(gate).detach() * up  # frozen gate factor
        neurons.append(n)
        mlp = (n @ m["w2"][l].T).detach().requires_grad_(True)  # MLP output held fixed
        mlp_leaves.append(mlp)
        x = x + mlp
    rf = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps).detach()
    xfin = x * rf * m["rms_final"]
    return x0, mlp_leaves, neurons, xfin


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/agbench"
    meta = json.load(open(d + "/rows.json"))
    m = load_llama2c(d + "/model.bin")
    tokens, T, B = meta["tokens"], meta["T"], meta["batch_size"]
    torch.manual_seed(0)
    # the same cores as OpenBLAS uses for attrgraph (Debian's torch may start with one thread)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model D={m['D']} L={m['L']} Hd={m['Hd']}, T={T}, batch {B}")
    wmean = m["wcls"].mean(0)
    # the rows: logits (demeaned), then the units, as attrgraph computed them
    targets = [("logit", tok, None) for tok, _, _ in meta["logits"]] + [("unit", (l, p, i), None) for l, p, i, _ in meta["units"]]
    E_tok = m["emb"][torch.tensor(tokens)]  # [T, D]

    def rows_for(batch, x0, leaves, neurons, xfin, keep=False):
        loss = 0.0
        for b, (kind, t, _) in enumerate(batch):
            if kind == "logit":
                loss = loss + xfin[b, T - 1] @ (m["wcls"][t] - wmean)
            else:
                l, p, i = t
                loss = loss + neurons[l][b, p, i]
        grads = torch.autograd.grad(loss, [x0] + leaves, retain_graph=True, allow_unused=True)
        nb = len(batch)
        emb_edges = (grads[0][:nb] * E_tok).sum(-1)  # [nb, T]
        unit_edges = []
        for l in range(m["L"]):
            # every unit's edge: (d mlp_out) . W2[:, i] * n_i (None: no target of the batch reads
            # above this layer, so its edges are all zero)
            if grads[1 + l] is None:
                unit_edges.append(torch.zeros(nb, T, m["Hd"]) if keep else None)
                continue
            e = (grads[1 + l][:nb] @ m["w2"][l]) * neurons[l][0].detach()
            unit_edges.append(e if keep else None)
        return emb_edges, unit_edges

    t0, c0 = time.perf_counter(), time.process_time()
    with torch.enable_grad():
        x0, leaves, neurons, xfin = forward(m, tokens, B)
        t1 = time.perf_counter()
        for s in range(0, len(targets), B):
            rows_for(targets[s:s + B], x0, leaves, neurons, xfin)
    t2, c2 = time.perf_counter(), time.process_time()
    ours = meta["ours_seconds"]
    print(f"PyTorch: forward {t1 - t0:.3f} s, {len(targets)} rows {t2 - t1:.3f} s, total {t2 - t0:.3f} s "
          f"({len(targets) / (t2 - t0):.0f} rows/s)")
    print(f"attrgraph: edge phases {ours['edges_total']:.3f} s (ranking {ours['rank']:.3f} s + exact rows {ours['rows']:.3f} s, "
          f"{ours['rows_computed']} rows through the VJP)")
    print(f"ratio attrgraph / PyTorch wall time: {ours['edges_total'] / (t2 - t0):.3f}  (target <= 0.5)")
    if "build_cpu" in ours:  # CPU seconds (every thread): comparable on a shared machine
        print(f"CPU time: PyTorch {c2 - c0:.3f} s, attrgraph's whole build {ours['build_cpu']:.3f} s "
              f"(wall {ours['build_wall']:.3f} s); ratio {ours['build_cpu'] / (c2 - c0):.3f}")

    # cross-check attrgraph's sampled edges against these rows
    samples = meta["sample_edges"]
    want = {}
    for tgt, src, w in samples:
        key = (tgt[0], tgt[1], tgt[2], tgt[3])
        want.setdefault(key, []).append((src, w))
    keys = list(want)
    worst = 0.0
    with torch.enable_grad():
        for s in range(0, len(keys), B):
            chunk = keys[s:s + B]
            batch = [("logit", k[3], None) if k[0] == 1 else ("unit", (k[1], k[2], k[3]), None) for k in chunk]
            emb_edges, unit_edges = rows_for(batch, x0, leaves, neurons, xfin, keep=True)
            for b, k in enumerate(chunk):
                scale = max(abs(w) for _, w in want[k])
                for src, w in want[k]:
                    got = float(emb_edges[b, src[2]]) if src[0] == 2 else float(unit_edges[src[1]][b, src[2], src[3]])
                    worst = max(worst, abs(got - w) / scale)
    print(f"attrgraph's sampled edges ({len(samples)} in {len(keys)} rows) vs PyTorch: max error {worst:.2e} of the row's largest")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
