"""The page's one stylesheet, inlined: a phone-first grid, light and dark colours."""

STYLE = """
:root{--bg:#f6f7f9;--card:#fff;--fg:#1d2330;--muted:#5d6675;--line:#e1e4ea;--up:#1f9d55;
--down:#d64545;--warn:#c7820a;--c0:#2f6fdf;--c1:#c2410c;--c2:#7c3aed;--c3:#0e9488;
--c4:#a16207;--c5:#be185d}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--card:#1b2029;--fg:#e4e7ee;
--muted:#9aa3b2;--line:#2c3340;--up:#3ccf7e;--down:#ff6b6b;--warn:#f2b441;--c0:#6ea2ff;
--c1:#fb923c;--c2:#b794f6;--c3:#2dd4bf;--c4:#facc15;--c5:#f472b6}}
*{box-sizing:border-box}
body{margin:0;padding:12px;background:var(--bg);color:var(--fg);
font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4em 1em;margin-bottom:12px}
h1{font-size:1.2em;margin:0}h2{font-size:1em;margin:0 0 .5em}
.state{font-size:1.5em;font-weight:600}.up{color:var(--up)}.down{color:var(--down)}
.unknown,.muted{color:var(--muted)}
main{display:grid;gap:12px;grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr))}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px;
min-width:0}
table{width:100%;border-collapse:collapse}
td,th{padding:.2em .4em;text-align:left;border-bottom:1px solid var(--line);
overflow-wrap:anywhere;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:.85em;white-space:nowrap}
td.n{text-align:right;white-space:nowrap}
tr.outage td{border-bottom:0}tr.why td{padding-top:0;color:var(--muted);font-size:.9em}
figure{margin:.6em 0 0}figcaption{font-size:.85em;color:var(--muted)}
svg.chart{display:block;width:100%;height:auto}
.grid{stroke:var(--line);stroke-width:.6}
.axis{fill:var(--muted);font-size:8px}
.band{opacity:.28}
.series{fill:none;stroke-width:1.4;stroke-linejoin:round;stroke-linecap:round}
.loss-mark{fill:var(--down);opacity:.75}
.s0{stroke:var(--c0);fill:var(--c0)}.s1{stroke:var(--c1);fill:var(--c1)}
.s2{stroke:var(--c2);fill:var(--c2)}.s3{stroke:var(--c3);fill:var(--c3)}
.s4{stroke:var(--c4);fill:var(--c4)}.s5{stroke:var(--c5);fill:var(--c5)}
path.series{fill:none}
.legend{font-size:.8em;color:var(--muted);display:flex;flex-wrap:wrap;gap:.2em .9em}
.key::before{content:"";display:inline-block;width:.9em;height:.25em;margin-right:.3em;
vertical-align:middle;background:currentColor}
.key.s0{color:var(--c0)}.key.s1{color:var(--c1)}.key.s2{color:var(--c2)}.key.s3{color:var(--c3)}
.key.s4{color:var(--c4)}.key.s5{color:var(--c5)}
.unit{margin-left:auto}
.ok{color:var(--up)}.failing,.stuck{color:var(--down)}.skipped,.waiting{color:var(--warn)}
.chip{display:inline-block;padding:0 .45em;border-radius:4px;color:#111}
.big{font-size:1.35em;font-weight:600}
meter{width:100%}
footer{margin-top:12px;font-size:.85em;color:var(--muted)}a{color:var(--c0)}
"""
