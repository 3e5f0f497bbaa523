/* attrgraph viewer: draws an attribution graph (the viewer schema of DESIGN.md section 4, which
 * is also circuit-tracer's and Neuronpedia's) on a canvas. No network, no server, no libraries.
 *
 * Display rule (the pruning sliders, documented in the help box and used by the browser test):
 *  - a node is shown when its kind is embedding or logit, or it is pinned, or it is the clicked
 *    node, or it has no numeric `influence`, or influence <= the node slider (default:
 *    metadata.node_threshold when it is a number in [0, 1], else 1);
 *  - a link is shown when both its ends are shown and |weight| >= the weight slider (default 0).
 * window.agViewer is a small hook for tests and scripting (counts, sliders, selection, state).
 */
(function () {
  'use strict';

  // ---- kinds, colours ------------------------------------------------------------------------
  const KINDS = {
    embedding: { name: 'embedding', color: '#64748b', shape: 'square' },
    neuron: { name: 'MLP neuron', color: '#7c3aed', shape: 'circle' },
    transcoder: { name: 'transcoder feature', color: '#0891b2', shape: 'circle' },
    attention: { name: 'attention feature', color: '#0d9488', shape: 'circle' },
    error: { name: 'error', color: '#9ca3af', shape: 'diamond' },
    bias: { name: 'bias', color: '#a8a29e', shape: 'diamond' },
    logit: { name: 'logit', color: '#ea8c00', shape: 'triangle' },
    other: { name: 'other', color: '#475569', shape: 'circle' }
  };
  const KIND_ORDER = ['embedding', 'neuron', 'transcoder', 'attention', 'bias', 'other', 'error', 'logit'];
  const POS_COLOR = '#2f6fdb';
  const NEG_COLOR = '#d9480f';
  const HL_COLOR = '#f5b400';
  const ACCENT = '#2563eb';
  const SN_COLORS = ['#e11d48', '#16a34a', '#9333ea', '#ea580c', '#0284c7', '#ca8a04', '#db2777', '#4d7c0f'];
  const SPACING = 14;            // world units between node centres in a cell
  const AXIS_LEFT = 46;          // screen px of the layer axis
  const AXIS_BOTTOM = 24;        // screen px of the token axis
  const EDGE_CHUNK = 6000;       // links rasterised per frame (the rest in the next frames)
  const PANEL_EDGES = 12;        // strongest inputs/outputs listed in the side panel

  function kindOf(o) {
    const t = String(o.feature_type == null ? '' : o.feature_type).toLowerCase();
    if (t === 'embedding' || t === 'token' || o.layer === 'E') return 'embedding';
    if (t.indexOf('logit') === 0) return 'logit';
    if (t.indexOf('error') >= 0) return 'error';
    if (t.indexOf('neuron') >= 0) return 'neuron';
    if (t.indexOf('lorsa') >= 0 || t.indexOf('attention') >= 0 || t.indexOf('head') >= 0) return 'attention';
    if (t === 'bias') return 'bias';
    if (t.indexOf('transcoder') >= 0 || t === 'clt' || t === 'plt' || t === 'sae' ||
        t.indexOf('feature') >= 0 || t.indexOf('unexplored') >= 0) return 'transcoder';
    return 'other';
  }

  function num(x) {
    const v = (typeof x === 'string' && x.trim() !== '') ? Number(x) : x;
    return (typeof v === 'number' && isFinite(v)) ? v : null;
  }
  function clamp(x, lo, hi) { return x < lo ? lo : (x > hi ? hi : x); }
  function fmt(x) {
    if (x === null || x === undefined) return '—';
    const a = Math.abs(x);
    if (x === 0) return '0';
    if (a >= 10000 || a < 0.001) return x.toExponential(2);
    return String(Number(x.toPrecision(4)));
  }
  function showTok(s) {
    return String(s).replace(/\n/g, '↵').replace(/\r/g, '␍').replace(/\t/g, '⇥');
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  const $ = (id) => document.getElementById(id);

  // ---- state ---------------------------------------------------------------------------------
  const S = {
    raw: null, meta: {}, nodes: [], byId: new Map(), tokens: [], nPos: 0,
    E: 0, src: null, dst: null, w: null, order: null, maxAbs: 0, minAbs: 0,
    rows: [], cols: [], cells: [], totalW: 0, totalH: 0, stretch: 1,
    nodeThreshold: 1, edgeMin: 0, linkType: 'both', clickedId: '', sgPos: '', origQ: {},
    pinned: [], pinnedSet: new Set(), supernodes: [], searchHits: new Set(), searchTokens: new Set(), searchList: [],
    vis: new Uint8Array(0), visNodes: [], visEdges: new Int32Array(0), nVisEdges: 0,
    view: { k: 1, x: 0, y: 0 }, hover: null, interactUntil: 0, rafPending: false, idleTimer: 0,
    problems: [], lastDrawMs: 0, draws: 0, drawn: { nodes: 0, edges: 0, complete: false }, edgeVersion: 0, visHash: 0, title: ''
  };

  const canvas = $('ag-canvas');
  const ctx = canvas.getContext('2d');

  // ---- model ---------------------------------------------------------------------------------
  function parseQ(raw) {
    const q = (raw.qParams && typeof raw.qParams === 'object' && !Array.isArray(raw.qParams)) ? raw.qParams : {};
    let pins = q.pinnedIds;
    if (typeof pins === 'string') pins = pins.split(',');
    pins = Array.isArray(pins) ? pins.filter((x) => typeof x === 'string' && x !== '') : [];
    const seen = new Set();
    pins = pins.filter((x) => (seen.has(x) ? false : (seen.add(x), true)));
    let sns = Array.isArray(q.supernodes) ? q.supernodes : [];
    sns = sns.filter((s) => Array.isArray(s) && s.length >= 2)
      .map((s) => s.map((x) => String(x)));
    const lt = (q.linkType === 'input' || q.linkType === 'output') ? q.linkType : 'both';
    return { q, pins, sns, lt, clicked: typeof q.clickedId === 'string' ? q.clickedId : '',
      sg: typeof q.sg_pos === 'string' ? q.sg_pos : '' };
  }

  function buildModel(raw) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('the file is not a JSON object');
    if (!Array.isArray(raw.nodes)) throw new Error('the graph has no "nodes" array');
    const links = Array.isArray(raw.links) ? raw.links : null;
    if (!links) throw new Error('the graph has no "links" array');
    const meta = (raw.metadata && typeof raw.metadata === 'object') ? raw.metadata : {};
    const problems = [];
    const nodes = [];
    const byId = new Map();
    let dup = 0;
    for (let i = 0; i < raw.nodes.length; i++) {
      const o = raw.nodes[i];
      if (!o || typeof o !== 'object') continue;
      const id = o.node_id != null ? String(o.node_id) : ('#' + i);
      const n = {
        i: nodes.length, id, raw: o, kind: kindOf(o), layerNum: num(o.layer),
        pos: Math.max(0, Math.round(num(o.ctx_idx) || 0)),
        infl: num(o.influence), act: num(o.activation), prob: num(o.token_prob),
        target: o.is_target_logit === true, inE: [], outE: [], x: 0, y: 0, r: 4, row: 0, slot: SPACING, search: ''
      };
      if (byId.has(id)) dup++; else byId.set(id, n);
      nodes.push(n);
    }
    if (dup) problems.push(dup + ' duplicate node id' + (dup > 1 ? 's' : '') + ' (links go to the first)');
    const E0 = links.length;
    const src = new Int32Array(E0), dst = new Int32Array(E0), w = new Float64Array(E0);
    let m = 0, bad = 0, maxAbs = 0, minAbs = Infinity;
    for (let k = 0; k < E0; k++) {
      const l = links[k];
      const s = l ? byId.get(String(l.source)) : undefined;
      const t = l ? byId.get(String(l.target)) : undefined;
      const wt = l ? num(l.weight) : null;
      if (!s || !t || wt === null) { bad++; continue; }
      src[m] = s.i; dst[m] = t.i; w[m] = wt;
      s.outE.push(m); t.inE.push(m);
      const a = Math.abs(wt);
      if (a > maxAbs) maxAbs = a;
      if (a > 0 && a < minAbs) minAbs = a;
      m++;
    }
    if (bad) problems.push(bad + ' link' + (bad > 1 ? 's' : '') + ' with a missing end or weight (skipped)');
    const byAbs = (a, b) => (Math.abs(w[b]) - Math.abs(w[a])) || (a - b);
    const order = new Int32Array(m);
    for (let k = 0; k < m; k++) order[k] = k;
    order.sort(byAbs);
    for (const n of nodes) { n.inE.sort(byAbs); n.outE.sort(byAbs); }
    let tokens = Array.isArray(meta.prompt_tokens) ? meta.prompt_tokens.map((x) => String(x)) : [];
    let nPos = tokens.length;
    for (const n of nodes) nPos = Math.max(nPos, n.pos + 1);
    tokens = tokens.slice();
    for (let p = tokens.length; p < nPos; p++) tokens.push('pos ' + p);
    return { raw, meta, nodes, byId, tokens, nPos, E: m, src: src.subarray(0, m), dst: dst.subarray(0, m),
      w: w.subarray(0, m), order, maxAbs, minAbs: isFinite(minAbs) ? minAbs : 0, problems };
  }

  function featureIndex(n) {
    const m = /^(-?\d+)_(-?\d+)_(\d+)$/.exec(n.id);
    return m ? m[2] : (n.raw.feature != null ? String(n.raw.feature) : '?');
  }
  function layerName(n) {
    if (n.kind === 'embedding') return 'Emb';
    if (n.kind === 'logit') return 'Logit';
    return 'L' + (n.layerNum === null ? String(n.raw.layer) : n.layerNum);
  }
  function nodeName(n) {
    const c = n.raw.clerp;
    if (typeof c === 'string' && c !== '') return c;
    switch (n.kind) {
      case 'embedding': return 'Emb: "' + showTok(S.tokens[n.pos]) + '"';
      case 'logit': return 'Output ' + (n.raw.feature != null ? '#' + n.raw.feature : n.id) +
        (n.prob !== null ? ' (p=' + n.prob.toFixed(3) + ')' : '');
      case 'error': return 'Error ' + layerName(n) + ' @' + n.pos;
      default: return KINDS[n.kind].name + ' ' + layerName(n) + ' #' + featureIndex(n);
    }
  }
  // The label under a node when zoomed in: the clerp, the logit's token, or the unit index.
  function shortName(n) {
    const c = n.raw.clerp;
    if (n.kind === 'embedding') return '';
    if (n.kind === 'logit') {
      const m = typeof c === 'string' ? /"([\s\S]*)"/.exec(c) : null;
      return (m ? '"' + showTok(m[1]) + '"' : '#' + n.raw.feature) + (n.prob !== null ? ' ' + Math.round(100 * n.prob) + '%' : '');
    }
    if (typeof c === 'string' && c !== '') return c;
    if (n.kind === 'error') return 'err';
    return '#' + featureIndex(n);
  }
  // Compact identity for lists: 'L3 #57 @4 "tok"', 'Err L3 @4 "tok"', 'Emb @4 "tok"', 'Logit "tok"'.
  function nodeTag(n) {
    const at = ' @' + n.pos + ' "' + showTok(S.tokens[n.pos]) + '"';
    switch (n.kind) {
      case 'embedding': return 'Emb' + at;
      case 'logit': return 'Logit ' + (shortName(n) || n.id);
      case 'error': return 'Err ' + layerName(n) + at;
      default: return layerName(n) + ' #' + featureIndex(n) + at;
    }
  }
  function listLabel(n) {
    const c = n.raw.clerp;
    return (typeof c === 'string' && c !== '' && n.kind !== 'logit' ? c + ' · ' : '') + nodeTag(n);
  }
  function nodeWhere(n) { return layerName(n) + ' @' + n.pos + ' "' + showTok(S.tokens[n.pos]) + '"'; }
  function radiusOf(n) {
    if (n.kind === 'embedding') return 5;
    if (n.kind === 'logit') return 3.5 + 3 * Math.sqrt(clamp(n.prob === null ? 0.1 : n.prob, 0, 1));
    const q = n.infl === null ? 0.3 : clamp(1 - n.infl, 0, 1);
    return 2.2 + 4.3 * Math.sqrt(q);
  }

  // ---- layout: rows = embeddings, layers, logits (bottom to top); columns = positions -------
  function layout() {
    let minL = Infinity, maxL = -Infinity;
    for (const n of S.nodes) {
      if (n.kind !== 'embedding' && n.kind !== 'logit' && n.layerNum !== null) {
        minL = Math.min(minL, n.layerNum); maxL = Math.max(maxL, n.layerNum);
      }
    }
    if (!isFinite(minL)) { minL = 0; maxL = -1; }
    const nRows = (maxL - minL + 1) + 2;
    const rows = [];
    for (let r = 0; r < nRows; r++) {
      rows.push({ label: r === 0 ? 'Emb' : (r === nRows - 1 ? 'Logit' : 'L' + (minL + r - 1)), h: 0, y: 0 });
    }
    const cells = new Map();
    for (const n of S.nodes) {
      n.row = n.kind === 'embedding' ? 0 : (n.kind === 'logit' ? nRows - 1
        : (n.layerNum === null ? 1 : clamp(Math.round(n.layerNum) - minL + 1, 1, nRows - 2)));
      n.r = radiusOf(n);
      const key = n.row * 1e6 + n.pos;
      let c = cells.get(key);
      if (!c) { c = []; cells.set(key, c); }
      c.push(n);
    }
    const kindRank = {};
    KIND_ORDER.forEach((k, i) => { kindRank[k] = i; });
    const maxInCol = new Array(S.nPos).fill(1);
    for (const c of cells.values()) {
      const p = c[0].pos;
      maxInCol[p] = Math.max(maxInCol[p], c.length);
      c.sort((a, b) => (kindRank[a.kind] - kindRank[b.kind]) ||
        ((a.infl === null ? 2 : a.infl) - (b.infl === null ? 2 : b.infl)) ||
        ((b.prob || 0) - (a.prob || 0)) || (a.id < b.id ? -1 : (a.id > b.id ? 1 : 0)));
    }
    const cols = [];
    let x = 0;
    for (let p = 0; p < S.nPos; p++) {
      const per = Math.max(1, Math.ceil(Math.sqrt(maxInCol[p] * 1.6)));
      const w = Math.max(64, per * SPACING + 18);
      cols.push({ x, w, per });
      x += w;
    }
    const subRows = new Array(nRows).fill(1);
    for (const c of cells.values()) {
      const n0 = c[0];
      subRows[n0.row] = Math.max(subRows[n0.row], Math.ceil(c.length / cols[n0.pos].per));
    }
    for (let r = 0; r < nRows; r++) rows[r].h0 = Math.max(50, subRows[r] * SPACING + 24);
    S.rows = rows; S.cols = cols; S.totalW = x; S.cells = Array.from(cells.values());
    placeRows(1);
  }

  // Vertical placement. `stretch` >= 1 spreads the rows apart (fit() uses it so that a wide
  // graph also fills the window's height); the nodes of a cell keep their spacing.
  function placeRows(stretch) {
    const rows = S.rows, cols = S.cols;
    let y = 0;
    for (let r = rows.length - 1; r >= 0; r--) {   // top row (logits) first in world y
      rows[r].h = rows[r].h0 * stretch;
      rows[r].y = y;
      y += rows[r].h;
    }
    for (const c of S.cells) {
      const n0 = c[0];
      const col = cols[n0.pos], row = rows[n0.row];
      const nSub = Math.ceil(c.length / col.per);
      for (let k = 0; k < c.length; k++) {
        const j = Math.floor(k / col.per), inRow = Math.min(col.per, c.length - j * col.per);
        const kk = k - j * col.per;
        c[k].x = col.x + col.w / 2 + (kk - (inRow - 1) / 2) * SPACING;
        c[k].slot = inRow === 1 ? col.w - 8 : SPACING;
        c[k].y = row.y + row.h / 2 + ((nSub - 1) / 2 - j) * SPACING;
      }
    }
    S.totalH = y;
    S.stretch = stretch;
    S.edgeVersion++;
  }

  function updateSearchText(n) {
    let s = nodeName(n) + ' ' + n.id + ' ' + (n.raw.feature != null ? n.raw.feature : '');
    if (n.kind === 'embedding') s += ' ' + S.tokens[n.pos];
    n.search = s.toLowerCase();
  }

  // ---- visibility (the display rule) ---------------------------------------------------------
  function alwaysShown(n) {
    return n.kind === 'embedding' || n.kind === 'logit' || n.id === S.clickedId || S.pinnedSet.has(n.id);
  }
  function recompute() {
    S.pinnedSet = new Set(S.pinned);
    const th = S.nodeThreshold;
    const vis = S.vis;
    const visNodes = [];
    for (const n of S.nodes) {
      const on = alwaysShown(n) || n.infl === null || n.infl <= th;
      vis[n.i] = on ? 1 : 0;
      if (on) visNodes.push(n);
    }
    let m = 0, h = 0, nThick = 0;
    const thickAbs = S.maxAbs * Math.pow((1.05 - 0.35) / 3.65, 2);
    const ve = S.visEdges, o = S.order, src = S.src, dst = S.dst, w = S.w, min = S.edgeMin;
    for (let k = 0; k < o.length; k++) {
      const e = o[k];
      if (vis[src[e]] && vis[dst[e]] && Math.abs(w[e]) >= min) {
        ve[m++] = e;
        h = (Math.imul(h, 31) + e) | 0;
        if (Math.abs(w[e]) > thickAbs) nThick++;
      }
    }
    S.nThick = nThick;
    S.visNodes = visNodes;
    if (m !== S.nVisEdges || h !== S.visHash) S.edgeVersion++;  // the link layer is redrawn
    S.nVisEdges = m;
    S.visHash = h;
    updateStatus();
    requestDraw();
  }

  // ---- drawing ---------------------------------------------------------------------------------
  function requestDraw() {
    if (S.rafPending) return;
    S.rafPending = true;
    requestAnimationFrame(() => { S.rafPending = false; draw(); });
  }
  function interacting() {
    S.interactUntil = performance.now() + 150;
    clearTimeout(S.idleTimer);
    S.idleTimer = setTimeout(requestDraw, 170);
  }

  function shapePath(c, kind, x, y, r) {
    switch (KINDS[kind].shape) {
      case 'square': c.rect(x - r, y - r, 2 * r, 2 * r); break;
      case 'diamond': c.moveTo(x, y - r * 1.25); c.lineTo(x + r * 1.25, y); c.lineTo(x, y + r * 1.25);
        c.lineTo(x - r * 1.25, y); c.closePath(); break;
      case 'triangle': c.moveTo(x, y - r * 1.3); c.lineTo(x + r * 1.2, y + r * 0.8);
        c.lineTo(x - r * 1.2, y + r * 0.8); c.closePath(); break;
      default: c.moveTo(x + r, y); c.arc(x, y, r, 0, 2 * Math.PI);
    }
  }

  function linkedEdges(n) {
    if (!n) return null;
    const set = new Set();
    if (S.linkType !== 'output') for (const e of n.inE) set.add(e);
    if (S.linkType !== 'input') for (const e of n.outE) set.add(e);
    return set;
  }

  // The links live in an offscreen layer drawn in chunks (strongest first, EDGE_CHUNK per
  // frame) so a graph with 50000 links never blocks the page for long; while the view moves,
  // the last complete layer is shown moved and scaled, and it is redrawn once the view rests.
  // Widths <= 1 px are hairlines (cheap); wider strokes go in short paths (a long path of
  // thick segments is very slow to rasterise).
  const layers = { front: null, back: null, spare: [] };
  function newLayer(key, view, W, H, dpr) {
    const c = layers.spare.pop() || document.createElement('canvas');
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
      c.width = Math.round(W * dpr); c.height = Math.round(H * dpr);
    }
    const x = c.getContext('2d');
    x.setTransform(1, 0, 0, 1, 0, 0);
    x.clearRect(0, 0, c.width, c.height);
    return { canvas: c, ctx: x, key, view: { k: view.k, x: view.x, y: view.y }, W, H, dpr, next: 0, done: false, drawnEdges: 0 };
  }
  function dropLayer(L) { if (L) layers.spare.push(L.canvas); }
  function edgeWidth(w, maxAbs) { return 0.35 + 3.65 * Math.sqrt(Math.abs(w) / maxAbs); }
  // Everything is drawn in device pixels with an identity transform: Skia strokes a path
  // under a scaling transform by outlining it, which for thousands of segments takes
  // seconds, while identity-transform strokes of <= 1 px use its fast hairline path.
  function renderEdges(L, budget) {
    const c = L.ctx, k = L.view.k * L.dpr, tx = L.view.x * L.dpr, ty = L.view.y * L.dpr;
    const W = L.W * L.dpr, H = L.H * L.dpr, x0 = (AXIS_LEFT - 20) * L.dpr;
    const nodes = S.nodes, src = S.src, dst = S.dst, w = S.w, ve = S.visEdges;
    const maxAbs = S.maxAbs || 1;
    const end = Math.min(S.nVisEdges, L.next + budget);
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.lineCap = 'butt';
    const thinAlpha = clamp(Math.sqrt(2500 / Math.max(1, S.nVisEdges)), 0.06, 0.8);
    c.globalAlpha = thinAlpha;
    const thin = [[], []], thick = [];
    for (let q = L.next; q < end; q++) {
      const e = ve[q];
      const a = nodes[src[e]], b = nodes[dst[e]];
      const ax = a.x * k + tx, ay = a.y * k + ty, bx = b.x * k + tx, by = b.y * k + ty;
      if ((ax < x0 && bx < x0) || (ax > W && bx > W) || (ay < 0 && by < 0) || (ay > H && by > H)) continue;
      L.drawnEdges++;
      if (edgeWidth(w[e], maxAbs) * L.dpr <= 1.05) thin[w[e] < 0 ? 1 : 0].push(ax, ay, bx, by);
      else thick.push(e, ax, ay, bx, by);
    }
    c.lineWidth = 1;
    for (let sgn = 0; sgn < 2; sgn++) {
      const t = thin[sgn];
      if (!t.length) continue;
      c.strokeStyle = sgn ? NEG_COLOR : POS_COLOR;
      c.beginPath();
      for (let i = 0; i < t.length; i += 4) { c.moveTo(t[i], t[i + 1]); c.lineTo(t[i + 2], t[i + 3]); }
      c.stroke();
    }
    // thick links, weakest first so the strongest end on top, in short paths
    c.lineCap = 'round';
    c.globalAlpha = clamp(Math.sqrt(2500 / Math.max(1, S.nThick)), 0.3, 0.85);
    for (let i = thick.length - 5; i >= 0;) {
      const e0 = thick[i];
      const neg = w[e0] < 0, px = Math.round(edgeWidth(w[e0], maxAbs) * L.dpr * 2) / 2;
      c.strokeStyle = neg ? NEG_COLOR : POS_COLOR;
      c.lineWidth = px;
      c.beginPath();
      for (let n = 0; i >= 0 && n < 24; n++, i -= 5) {
        const e = thick[i];
        if ((w[e] < 0) !== neg || Math.round(edgeWidth(w[e], maxAbs) * L.dpr * 2) / 2 !== px) break;
        c.moveTo(thick[i + 1], thick[i + 2]); c.lineTo(thick[i + 3], thick[i + 4]);
      }
      c.stroke();
    }
    c.globalAlpha = 1;
    L.next = end;
    if (end >= S.nVisEdges) L.done = true;
  }

  function draw() {
    const t0 = performance.now();
    const W = canvas.clientWidth, H = canvas.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
      canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    if (!S.raw) { S.lastDrawMs = performance.now() - t0; return; }
    const k = S.view.k, tx = S.view.x, ty = S.view.y;
    const X = (x) => x * k + tx, Y = (y) => y * k + ty;   // world -> CSS pixels

    // row bands and column rules
    for (let r = 0; r < S.rows.length; r++) {
      const row = S.rows[r];
      ctx.fillStyle = r === 0 || r === S.rows.length - 1 ? '#f1f3f6' : (r % 2 ? '#ffffff' : '#f7f8fa');
      ctx.fillRect(X(0), Y(row.y), S.totalW * k, row.h * k);
    }
    ctx.fillStyle = '#e6e9ee';
    for (const c of S.cols) ctx.fillRect(Math.round(X(c.x)), Y(0), 1, S.totalH * k);
    ctx.fillRect(Math.round(X(S.totalW)), Y(0), 1, S.totalH * k);

    // links: the layer for the current view and link set, drawn in chunks
    const key = S.edgeVersion + '|' + W + 'x' + H + '@' + dpr + '|' + k + ',' + tx + ',' + ty;
    const moving = performance.now() < S.interactUntil;
    if (layers.back && layers.back.key !== key && !moving) { dropLayer(layers.back); layers.back = null; }
    if (!moving && (!layers.front || layers.front.key !== key) && !layers.back) {
      layers.back = newLayer(key, S.view, W, H, dpr);
    }
    if (layers.back && !layers.back.done && (!moving || !layers.front)) renderEdges(layers.back, EDGE_CHUNK);
    if (layers.back && layers.back.done) {
      dropLayer(layers.front);
      layers.front = layers.back;
      layers.back = null;
    }
    const show = layers.front || layers.back;
    if (show) {
      const r = k / show.view.k;
      ctx.setTransform(r, 0, 0, r, dpr * (tx - show.view.x * r), dpr * (ty - show.view.y * r));
      ctx.drawImage(show.canvas, 0, 0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    const complete = !!(layers.front && layers.front.key === key && !layers.back);
    if (layers.back) requestDraw();

    // the clicked node: veil the rest, draw its links on top
    const clicked = S.clickedId ? S.byId.get(S.clickedId) : null;
    const hl = linkedEdges(clicked);
    const nodes = S.nodes, src = S.src, dst = S.dst, w = S.w;
    const maxAbs = S.maxAbs || 1;
    if (hl) {
      ctx.fillStyle = 'rgba(255,255,255,0.72)';
      ctx.fillRect(0, 0, W, H);
      ctx.lineCap = 'round';
      ctx.globalAlpha = 0.9;
      const list = [];
      for (const e of hl) if (S.vis[src[e]] && S.vis[dst[e]] && Math.abs(w[e]) >= S.edgeMin) list.push(e);
      list.sort((a, b) => Math.abs(w[a]) - Math.abs(w[b]));
      for (const e of list) {
        const a = nodes[src[e]], c = nodes[dst[e]];
        ctx.strokeStyle = w[e] < 0 ? NEG_COLOR : POS_COLOR;
        ctx.lineWidth = edgeWidth(w[e], maxAbs) + 0.8;
        ctx.beginPath(); ctx.moveTo(X(a.x), Y(a.y)); ctx.lineTo(X(c.x), Y(c.y)); ctx.stroke();
      }
      ctx.globalAlpha = 1;
    }

    // supernode connectors under the nodes
    S.supernodes.forEach((sn, i) => {
      const members = sn.slice(1).map((id) => S.byId.get(id)).filter((n) => n && S.vis[n.i]);
      if (!members.length) return;
      members.sort((a, b) => a.x - b.x || a.y - b.y);
      ctx.strokeStyle = SN_COLORS[i % SN_COLORS.length];
      ctx.globalAlpha = 0.35;
      ctx.lineWidth = 7;
      ctx.lineJoin = 'round'; ctx.lineCap = 'round';
      ctx.beginPath();
      ctx.moveTo(X(members[0].x), Y(members[0].y));
      for (const n of members) ctx.lineTo(X(n.x), Y(n.y));
      if (members.length === 1) ctx.lineTo(X(members[0].x) + 0.01, Y(members[0].y));
      ctx.stroke();
      ctx.globalAlpha = 1;
    });

    // nodes, batched by kind (fills); outlines in short paths
    const rad = (n) => Math.max(n.r * k, 1.3);
    const byKind = {};
    let drawnNodes = 0;
    const inView = [];
    for (const n of S.visNodes) {
      const r = rad(n), sx = X(n.x), sy = Y(n.y);
      if (sx + r < AXIS_LEFT - 20 || sx - r > W || sy + r < 0 || sy - r > H) continue;
      drawnNodes++;
      inView.push(n);
      (byKind[n.kind] || (byKind[n.kind] = [])).push(n);
    }
    const outline = k * 4 > 3;
    for (const kind of KIND_ORDER) {
      const list = byKind[kind];
      if (!list) continue;
      ctx.fillStyle = KINDS[kind].color;
      ctx.beginPath();
      for (const n of list) shapePath(ctx, kind, X(n.x), Y(n.y), rad(n));
      ctx.fill();
      if (outline) {
        ctx.strokeStyle = '#ffffff';
        ctx.lineWidth = 0.8;
        for (let i = 0; i < list.length; i += 64) {
          ctx.beginPath();
          for (let j = i; j < Math.min(list.length, i + 64); j++) shapePath(ctx, kind, X(list[j].x), Y(list[j].y), rad(list[j]));
          ctx.stroke();
        }
      }
    }
    const ring = (n, color, width, gap) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.arc(X(n.x), Y(n.y), rad(n) + gap, 0, 2 * Math.PI);
      ctx.stroke();
    };
    for (const n of inView) {
      if (n.kind === 'logit' && n.target) ring(n, '#7c2d12', 1.6, 2);
      if (S.searchHits.has(n.i)) ring(n, HL_COLOR, 3, 3);
      if (S.pinnedSet.has(n.id)) ring(n, '#111827', 1.6, 1.5);
    }
    if (clicked && S.vis[clicked.i]) ring(clicked, ACCENT, 2.6, 3.5);
    if (S.hover && S.vis[S.hover.i] && S.hover !== clicked) ring(S.hover, '#111827', 1, 3);

    // labels when zoomed in enough
    if (k * SPACING >= 24) {
      ctx.font = '10px system-ui, sans-serif';
      ctx.fillStyle = '#374151';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      let budget = 600;
      for (const n of inView) {
        if (!budget--) break;
        let t = shortName(n);
        if (!t) continue;
        const maxChars = Math.max(3, Math.floor(n.slot * k / 6));
        if (t.length > maxChars) t = t.slice(0, maxChars - 1) + '…';
        ctx.fillText(t, X(n.x), Y(n.y) + n.r * k + 2);
      }
    }
    // supernode names
    ctx.font = '600 11px system-ui, sans-serif';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'bottom';
    S.supernodes.forEach((sn, i) => {
      const members = sn.slice(1).map((id) => S.byId.get(id)).filter((n) => n && S.vis[n.i]);
      if (!members.length) return;
      let top = members[0];
      for (const n of members) if (n.y < top.y) top = n;
      ctx.fillStyle = SN_COLORS[i % SN_COLORS.length];
      ctx.fillText(sn[0], X(top.x) + 6, Y(top.y) - top.r * k - 3);
    });

    drawAxes(W, H);
    S.drawn = { nodes: drawnNodes, edges: show ? show.drawnEdges : 0, complete };
    S.draws++;
    S.lastDrawMs = performance.now() - t0;
    updateStatus();
  }

  function drawAxes(W, H) {
    const k = S.view.k, tx = S.view.x, ty = S.view.y;
    ctx.fillStyle = 'rgba(251,251,252,0.92)';
    ctx.fillRect(0, 0, AXIS_LEFT, H);
    ctx.fillRect(0, H - AXIS_BOTTOM, W, AXIS_BOTTOM);
    ctx.strokeStyle = '#d5d9e0';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(AXIS_LEFT + 0.5, 0); ctx.lineTo(AXIS_LEFT + 0.5, H - AXIS_BOTTOM);
    ctx.lineTo(W, H - AXIS_BOTTOM + 0.5);
    ctx.stroke();
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#4b5563';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const step = Math.max(1, Math.ceil(13 / Math.max(1, S.rows.length ? S.rows[1 % S.rows.length].h * k : 13)));
    S.rows.forEach((row, r) => {
      const y = (row.y + row.h / 2) * k + ty;
      if (y < 0 || y > H - AXIS_BOTTOM) return;
      if (r !== 0 && r !== S.rows.length - 1 && (r - 1) % step) return;
      ctx.fillText(row.label, AXIS_LEFT - 6, y);
    });
    ctx.save();
    ctx.beginPath();
    ctx.rect(AXIS_LEFT, H - AXIS_BOTTOM, W - AXIS_LEFT, AXIS_BOTTOM);
    ctx.clip();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let p = 0; p < S.cols.length; p++) {
      const c = S.cols[p];
      const cx = (c.x + c.w / 2) * k + tx, cw = c.w * k;
      if (cx + cw / 2 < AXIS_LEFT || cx - cw / 2 > W) continue;
      let t = showTok(S.tokens[p]);
      const maxChars = Math.floor((cw - 4) / 6.5);
      if (maxChars < 1) continue;
      if (t.length > maxChars) t = t.slice(0, Math.max(1, maxChars - 1)) + '…';
      if (S.searchTokens.has(p)) {
        ctx.fillStyle = 'rgba(245,180,0,0.35)';
        ctx.fillRect(cx - cw / 2 + 1, H - AXIS_BOTTOM + 2, cw - 2, AXIS_BOTTOM - 4);
      }
      ctx.fillStyle = '#1f2430';
      ctx.fillText(t, cx, H - AXIS_BOTTOM / 2);
    }
    ctx.restore();
  }

  // ---- view: fit, zoom, pan --------------------------------------------------------------------
  function fit() {
    const W = canvas.clientWidth, H = canvas.clientHeight;
    if (!S.raw || W <= 0 || H <= 0) return;
    const aw = W - AXIS_LEFT - 16, ah = H - AXIS_BOTTOM - 16;
    let h0 = 0;
    for (const r of S.rows) h0 += r.h0;
    const stretch = clamp((S.totalW * ah / aw) / Math.max(1, h0), 1, 3);
    if (Math.abs(stretch - S.stretch) > 1e-9) placeRows(stretch);
    const k = clamp(Math.min(aw / Math.max(1, S.totalW), ah / Math.max(1, S.totalH)), 0.01, 6);
    S.view.k = k;
    S.view.x = AXIS_LEFT + 8 + (aw - S.totalW * k) / 2;
    S.view.y = 8 + (ah - S.totalH * k) / 2;
    S.fitK = k;
    requestDraw();
  }
  function zoomAt(px, py, f) {
    const k0 = S.view.k;
    const k1 = clamp(k0 * f, (S.fitK || k0) * 0.3, 60);
    S.view.x = px - (px - S.view.x) * (k1 / k0);
    S.view.y = py - (py - S.view.y) * (k1 / k0);
    S.view.k = k1;
    interacting();
    requestDraw();
  }
  function centerOn(n) {
    const W = canvas.clientWidth, H = canvas.clientHeight;
    const sx = n.x * S.view.k + S.view.x, sy = n.y * S.view.k + S.view.y;
    if (sx < AXIS_LEFT + 20 || sx > W - 20 || sy < 20 || sy > H - AXIS_BOTTOM - 20) {
      S.view.x += (AXIS_LEFT + W) / 2 - sx;
      S.view.y += (H - AXIS_BOTTOM) / 2 - sy;
    }
  }

  function nodeAt(px, py) {
    const k = S.view.k, tx = S.view.x, ty = S.view.y;
    let best = null, bestD = Infinity;
    for (const n of S.visNodes) {
      const rr = Math.max(n.r * k, 3) + 3;
      const dx = n.x * k + tx - px, dy = n.y * k + ty - py;
      if (dx > rr || dx < -rr || dy > rr || dy < -rr) continue;
      const d = dx * dx + dy * dy;
      if (d <= rr * rr && d < bestD) { best = n; bestD = d; }
    }
    return best;
  }

  // ---- selection, pins, supernodes ---------------------------------------------------------------
  function syncQ() {
    if (!S.raw) return;
    const q = Object.assign({}, S.origQ);
    q.pinnedIds = S.pinned.slice();
    q.supernodes = S.supernodes.map((s) => s.slice());
    q.linkType = S.linkType;
    q.clickedId = S.clickedId;
    q.sg_pos = S.sgPos;
    S.raw.qParams = q;
  }
  function select(id, opts) {
    const n = id ? S.byId.get(id) : null;
    S.clickedId = n ? n.id : '';
    syncQ();
    recompute();
    if (n && opts && opts.center) centerOn(n);
    renderPanel();
    requestDraw();
  }
  function setPinned(id, on) {
    if (!S.byId.has(id)) return;
    const i = S.pinned.indexOf(id);
    if (on && i < 0) S.pinned.push(id);
    if (!on && i >= 0) {
      S.pinned.splice(i, 1);
      S.supernodes = S.supernodes.map((s) => s.filter((x, j) => j === 0 || x !== id)).filter((s) => s.length >= 2);
    }
    syncQ();
    recompute();
    renderPanel();
    renderSubgraph();
  }
  function group(name, ids) {
    ids = ids.filter((id) => S.byId.has(id));
    if (!ids.length) return false;
    for (const id of ids) if (S.pinned.indexOf(id) < 0) S.pinned.push(id);
    const taken = new Set(ids);
    S.supernodes = S.supernodes.map((s) => s.filter((x, j) => j === 0 || !taken.has(x))).filter((s) => s.length >= 2);
    S.supernodes.push([name || ('supernode ' + (S.supernodes.length + 1))].concat(ids));
    syncQ();
    recompute();
    renderSubgraph();
    return true;
  }

  // ---- side panel ----------------------------------------------------------------------------------
  function edgeList(title, n, edges, other) {
    const frag = document.createDocumentFragment();
    frag.appendChild(el('h4', null, title + ' (' + edges.length + ')'));
    const box = el('div', 'ag-edges');
    box.dataset.kind = title.toLowerCase().indexOf('input') === 0 ? 'in' : 'out';
    const top = edges.slice(0, PANEL_EDGES);
    const maxA = top.length ? Math.abs(S.w[top[0]]) || 1 : 1;
    for (const e of top) {
      const nb = S.nodes[other[e]];
      const row = el('div', 'ag-edge-row' + (S.vis[nb.i] ? '' : ' ag-hidden-node'));
      row.setAttribute('role', 'button');
      row.tabIndex = 0;
      row.dataset.nodeId = nb.id;
      const bar = el('div', 'ag-bar-cell');
      bar.style.width = Math.max(3, Math.round(56 * Math.abs(S.w[e]) / maxA)) + 'px';
      bar.style.background = S.w[e] < 0 ? NEG_COLOR : POS_COLOR;
      row.appendChild(bar);
      row.appendChild(el('span', 'ag-w', fmt(S.w[e])));
      const label = el('span', 'ag-nb', listLabel(nb) + (S.vis[nb.i] ? '' : ' (hidden)'));
      row.title = nb.id;
      row.appendChild(label);
      const go = () => select(nb.id, { center: true });
      row.addEventListener('click', go);
      row.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); go(); } });
      box.appendChild(row);
    }
    if (edges.length > top.length) box.appendChild(el('div', 'ag-more', '… ' + (edges.length - top.length) + ' more'));
    frag.appendChild(box);
    return frag;
  }

  function renderPanel() {
    const p = $('ag-panel');
    p.textContent = '';
    const n = S.clickedId ? S.byId.get(S.clickedId) : null;
    if (!n) {
      delete p.dataset.nodeId;
      p.appendChild(el('div', 'ag-empty', S.raw ? 'Click a node to see its label, activation, influence and strongest links. Shift-click pins a node.' : 'No graph loaded: use Open… or drop a graph JSON file here.'));
      return;
    }
    p.dataset.nodeId = n.id;
    p.appendChild(el('div', 'ag-node-title', nodeName(n)));
    const chip = el('span', 'ag-kind', String(n.raw.feature_type || KINDS[n.kind].name));
    chip.style.background = KINDS[n.kind].color;
    p.appendChild(chip);
    const edit = el('input', 'ag-label-edit');
    edit.type = 'text';
    edit.placeholder = 'label (clerp)';
    edit.value = typeof n.raw.clerp === 'string' ? n.raw.clerp : '';
    edit.setAttribute('aria-label', 'Label');
    edit.addEventListener('change', () => {
      n.raw.clerp = edit.value;
      updateSearchText(n);
      p.querySelector('.ag-node-title').textContent = nodeName(n);
      renderSubgraph();
      requestDraw();
    });
    p.appendChild(edit);
    const t = el('table', 'ag-props');
    const prop = (k, v) => {
      const tr = el('tr');
      tr.appendChild(el('td', null, k));
      const td = el('td', null, v);
      td.dataset.prop = k;
      tr.appendChild(td);
      t.appendChild(tr);
    };
    prop('node_id', n.id);
    prop('layer', String(n.raw.layer));
    prop('position', n.pos + ' "' + showTok(S.tokens[n.pos]) + '"');
    if (n.raw.feature != null) prop('feature', String(n.raw.feature));
    prop('activation', fmt(n.act));
    prop('influence', fmt(n.infl));
    if (n.kind === 'logit') {
      prop('token_prob', fmt(n.prob));
      prop('target logit', n.target ? 'yes' : 'no');
    }
    prop('shown', S.vis[n.i] ? (alwaysShown(n) && !(n.infl !== null && n.infl <= S.nodeThreshold) && n.kind !== 'embedding' && n.kind !== 'logit' ? 'yes (pinned or clicked)' : 'yes') : 'no');
    p.appendChild(t);
    const row = el('div', 'ag-row');
    const pinned = S.pinned.indexOf(n.id) >= 0;
    const pb = el('button', null, pinned ? 'Unpin' : 'Pin');
    pb.type = 'button';
    pb.id = 'ag-pin-toggle';
    pb.addEventListener('click', () => setPinned(n.id, !pinned));
    row.appendChild(pb);
    const cb = el('button', null, 'Center');
    cb.type = 'button';
    cb.addEventListener('click', () => { centerOn(n); requestDraw(); });
    row.appendChild(cb);
    p.appendChild(row);
    p.appendChild(edgeList('Inputs', n, n.inE, S.src));
    p.appendChild(edgeList('Outputs', n, n.outE, S.dst));
  }

  function renderSubgraph() {
    const box = $('ag-pinned');
    box.textContent = '';
    if (!S.pinned.length) box.appendChild(el('div', 'ag-empty', 'No pinned nodes.'));
    const inSn = new Map();
    S.supernodes.forEach((s, i) => s.slice(1).forEach((id) => inSn.set(id, i)));
    for (const id of S.pinned) {
      const n = S.byId.get(id);
      if (!n) continue;
      const row = el('div', 'ag-pin-row');
      row.dataset.nodeId = id;
      const chk = el('input');
      chk.type = 'checkbox';
      chk.className = 'ag-pin-check';
      chk.value = id;
      chk.setAttribute('aria-label', 'select ' + id + ' for grouping');
      row.appendChild(chk);
      const sw = el('span', 'ag-swatch');
      sw.style.background = inSn.has(id) ? SN_COLORS[inSn.get(id) % SN_COLORS.length] : KINDS[n.kind].color;
      sw.style.flex = '0 0 10px';
      row.appendChild(sw);
      const name = el('span', null, listLabel(n));
      name.title = id;
      name.addEventListener('click', () => select(id, { center: true }));
      row.appendChild(name);
      const x = el('button', null, '×');
      x.type = 'button';
      x.title = 'Unpin';
      x.addEventListener('click', () => setPinned(id, false));
      row.appendChild(x);
      box.appendChild(row);
    }
    const sbox = $('ag-supernodes');
    sbox.textContent = '';
    S.supernodes.forEach((s, i) => {
      const row = el('div', 'ag-sn-row');
      const sw = el('span', 'ag-swatch');
      sw.style.background = SN_COLORS[i % SN_COLORS.length];
      sw.style.flex = '0 0 10px';
      row.appendChild(sw);
      const name = el('span', null, s[0] + ' (' + (s.length - 1) + ')');
      name.title = s.slice(1).join(', ');
      name.addEventListener('click', () => select(s[1], { center: true }));
      row.appendChild(name);
      const u = el('button', null, 'Ungroup');
      u.type = 'button';
      u.addEventListener('click', () => {
        S.supernodes.splice(i, 1);
        syncQ();
        renderSubgraph();
        requestDraw();
      });
      row.appendChild(u);
      sbox.appendChild(row);
    });
  }

  // ---- search ----------------------------------------------------------------------------------------
  function runSearch() {
    const q = $('ag-search').value.trim().toLowerCase();
    S.searchHits = new Set();
    S.searchTokens = new Set();
    S.searchList = [];
    const res = $('ag-search-results');
    res.textContent = '';
    if (q) {
      S.tokens.forEach((t, p) => { if (t.toLowerCase().indexOf(q) >= 0) S.searchTokens.add(p); });
      for (const n of S.nodes) {
        if (n.search.indexOf(q) >= 0 || n.id.toLowerCase() === q ||
            (n.kind === 'embedding' && S.searchTokens.has(n.pos))) {
          S.searchHits.add(n.i);
          S.searchList.push(n);
        }
      }
      S.searchList.sort((a, b) => (S.vis[b.i] - S.vis[a.i]) || ((a.infl === null ? 2 : a.infl) - (b.infl === null ? 2 : b.infl)) || (a.i - b.i));
      S.searchList.slice(0, 100).forEach((n, j) => {
        const d = el('div', j === 0 ? 'ag-active' : null, listLabel(n) + (S.vis[n.i] ? '' : ' (hidden)'));
        d.dataset.nodeId = n.id;
        d.addEventListener('mousedown', (ev) => { ev.preventDefault(); select(n.id, { center: true }); res.hidden = true; });
        res.appendChild(d);
      });
    }
    $('ag-search-count').textContent = q ? String(S.searchList.length) : '';
    res.hidden = !(q && S.searchList.length);
    requestDraw();
  }

  // ---- status, legend, header ------------------------------------------------------------------------
  function updateStatus() {
    const st = $('ag-status');
    if (!S.raw) { st.textContent = 'No graph loaded.'; return; }
    const parts = [
      'Showing ' + S.visNodes.length + ' of ' + S.nodes.length + ' nodes',
      S.nVisEdges + ' of ' + S.E + ' links',
      'influence ≤ ' + S.nodeThreshold.toFixed(3),
      '|w| ≥ ' + fmt(S.edgeMin),
      'zoom ' + S.view.k.toFixed(2),
      'draw ' + S.lastDrawMs.toFixed(0) + ' ms' + (S.drawn.complete ? '' : ' (drawing links…)')
    ];
    if (S.pinned.length) parts.push(S.pinned.length + ' pinned');
    st.textContent = parts.join(' · ');
  }
  function renderLegend() {
    const lg = $('ag-legend');
    lg.textContent = '';
    const present = new Set(S.nodes.map((n) => n.kind));
    for (const kind of KIND_ORDER) {
      if (!present.has(kind)) continue;
      const s = el('span');
      const i = el('i');
      i.style.background = KINDS[kind].color;
      if (KINDS[kind].shape === 'square') i.style.borderRadius = '2px';
      if (KINDS[kind].shape === 'diamond') { i.style.transform = 'rotate(45deg) scale(.8)'; i.style.borderRadius = '1px'; }
      s.appendChild(i);
      s.appendChild(document.createTextNode(KINDS[kind].name));
      lg.appendChild(s);
    }
    for (const [name, c] of [['positive link', POS_COLOR], ['negative link', NEG_COLOR]]) {
      const s = el('span');
      const i = el('i', 'ag-edge');
      i.style.background = c;
      s.appendChild(i);
      s.appendChild(document.createTextNode(name));
      lg.appendChild(s);
    }
  }
  function renderHeader() {
    const m = S.meta;
    const prompt = typeof m.prompt === 'string' ? m.prompt : S.tokens.join('');
    $('ag-prompt').textContent = showTok(prompt);
    $('ag-prompt').title = prompt;
    const bits = [];
    if (m.scan != null && typeof m.scan !== 'object') bits.push(String(m.scan));
    if (m.slug) bits.push(String(m.slug));
    const ag = m.attrgraph && typeof m.attrgraph === 'object' ? m.attrgraph : null;
    if (ag) {
      if (ag.method) bits.push(String(ag.method) + (ag.basis ? '/' + ag.basis : ''));
      if (num(ag.replacement_score) !== null) bits.push('replacement ' + num(ag.replacement_score).toFixed(3));
      if (num(ag.completeness_score) !== null) bits.push('completeness ' + num(ag.completeness_score).toFixed(3));
    }
    $('ag-meta').textContent = bits.join(' · ');
  }
  function notice(text) {
    const n = $('ag-notice');
    n.textContent = text || '';
    n.hidden = !text;
  }

  // ---- sliders ------------------------------------------------------------------------------------
  // The weight slider is logarithmic: position 0 = every link; 1..1000 maps to [minAbs, maxAbs].
  function edgeFromSlider(v) {
    if (v <= 0 || !(S.maxAbs > 0)) return 0;
    const lo = Math.log(S.minAbs > 0 ? S.minAbs : S.maxAbs * 1e-6), hi = Math.log(S.maxAbs);
    return Math.exp(lo + (hi - lo) * v / 1000);
  }
  function sliderFromEdge(x) {
    if (!(x > 0) || !(S.maxAbs > 0)) return 0;
    const lo = Math.log(S.minAbs > 0 ? S.minAbs : S.maxAbs * 1e-6), hi = Math.log(S.maxAbs);
    if (hi <= lo) return 1000;
    return clamp(Math.round(1000 * (Math.log(x) - lo) / (hi - lo)), 1, 1000);
  }
  function setNodeThreshold(v) {
    v = clamp(Number(v), 0, 1);
    if (!isFinite(v)) return;
    S.nodeThreshold = v;
    $('ag-node-threshold').value = String(v);
    $('ag-node-threshold-value').textContent = v.toFixed(3);
    recompute();
    if (S.clickedId) renderPanel();
    if (S.searchList.length) runSearch();
  }
  function setEdgeMin(x) {
    x = Number(x);
    if (!isFinite(x) || x < 0) x = 0;
    S.edgeMin = x;
    $('ag-edge-threshold').value = String(sliderFromEdge(x));
    $('ag-edge-threshold-value').textContent = fmt(x);
    recompute();
  }

  // ---- loading -----------------------------------------------------------------------------------
  function load(raw, name) {
    const m = buildModel(raw);
    Object.assign(S, m);
    S.vis = new Uint8Array(S.nodes.length);
    S.visEdges = new Int32Array(S.E);
    const q = parseQ(raw);
    S.origQ = q.q;
    S.pinned = q.pins.filter((id) => S.byId.has(id));
    S.supernodes = q.sns.map((s) => [s[0]].concat(s.slice(1).filter((id) => S.byId.has(id)))).filter((s) => s.length >= 2);
    S.linkType = q.lt;
    S.clickedId = S.byId.has(q.clicked) ? q.clicked : '';
    S.sgPos = q.sg;
    S.pinnedSet = new Set(S.pinned);
    S.hover = null;
    S.searchHits = new Set(); S.searchTokens = new Set(); S.searchList = [];
    $('ag-search').value = '';
    $('ag-search-count').textContent = '';
    $('ag-search-results').hidden = true;
    $('ag-link-type').value = S.linkType;
    for (const n of S.nodes) updateSearchText(n);
    layout();
    S.edgeVersion++;
    S.nVisEdges = 0;
    const th = num(S.meta.node_threshold);
    S.nodeThreshold = (th !== null && th >= 0 && th <= 1) ? th : 1;
    $('ag-node-threshold').value = String(S.nodeThreshold);
    $('ag-node-threshold-value').textContent = S.nodeThreshold.toFixed(3);
    S.edgeMin = 0;
    $('ag-edge-threshold').value = '0';
    $('ag-edge-threshold-value').textContent = '0';
    S.title = name || '';
    renderHeader();
    renderLegend();
    notice(S.problems.join('; '));
    recompute();
    renderPanel();
    renderSubgraph();
    fit();
    syncQ();
    return true;
  }
  function loadText(text, name) {
    let raw;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      notice('Could not read ' + (name || 'the graph') + ': not valid JSON (' + err.message + ')');
      return false;
    }
    try {
      return load(raw, name);
    } catch (err) {
      notice('Could not show ' + (name || 'the graph') + ': ' + err.message);
      return false;
    }
  }
  function openFile(file) {
    if (!file) return;
    const rd = new FileReader();
    rd.onload = () => loadText(String(rd.result), file.name);
    rd.onerror = () => notice('Could not read ' + file.name);
    rd.readAsText(file);
  }
  function download() {
    if (!S.raw) return;
    syncQ();
    const blob = new Blob([JSON.stringify(S.raw)], { type: 'application/json' });
    const a = document.createElement('a');
    const slug = String(S.meta.slug || 'graph').replace(/[^A-Za-z0-9._-]+/g, '_');
    a.href = URL.createObjectURL(blob);
    a.download = slug + '.json';
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 2000);
  }

  // ---- events ------------------------------------------------------------------------------------
  function canvasXY(ev) {
    const r = canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }
  let drag = null;
  canvas.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return;
    canvas.focus();
    try { canvas.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic pointers */ }
    drag = { x0: ev.clientX, y0: ev.clientY, vx: S.view.x, vy: S.view.y, moved: false };
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (drag) {
      const dx = ev.clientX - drag.x0, dy = ev.clientY - drag.y0;
      if (!drag.moved && dx * dx + dy * dy > 9) { drag.moved = true; canvas.classList.add('ag-dragging'); hideTooltip(); }
      if (drag.moved) {
        S.view.x = drag.vx + dx; S.view.y = drag.vy + dy;
        interacting();
        requestDraw();
      }
      return;
    }
    const [px, py] = canvasXY(ev);
    const n = nodeAt(px, py);
    if (n !== S.hover) { S.hover = n; requestDraw(); }
    canvas.classList.toggle('ag-over-node', !!n);
    if (n) showTooltip(n, px, py); else hideTooltip();
  });
  const endDrag = (ev) => {
    if (!drag) return;
    const wasClick = !drag.moved;
    drag = null;
    canvas.classList.remove('ag-dragging');
    if (wasClick && ev.type === 'pointerup') {
      const [px, py] = canvasXY(ev);
      const n = nodeAt(px, py);
      if (n && (ev.shiftKey || ev.ctrlKey || ev.metaKey)) setPinned(n.id, S.pinned.indexOf(n.id) < 0);
      else select(n ? n.id : '');
    } else {
      requestDraw();
    }
  };
  canvas.addEventListener('pointerup', endDrag);
  canvas.addEventListener('pointercancel', endDrag);
  canvas.addEventListener('pointerleave', () => { if (!drag) { S.hover = null; hideTooltip(); requestDraw(); } });
  canvas.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const [px, py] = canvasXY(ev);
    const unit = ev.deltaMode === 1 ? 0.05 : (ev.deltaMode === 2 ? 1 : 0.0015);
    zoomAt(px, py, Math.exp(-ev.deltaY * unit));
  }, { passive: false });

  function showTooltip(n, px, py) {
    const tt = $('ag-tooltip');
    const lines = [nodeName(n), KINDS[n.kind].name + ' · ' + nodeWhere(n),
      'influence ' + fmt(n.infl) + ' · activation ' + fmt(n.act)];
    if (n.kind === 'logit') lines.push('p = ' + fmt(n.prob) + (n.target ? ' · target' : ''));
    lines.push(n.inE.length + ' inputs · ' + n.outE.length + ' outputs · ' + n.id);
    tt.textContent = lines.join('\n');
    tt.hidden = false;
    const W = canvas.clientWidth, H = canvas.clientHeight;
    const bw = tt.offsetWidth, bh = tt.offsetHeight;
    tt.style.left = Math.min(px + 14, Math.max(0, W - bw - 4)) + 'px';
    tt.style.top = (py + 14 + bh > H ? Math.max(0, py - bh - 10) : py + 14) + 'px';
  }
  function hideTooltip() { $('ag-tooltip').hidden = true; }

  $('ag-node-threshold').addEventListener('input', (ev) => setNodeThreshold(ev.target.value));
  $('ag-edge-threshold').addEventListener('input', (ev) => {
    const v = Number(ev.target.value);
    S.edgeMin = edgeFromSlider(v);
    $('ag-edge-threshold-value').textContent = fmt(S.edgeMin);
    recompute();
  });
  $('ag-link-type').addEventListener('change', (ev) => { S.linkType = ev.target.value; syncQ(); requestDraw(); });
  $('ag-fit').addEventListener('click', fit);
  $('ag-open').addEventListener('click', () => $('ag-file').click());
  $('ag-file').addEventListener('change', (ev) => { openFile(ev.target.files && ev.target.files[0]); ev.target.value = ''; });
  $('ag-download').addEventListener('click', download);
  $('ag-help-btn').addEventListener('click', () => { $('ag-help').hidden = !$('ag-help').hidden; });
  $('ag-help-close').addEventListener('click', () => { $('ag-help').hidden = true; });
  let searchTimer = 0;
  $('ag-search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 120); });
  $('ag-search').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      clearTimeout(searchTimer);
      runSearch();
      if (S.searchList.length) select(S.searchList[0].id, { center: true });
      $('ag-search-results').hidden = true;
    } else if (ev.key === 'Escape') {
      $('ag-search').value = '';
      runSearch();
      $('ag-search').blur();
    }
  });
  $('ag-search').addEventListener('blur', () => { $('ag-search-results').hidden = true; });
  $('ag-search').addEventListener('focus', () => { if ($('ag-search').value.trim() && S.searchList.length) $('ag-search-results').hidden = false; });
  $('ag-sn-group').addEventListener('click', () => {
    const ids = Array.from(document.querySelectorAll('.ag-pin-check')).filter((c) => c.checked).map((c) => c.value);
    if (!ids.length) { notice('Check two or more pinned nodes to group them.'); return; }
    group($('ag-sn-name').value.trim(), ids);
    $('ag-sn-name').value = '';
    notice(S.problems.join('; '));
  });
  $('ag-pin-clear').addEventListener('click', () => {
    S.pinned = []; S.supernodes = [];
    syncQ(); recompute(); renderPanel(); renderSubgraph();
  });
  document.addEventListener('keydown', (ev) => {
    const tag = ev.target && ev.target.tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') return;
    if (ev.key === 'f') fit();
    else if (ev.key === 'Escape') { $('ag-help').hidden = true; select(''); }
    else if (ev.key === '/') { ev.preventDefault(); $('ag-search').focus(); }
    else if (ev.key === 'p' && S.clickedId) setPinned(S.clickedId, S.pinned.indexOf(S.clickedId) < 0);
    else if (ev.key === '+' || ev.key === '=') zoomAt(canvas.clientWidth / 2, canvas.clientHeight / 2, 1.25);
    else if (ev.key === '-') zoomAt(canvas.clientWidth / 2, canvas.clientHeight / 2, 0.8);
  });
  const drop = $('ag-drop');
  window.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.hidden = false; });
  window.addEventListener('dragleave', (ev) => { if (!ev.relatedTarget) drop.hidden = true; });
  window.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.hidden = true;
    openFile(ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0]);
  });
  let firstSize = true;
  const onResize = () => {
    if (firstSize && canvas.clientWidth > 0) { firstSize = false; fit(); }
    requestDraw();
  };
  if (typeof ResizeObserver === 'function') new ResizeObserver(onResize).observe($('ag-stage'));
  window.addEventListener('resize', onResize);

  // ---- test and scripting hook -------------------------------------------------------------------
  function screenPos(id) {
    const n = S.byId.get(id);
    if (!n || !S.vis[n.i]) return null;
    const r = canvas.getBoundingClientRect();
    return { x: r.left + n.x * S.view.k + S.view.x, y: r.top + n.y * S.view.k + S.view.y };
  }
  window.agViewer = {
    version: 1,
    ready: false,
    rule: 'node shown: embedding | logit | pinned | clicked | no numeric influence | influence <= nodeThreshold; ' +
      'link shown: both ends shown and |weight| >= edgeThreshold',
    counts: () => ({ nodes: S.visNodes.length, edges: S.nVisEdges, totalNodes: S.nodes.length, totalEdges: S.E,
      drawnNodes: S.drawn.nodes, drawnEdges: S.drawn.edges, complete: S.drawn.complete,
      pinned: S.pinned.length, supernodes: S.supernodes.length }),
    nodeThreshold: () => S.nodeThreshold,
    edgeThreshold: () => S.edgeMin,
    setNodeThreshold: (v) => { setNodeThreshold(v); return S.nodeThreshold; },
    setEdgeThreshold: (v) => { setEdgeMin(v); return S.edgeMin; },
    select: (id) => { select(String(id || ''), { center: true }); return S.clickedId; },
    clickedId: () => S.clickedId,
    pin: (id, on) => { setPinned(String(id), on !== false); return S.pinned.slice(); },
    group: (name, ids) => group(String(name || ''), (ids || []).map(String)),
    qParams: () => JSON.parse(JSON.stringify(S.raw ? S.raw.qParams : {})),
    exportJSON: () => { syncQ(); return JSON.stringify(S.raw); },
    load: (g, name) => (typeof g === 'string' ? loadText(g, name) : load(g, name)),
    visibleNodeIds: () => S.visNodes.map((n) => n.id),
    screenPos,
    view: () => ({ k: S.view.k, x: S.view.x, y: S.view.y }),
    fit: () => { fit(); draw(); return S.view.k; },
    drawNow: () => { draw(); return S.lastDrawMs; },
    // resolves once the frame for the current state is complete (links included)
    whenDrawn: () => new Promise((resolve) => {
      const poll = () => {
        if (S.drawn.complete && !S.rafPending && performance.now() >= S.interactUntil) resolve(S.lastDrawMs);
        else { requestDraw(); requestAnimationFrame(poll); }
      };
      requestAnimationFrame(poll);
    }),
    stats: () => ({ lastDrawMs: S.lastDrawMs, draws: S.draws, problems: S.problems.slice() })
  };

  // ---- start -------------------------------------------------------------------------------------
  const data = $('ag-graph-data');
  const text = data ? data.textContent : '';
  if (text && text.trim() && text.trim().charAt(0) !== '@') {  // '@': the bare template
    loadText(text, '');
  } else {
    renderPanel();
    renderSubgraph();
    updateStatus();
  }
  window.agViewer.ready = true;
})();
