#!/usr/bin/env python3
"""Write a synthetic attribution graph in the viewer schema (DESIGN.md section 4).

Python standard library only; the same arguments give the same bytes (random.Random(seed)).
The influences are computed the way circuit-tracer computes them (row-normalised |A|,
I = w.(A + A^2 + ...), influence = cumulative rank fraction), so the graph is realistic for
the viewer's pruning slider. The graph is NOT pruned: every node is written, and
metadata.node_threshold is the default slider position.

  --style attrgraph       ids as attrgraph writes them: "{layer}_{index}_{pos}" (units,
                          feature_type "mlp neuron"), "{layer}_-1_{pos}" (errors),
                          "E_{token}_{pos}", "{n_layers+1}_{token}_{pos}" (logits)
  --style circuit-tracer  what circuit-tracer's create_graph_files wrote before its PR #102:
                          "cross layer transcoder" features, the old error id
                          "0_{layer}_{pos}", layers as strings, logits without influence,
                          run_idx/reverse_ctx_idx, a preset qParams (pins, a supernode,
                          clickedId) and labels with characters that must be escaped in HTML

Used for tests/data/graph_small.json, tests/data/circuit_tracer_graph.json and, at test time,
the large graph of the performance check (5000 nodes, 50000 links).
"""
import argparse
import json
import math
import random
import sys

WORDS = ["Once", " upon", " a", " time", ",", " there", " was", " little", " girl", " named",
         " Lily", ".", " She", " loved", " to", " play", " outside", " in", " the", " park",
         " sun", " dog", " cat", " went", " home", " happy", " big", " tree", " and", " ran"]


def cantor(a, b):
    return (a + b) * (a + b + 1) // 2 + b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--style", choices=["attrgraph", "circuit-tracer"], default="attrgraph")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--positions", type=int, default=6)
    ap.add_argument("--features", type=int, default=24, help="number of feature/neuron nodes")
    ap.add_argument("--errors", type=int, default=8, help="number of error nodes")
    ap.add_argument("--logits", type=int, default=3)
    ap.add_argument("--links", type=int, default=0,
                    help="approximate number of links (default: about 4 per target)")
    ap.add_argument("--node-threshold", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    L, T = a.layers, a.positions
    ct = a.style == "circuit-tracer"

    tokens = [rng.randrange(3, 500) for _ in range(T)]
    tokens[0] = 1
    pieces = ["<s>" if ct is False else "<bos>"] + [WORDS[(t * 7) % len(WORDS)] for t in tokens[1:]]
    if ct and T > 3:
        pieces[2] = "\n"           # raw newline token (circuit-tracer keeps them since PR #34)
        pieces[3] = " </script>"   # must not end the viewer's data block

    nodes = []  # dicts: id, kind, layer (int; -1 embeddings, L logits), pos, extra
    seen = set()

    def add(n):
        if n["id"] in seen:
            return False
        seen.add(n["id"])
        nodes.append(n)
        return True

    # features/neurons: random cells, more of them at the last positions
    while sum(1 for n in nodes if n["kind"] == "feature") < a.features:
        layer = rng.randrange(L)
        pos = min(T - 1, int(T * math.sqrt(rng.random())))
        idx = rng.randrange(100, 16384) if ct else rng.randrange(0, 172)
        add({"id": f"{layer}_{idx}_{pos}", "kind": "feature", "layer": layer, "pos": pos, "idx": idx,
             "act": round(rng.lognormvariate(0, 1), 6)})
    # errors: (layer, pos) cells
    cells = [(l, p) for l in range(L) for p in range(T)]
    rng.shuffle(cells)
    for layer, pos in sorted(cells[:min(a.errors, len(cells))]):
        nid = f"0_{layer}_{pos}" if ct else f"{layer}_-1_{pos}"
        add({"id": nid, "kind": "error", "layer": layer, "pos": pos, "idx": -1, "act": None})
    for pos, tok in enumerate(tokens):
        add({"id": f"E_{tok}_{pos}", "kind": "embedding", "layer": -1, "pos": pos, "idx": tok, "act": None})
    probs = sorted((rng.random() for _ in range(a.logits)), reverse=True)
    s = sum(probs) / 0.9
    probs = [p / s for p in probs]
    logit_toks = rng.sample(range(3, 512), a.logits)
    for k, (tok, p) in enumerate(zip(logit_toks, probs)):
        add({"id": f"{L + 1}_{tok}_{T - 1}", "kind": "logit", "layer": L, "pos": T - 1, "idx": tok,
             "prob": round(p, 6), "target": k == 0, "piece": WORDS[(tok * 3) % len(WORDS)]})

    # links: each non-embedding node gets inputs from lower rows at positions <= its own
    n_targets = sum(1 for n in nodes if n["kind"] in ("feature", "logit"))
    per_target = max(1, round(a.links / n_targets)) if a.links else 4
    by_row = {}
    for i, n in enumerate(nodes):
        by_row.setdefault(n["layer"], []).append(i)
    links = {}
    for t, n in enumerate(nodes):
        if n["kind"] not in ("feature", "logit"):
            continue
        cands = [s for row, ids in by_row.items() if row < n["layer"] for s in ids
                 if nodes[s]["pos"] <= n["pos"] and nodes[s]["kind"] != "logit"]
        if not cands:
            continue
        same = [s for s in cands if nodes[s]["pos"] == n["pos"]]
        k = min(len(cands), per_target + rng.randrange(0, 3))
        picks = set(rng.sample(same, min(len(same), (k + 1) // 2)))
        while len(picks) < k:
            picks.add(rng.choice(cands))
        for s in sorted(picks):
            w = rng.lognormvariate(-1, 1.2) * (1 if rng.random() < 0.7 else -1)
            links[(s, t)] = round(w, 6)

    # influence (circuit-tracer graph.py compute_node_influence + find_threshold)
    N = len(nodes)
    rowsum = [0.0] * N
    for (s, t), w in links.items():
        rowsum[t] += abs(w)
    incoming = {}
    for (s, t), w in links.items():
        incoming.setdefault(t, []).append((s, abs(w) / max(rowsum[t], 1e-10)))
    v = [0.0] * N
    for i, n in enumerate(nodes):
        if n["kind"] == "logit":
            v[i] = n["prob"]
    infl = [0.0] * N
    for _ in range(1000):
        nv = [0.0] * N
        for t, ins in incoming.items():
            if v[t]:
                for s, w in ins:
                    nv[s] += v[t] * w
        if not any(nv):
            break
        infl = [x + y for x, y in zip(infl, nv)]
        v = nv
    order = sorted(range(N), key=lambda i: (-infl[i], i))
    total = sum(infl) or 1.0
    cum, acc = [0.0] * N, 0.0
    for i in order:
        acc += infl[i]
        cum[i] = round(min(1.0, acc / total), 6)

    out_nodes = []
    for i, n in enumerate(nodes):
        layer, pos, kind = n["layer"], n["pos"], n["kind"]
        if kind == "feature":
            o = {"node_id": n["id"], "feature": cantor(layer, n["idx"]), "layer": str(layer), "ctx_idx": pos,
                 "feature_type": "cross layer transcoder" if ct else "mlp neuron",
                 "jsNodeId": f"{layer}_{n['idx']}-0", "clerp": "", "influence": cum[i], "activation": n["act"]}
            if rng.random() < 0.3:
                o["clerp"] = rng.choice(["story opening", "names of girls", "'park' and places",
                                         "past tense verbs", "punctuation, commas", "animals"])
        elif kind == "error":
            o = {"node_id": n["id"], "feature": -1, "layer": str(layer), "ctx_idx": pos,
                 "feature_type": "mlp reconstruction error", "jsNodeId": f"{layer}_{pos}-0", "clerp": "",
                 "influence": cum[i], "activation": None if ct else round(rng.uniform(-2, 2), 6)}
            if ct:
                del o["activation"]
        elif kind == "embedding":
            o = {"node_id": n["id"], "feature": pos, "layer": "E", "ctx_idx": pos, "feature_type": "embedding",
                 "jsNodeId": f"E_{n['idx']}-{pos}", "clerp": f"Emb: \"{pieces[pos]}\"" if not ct else "",
                 "influence": cum[i]}
        else:
            o = {"node_id": n["id"], "feature": n["idx"], "layer": str(L + 1), "ctx_idx": pos,
                 "feature_type": "logit", "jsNodeId": f"L_{n['idx']}-{pos}",
                 "clerp": f"Output \"{n['piece']}\" (p={n['prob']:.3f})", "token_prob": n["prob"],
                 "is_target_logit": n["target"]}
            if not ct:
                o["influence"] = cum[i]
                o["activation"] = round(rng.uniform(2, 9), 6)
        if ct:
            o.setdefault("token_prob", 0.0)
            o.setdefault("is_target_logit", False)
            o["run_idx"] = 0
            o["reverse_ctx_idx"] = 0
        out_nodes.append(o)
    if ct:
        # labels a viewer must show as text, never as markup
        feats = [o for o in out_nodes if o["feature_type"] == "cross layer transcoder"]
        feats[0]["clerp"] = "</script><script>window.__pwned=1</script> & <b>bold</b> <!-- x"
        feats[1]["clerp"] = "caf\u00e9 \u2028 \U0001F600 \"quoted\""

    out_links = [{"source": nodes[s]["id"], "target": nodes[t]["id"], "weight": w}
                 for (s, t), w in sorted(links.items())]
    prompt = "".join(pieces[1:])
    meta = {"slug": f"synthetic-{a.style}-{a.seed}", "scan": "stories260K" if not ct else "toy-clt",
            "prompt_tokens": pieces, "prompt": prompt, "node_threshold": a.node_threshold,
            "schema_version": 1}
    if ct:
        meta["transcoder_list"] = []
        meta["info"] = {"creator_name": "gen_graph.py", "generator": {"name": "circuit-tracer (imitated)"}}
        meta["pruning_settings"] = {"node_threshold": a.node_threshold, "edge_threshold": 0.98}
    else:
        meta["attrgraph"] = {"method": "decomposition", "basis": "neurons", "replacement_score": 0.71,
                             "completeness_score": 0.93, "completeness_score_units_only": 0.88,
                             "n_nodes_total": N, "n_units_expanded": a.features, "timings": {}}
    qp = {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""}
    if ct:
        feats = sorted((o for o in out_nodes if o["feature_type"] == "cross layer transcoder"),
                       key=lambda o: -o["influence"])  # the least influential: hidden by default
        qp["pinnedIds"] = [feats[0]["node_id"], feats[1]["node_id"]]
        qp["supernodes"] = [["late features", feats[0]["node_id"], feats[1]["node_id"]]]
        qp["clickedId"] = feats[2]["node_id"]
    graph = {"metadata": meta, "qParams": qp, "nodes": out_nodes, "links": out_links}
    text = json.dumps(graph, indent=None if a.links else 1, ensure_ascii=False) + "\n"
    if a.output == "-":
        sys.stdout.write(text)
    else:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
