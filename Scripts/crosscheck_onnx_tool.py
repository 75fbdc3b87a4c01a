#!/usr/bin/env python3
"""Cross-check Vernier's per-node MACs and params against onnx-tool's profiler.

    .venv/bin/python Scripts/crosscheck_onnx_tool.py [MODEL.onnx ...] [--dim SYM=N ...]

Run it through Scripts/crosscheck_onnx_tool.sh, which installs the pinned onnx-tool first.
Without models it checks every Models/*.onnx (top level) and every .build-models/*.onnx
when that folder exists. For each model it runs

  * Vernier: `.build/debug/vernier summary MODEL --format json --dim SYM=N ...` (only the
    symbols the model's inputs use are bound; defaults batch=1, seq=128), and
  * onnx-tool 1.0.1: `onnx_tool.Model(path, cfg)`, `graph.graph_reorder_nodes()`,
    `graph.shape_infer({input: zeros(bound shape)})`, `graph.profile()` (no ops excluded),
    reading each node's `macs[0]` and `params`.

Nodes are matched by name (onnx-tool names an unnamed node `<op>_<index>`; Vernier's row
at the same index gets that name too). Conv, ConvTranspose, Gemm and MatMul nodes are
compared one by one after translating Vernier's count into onnx-tool's convention (see
CONVENTIONS below, each taken from onnx-tool's node.py / graph.py); every other op is
compared only in the totals. Writes a Markdown report and a per-node CSV. Exit status:
0 when every MAC-op node agrees, 1 when one disagrees (or cannot be checked: symbolic
after binding, present in one tool only, a tool failing on a model), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy
import onnx

ROOT = Path(__file__).resolve().parent.parent
MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
DEFAULT_DIMS = {"batch": 1, "seq": 128}
ONNX_TOOL_VERSION = "1.0.1"

# Statuses of a MAC-op row. Only these count as passing.
OK_STATUSES = {"agree", "not-taken-branch"}


# --------------------------------------------------------------------------- helpers

def prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def is_concrete(shape) -> bool:
    return shape is not None and all(isinstance(d, (int, numpy.integer)) for d in shape)


def shape_str(shape) -> str:
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "x".join(str(d) for d in shape)


def fmt_int(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, Fraction):
        return f"{float(v):,.2f}" if v.denominator != 1 else f"{v.numerator:,}"
    if isinstance(v, (int, numpy.integer)):
        return f"{int(v):,}"
    return str(v)


def raw_int(v):
    """CSV form: plain integers, fractions as decimals, symbols as text."""
    if v is None:
        return ""
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{float(v):.3f}"
    return str(int(v)) if isinstance(v, (int, numpy.integer)) else str(v)


def is_param_dtype(dtype) -> bool:
    """Vernier's rule (CostModel.isParameter): floating-point and 8-bit tensors are params;
    wider integers, bool and strings are not."""
    dt = numpy.dtype(dtype)
    if dt.kind == "b" or dt.kind in "OSU":
        return False
    if dt.kind in "iu":
        return dt.itemsize == 1
    return True


def md_escape(s: str) -> str:
    return s.replace("|", "\\|")


# --------------------------------------------------------------------------- the model file

@dataclass
class ModelFacts:
    path: Path
    symbols: list[str]
    runtime_inputs: list[tuple[str, int, list]]  # name, onnx elem type, dims (int or symbol str)
    top_names: list[str]                          # proto names, "" kept
    top_ops: list[str]
    has_if: bool
    has_loop: bool
    subgraph_only_weights: dict[str, int]         # param-dtype initializers read only in subgraphs
    top_weights: dict[str, dict[str, int]]        # top-level node name -> {param initializer: elements}


def subgraph_inputs(g: onnx.GraphProto) -> set[str]:
    """Every value name read by nodes of `g` and its nested subgraphs."""
    names = set()
    for n in g.node:
        names.update(i for i in n.input if i)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                names |= subgraph_inputs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    names |= subgraph_inputs(sg)
    return names


def read_model_facts(path: Path) -> ModelFacts:
    m = onnx.load(str(path), load_external_data=False)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    symbols, runtime = [], []
    for vi in g.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                sym = d.dim_param or "?"
                dims.append(sym)
                if sym not in symbols:
                    symbols.append(sym)
        runtime.append((vi.name, tt.elem_type, dims))
    top_read = {i for n in g.node for i in n.input if i}
    sub_read = set()
    has_if = has_loop = False
    for n in g.node:
        if n.op_type == "If":
            has_if = True
        if n.op_type in ("Loop", "Scan"):
            has_loop = True
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                sub_read |= subgraph_inputs(a.g)
                has_if |= any(x.op_type == "If" for x in a.g.node)
    only_sub = {}
    for name in sorted(sub_read - top_read):
        t = inits.get(name)
        if t is not None:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
            if is_param_dtype(dtype):
                only_sub[name] = prod(t.dims)
    top_weights = {}
    for i, n in enumerate(g.node):
        ws = {}
        for name in n.input:
            t = inits.get(name)
            if t is not None and is_param_dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)):
                ws[name] = prod(t.dims)
        top_weights[n.name or f"{n.op_type}_{i}"] = ws
    return ModelFacts(path, symbols, runtime, [n.name for n in g.node], [n.op_type for n in g.node],
                      has_if, has_loop, only_sub, top_weights)


# --------------------------------------------------------------------------- Vernier

@dataclass
class VNode:
    name: str
    op: str
    scope: str            # "" at top level, else "<owner>/<attribute>[/...]"
    macs: object          # int or str (symbolic) or None
    params: object
    input_shapes: list
    output_shapes: list


def run_vernier(vernier: Path, model: Path, dims: dict[str, int], wait_s: int):
    """Returns (json, error). Waits while the binary is missing or mid-rebuild."""
    cmd = [str(vernier), "summary", str(model), "--format", "json"]
    for k, v in dims.items():
        cmd += ["--dim", f"{k}={v}"]
    deadline = time.time() + wait_s
    last = ""
    while True:
        if os.access(vernier, os.X_OK):
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
                if p.returncode == 0:
                    return json.loads(p.stdout), None
                last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
                if p.returncode == 2:        # Vernier's verdict on the input: final
                    return None, last
            except (OSError, json.JSONDecodeError) as e:   # ETXTBSY mid-link, truncated output
                last = f"{type(e).__name__}: {e}"
        else:
            last = f"{vernier} is missing"
        left = deadline - time.time()
        if left <= 0:
            return None, last
        print(f"crosscheck: waiting for {vernier} ({last})", file=sys.stderr)
        time.sleep(min(20, left))


def flatten_vernier(nodes, scope="") -> list[VNode]:
    out = []
    for n in nodes:
        macs = n.get("macs")
        im = n.get("int_macs") or 0
        if isinstance(macs, (int, float)) and isinstance(im, (int, float)):
            macs = int(macs) + int(im)
        out.append(VNode(n["name"], n["op"], scope, macs, n.get("params"),
                         n.get("input_shapes") or [], n.get("output_shapes") or []))
        for sg in n.get("subgraphs", []) or []:
            sub_scope = f"{scope + '/' if scope else ''}{n['name']}/{sg['attribute']}"
            out += flatten_vernier(sg.get("nodes", []), sub_scope)
    return out


# --------------------------------------------------------------------------- onnx-tool

@dataclass
class ONode:
    name: str
    op: str
    n_inputs: int
    macs: int
    params: int           # onnx-tool's own count (first reader, any dtype)
    params_read: int      # param-dtype initializers this node reads (Vernier's rule)
    weights: list         # names of those initializers
    input_shapes: list
    output_shapes: list
    attrs: dict


@dataclass
class OResult:
    nodes: list[ONode]
    total_macs: int
    total_params: int
    params_vernier_rule: int
    int_elements: int = 0       # elements of int32/int64/bool initializers onnx-tool counts as params
    param_scalars: int = 0      # rank-0 param initializers: onnx-tool's volume([]) is 0, Vernier's 1
    note: str = ""


def run_onnx_tool(facts: ModelFacts, dims: dict[str, int]) -> OResult:
    import onnx_tool  # noqa: F401  (imported late: the .sh installs it)
    from onnx_tool.model import Model
    from onnx_tool.tensor import volume

    feeds = {}
    for name, elem, shape in facts.runtime_inputs:
        bound = [d if isinstance(d, int) else dims[d] for d in shape]
        feeds[name] = numpy.zeros(bound, dtype=onnx.helper.tensor_dtype_to_np_dtype(elem))
    # onnx-tool has no If node class (shape_infer raises NotImplementedError); its
    # documented way through is cfg if_fixed_branch, which inlines one branch.
    cfg = {"verbose": False}
    note = ""
    if facts.has_if:
        cfg["if_fixed_branch"] = "then"
        note = "If nodes inlined by onnx-tool (if_fixed_branch='then')"
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        model = Model(str(facts.path), cfg)
        g = model.graph
        g.graph_reorder_nodes()
        g.shape_infer(feeds)
        g.profile()
    nodes = []
    counted = set()
    params_rule_total = int_elements = param_scalars = 0
    for key, n in g.nodemap.items():
        ins = [g.tensormap[i] for i in n.input]
        outs = [g.tensormap[o] for o in n.output]
        read = 0
        seen = set()
        wnames = []
        for i in n.input:
            if i and i in g.initials and i not in seen:
                seen.add(i)
                t = g.tensormap[i]
                shape = t.get_shape()
                first = i not in counted
                counted.add(i)
                if is_param_dtype(t.dtype):
                    read += prod(shape)          # a scalar is 1 element (onnx-tool says 0)
                    wnames.append(i)
                    if first:
                        params_rule_total += prod(shape)
                        param_scalars += len(shape) == 0
                elif first:
                    int_elements += volume(shape)
        m0 = n.macs[0]
        nodes.append(ONode(key, n.op_type, len(n.input), int(round(float(m0))), int(n.params), int(read), wnames,
                           [list(t.get_shape()) for t in ins], [list(t.get_shape()) for t in outs],
                           {"transA": getattr(n, "transA", 0), "transB": getattr(n, "transB", 0),
                            "group": getattr(n, "group", 1)}))
    return OResult(nodes, int(round(g.macs[0])), int(g.params), params_rule_total, int_elements,
                   param_scalars, note)


# --------------------------------------------------------------------------- comparison

def to_onnx_tool_convention(v: VNode, o: ONode):
    """Vernier's MACs rewritten in onnx-tool's convention, using Vernier's own shapes.
    Returns (expected, term) where term describes the adjustment, or (None, reason)."""
    if not isinstance(v.macs, int):
        return None, "symbolic" if isinstance(v.macs, str) else "no MACs"
    outs = v.output_shapes[0] if v.output_shapes else None
    ins = v.input_shapes[0] if v.input_shapes else None
    if not is_concrete(outs):
        return None, "symbolic"
    out_elems = prod(outs)
    bias = out_elems if o.n_inputs >= 3 else 0    # onnx-tool: len(intensors) == 3 -> + |Y|
    if v.op in ("Conv", "Gemm"):
        return v.macs + bias, (f"+{out_elems:,} bias" if bias else "")
    if v.op == "ConvTranspose":
        if not is_concrete(ins):
            return None, "symbolic"
        in_elems = prod(ins)
        exp = Fraction(v.macs * out_elems, in_elems) + bias
        term = f"x{out_elems:,}/{in_elems:,} (|Y|/|X|)" + (f" +{out_elems:,} bias" if bias else "")
        return exp, term
    if v.op == "MatMul":
        b = v.input_shapes[1] if len(v.input_shapes) > 1 else None
        if b is not None and len(b) == 1 and is_concrete(b):   # onnx-tool drops K for 1-D B
            return Fraction(v.macs, b[0]), f"/{b[0]} (1-D B: onnx-tool omits K)"
        return v.macs, ""
    return None, "not a MAC op"


def readme_formula_on_onnx_tool_shapes(o: ONode):
    """Vernier's documented formula evaluated on onnx-tool's inferred shapes: tells which
    tool's shape or formula a disagreement comes from."""
    try:
        x, w = o.input_shapes[0], o.input_shapes[1]
        y = o.output_shapes[0]
        if not (is_concrete(x) and is_concrete(w) and is_concrete(y)):
            return None
        if o.op == "Conv":
            return prod(y) * prod(w[1:])              # N*Cout*out_spatial*(Cin/g)*k
        if o.op == "ConvTranspose":
            return prod(x) * prod(w[1:])              # N*Cin*in_spatial*(Cout/g)*k
        if o.op == "Gemm":
            k = x[-2] if o.attrs.get("transA") else x[-1]
            return prod(y) * k
        if o.op == "MatMul":
            return prod(y) * x[-1]
    except (IndexError, TypeError, ValueError):
        return None
    return None


@dataclass
class Row:
    model: str
    name: str
    op: str
    scope: str
    v: VNode | None
    o: ONode | None
    expected: object = None
    term: str = ""
    reference: object = None
    status: str = "not compared"
    shapes_match: str = ""
    params_status: str = ""


@dataclass
class ModelResult:
    label: str
    facts: ModelFacts | None
    dims: dict
    error: str = ""
    vjson: dict | None = None
    ores: OResult | None = None
    rows: list[Row] = field(default_factory=list)

    @property
    def mac_rows(self):
        return [r for r in self.rows if r.op in MAC_OPS]

    @property
    def failed(self):
        return bool(self.error) or any(r.status not in OK_STATUSES for r in self.mac_rows)


def compare(label: str, facts: ModelFacts, dims: dict, vjson: dict, ores: OResult) -> list[Row]:
    vnodes = flatten_vernier(vjson.get("nodes", []))
    # An unnamed proto node is `<op>_<index>` in onnx-tool; give Vernier's row that name.
    top = [n for n in vnodes if n.scope == ""]
    if len(top) == len(facts.top_names):
        for i, (pname, op) in enumerate(zip(facts.top_names, facts.top_ops)):
            if not pname and top[i].op == op:
                top[i].name = f"{op}_{i}"
    vmap, omap = {}, {}
    for n in vnodes:
        vmap.setdefault(n.name, n)
    for n in ores.nodes:
        omap.setdefault(n.name, n)
    rows = []
    for n in vnodes:
        rows.append(Row(label, n.name, n.op, n.scope, n, omap.get(n.name)))
    for n in ores.nodes:
        if n.name not in vmap:
            rows.append(Row(label, n.name, n.op, "", None, n))
    for r in rows:
        v, o = r.v, r.o
        if v and o:
            vs = [shape_str(s) for s in v.output_shapes]
            os_ = [shape_str(s) for s in o.output_shapes]
            r.shapes_match = "yes" if vs == os_[: len(vs)] else "no"
            if isinstance(v.params, int):
                r.params_status = "agree" if v.params == o.params_read else "differ"
        if r.op not in MAC_OPS:
            continue
        if v and not o:
            # A node inside a branch that onnx-tool did not inline.
            r.status = "not-taken-branch" if ("else_branch" in v.scope and facts.has_if) else "only-vernier"
            continue
        if o and not v:
            r.status = "only-onnx-tool"
            continue
        if v.op != o.op:
            r.status = "op-mismatch"
            continue
        r.reference = readme_formula_on_onnx_tool_shapes(o)
        r.expected, r.term = to_onnx_tool_convention(v, o)
        if r.expected is None:
            r.status = r.term
        else:
            r.status = "agree" if r.expected == o.macs else "disagree"
    return rows


# --------------------------------------------------------------------------- reports

CONVENTIONS_MD = """\
## How the two tools count

onnx-tool's numbers come from `onnx_tool/node.py` (one `profile()` per op class) and
`onnx_tool/graph.py` (`Graph.profile`), version {ver}. Its module docstring defines its
unit: "Real MACs: the number of x86 instructions to finish numeric compute", so besides
multiply-adds it charges every instruction-like step. Vernier counts one MAC per
multiply-add and nothing else (element-wise work is FLOPs only). Differences that matter
for the four compared ops, and how the script bridges each one:

| op | onnx-tool (`node.py`) | Vernier (README) | compared as |
| --- | --- | --- | --- |
| Conv | `ConvNode.profile`: \\|Y\\| x prod(W.shape[1:]) = N*Cout*out_spatial*(Cin/group)*prod(k), **plus \\|Y\\| when a bias input exists** | N*Cout*prod(out spatial)*(Cin/group)*prod(k); the bias add is in FLOPs only | Vernier + \\|Y\\| (if bias) = onnx-tool |
| ConvTranspose | `ConvTransposeNode.profile`: the Conv code unchanged, \\|Y\\| x prod(W.shape[1:]) with W = [Cin, Cout/group, k...], i.e. **output elements x (Cout/group) x prod(k)**, plus \\|Y\\| for a bias | N*Cin*prod(in spatial)*(Cout/group)*prod(k) = \\|X\\| x prod(W.shape[1:]) | Vernier x \\|Y\\|/\\|X\\| + \\|Y\\| (if bias) = onnx-tool |
| Gemm | `GemmNode.profile`: \\|Y\\| x K (K = W.shape[-1] if transB else W.shape[-2]), **plus \\|Y\\| whenever C is given** (whatever C's shape) | M*N*K; bias add in FLOPs only | Vernier + M*N (if C) = onnx-tool |
| MatMul | `MatMulNode` = `GemmNode` with no bias: \\|Y\\| x B.shape[-2]; a 1-D B gets **no K factor** (and a wrong shape) | output elements x K | equal (1-D B: Vernier / K) |

onnx-tool's ConvTranspose count is not the work done: each input element is multiplied
by Cout/group x prod(k) weights, which is Vernier's formula; seen from the output side
each output element gathers (Cin/group) x prod(k)/prod(strides) products on average,
not (Cout/group) x prod(k). The two agree only when \\|X\\| = \\|Y\\|; for the usual
k=2, s=2, Cin=2*Cout upsampler onnx-tool reports 2x the real count.

Other conventions (totals only, not per node):

- **Other ops.** onnx-tool charges MACs for nearly every op (`node.py` constants
  `MUL/ADD/CMP_MACS = 1`, `DIV_MACS = 4`, `EXP_MACS = POW_MACS = 32`, `SQRT_MACS = 24`,
  `LOG_MACS = 43`, `TANH_MACS = 38`): Add/Sub/Mul/Max/Min |Y| x (inputs-1); Div 4|Y|;
  Relu/Abs/Neg/Sign/Floor 1; Clip 2; HardSigmoid 4; HardSwish 5; Sigmoid/Exp 32;
  Softmax 36; Tanh 76 (38 with a fixed ratio of 2); Sqrt 24; Pow 32; Log 43;
  Erf/Identity/Dropout 0 (`FusedBase`); BatchNormalization 31|Y| (add, sqrt, div,
  add, mul, no folding); LayerNormalization 7|X| + 29 per normalized row; MaxPool and
  AveragePool |Y| x prod(k); GlobalAveragePool |X| + 4|Y|; ReduceMean/Sum |X|; Resize
  4|Y| (linear) or 8|Y| (cubic), nearest 0; LSTM (|W|+|R|) x batch x seq plus the bias,
  gate adds and activations (exp 32, tanh 38). Vernier gives all of these 0 MACs
  (element-wise work is FLOPs), except LSTM/GRU/RNN gate GEMMs and Einsum. So
  onnx-tool's total exceeds Vernier's by the "other ops" column below.
- **Params.** onnx-tool (`Graph.profile`) adds every initializer a profiled node reads,
  of any dtype (int64 Reshape shapes and Slice bounds count), charged to its first reader
  in topological order, and sizes a rank-0 (scalar) initializer as 0 elements
  (`tensor.volume([])` returns 0). Vernier counts floating-point and 8-bit initializers
  only (`CostModel.isParameter`), a scalar as 1 element, per node every weight the node
  reads, and in totals each weight once. "onnx-tool params, Vernier rule" recomputes
  onnx-tool's number from onnx-tool's own graph with int32/int64 initializers dropped
  and scalars counted as 1; per node it is compared with Vernier's `params` (the CSV's
  `params_status`). Constant-node outputs are params for neither tool.
- **If.** onnx-tool has no `If` node class (its `shape_infer` raises
  NotImplementedError), so models with `If` are loaded with `if_fixed_branch='then'`,
  which inlines every then-branch and deletes the condition chain. Vernier keeps the `If`
  node (it costs its larger branch) and lists branch nodes under it; branch nodes are
  matched by name, and else-branch nodes show as `not-taken-branch`.
- **Names.** onnx-tool renames an unnamed node `<op>_<index>`; Vernier's row at that
  index is matched under the same name.
"""


def totals_by_op(rows, side):
    agg = defaultdict(int)
    for r in rows:
        n = r.v if side == "v" else r.o
        if n is None:
            continue
        if side == "v" and n.scope:      # Vernier's If row already includes its branch
            continue
        m = n.macs
        if isinstance(m, int):
            agg[n.op] += m
    return agg


def write_reports(results: list[ModelResult], md_path: Path, csv_path: Path, vernier: Path, dims_used):
    md_path.parent.mkdir(parents=True, exist_ok=True)
    # ---- CSV
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "node", "op", "scope", "in_vernier", "in_onnx_tool",
                    "vernier_macs", "onnx_tool_macs", "convention_term", "vernier_in_onnx_tool_convention",
                    "readme_formula_on_onnx_tool_shapes", "status", "vernier_output_shapes",
                    "onnx_tool_output_shapes", "shapes_match", "vernier_params", "onnx_tool_params",
                    "onnx_tool_params_vernier_rule", "params_status"])
        for res in results:
            for r in res.rows:
                v, o = r.v, r.o
                w.writerow([res.label, r.name, r.op, r.scope, int(v is not None), int(o is not None),
                            raw_int(v.macs) if v else "", raw_int(o.macs) if o else "", r.term,
                            raw_int(r.expected), raw_int(r.reference), r.status,
                            ";".join(shape_str(s) for s in v.output_shapes) if v else "",
                            ";".join(shape_str(s) for s in o.output_shapes) if o else "",
                            r.shapes_match, raw_int(v.params) if v else "", raw_int(o.params) if o else "",
                            raw_int(o.params_read) if o else "", r.params_status])

    # ---- Markdown
    L = []
    L.append("# Vernier vs onnx-tool: per-node MACs and params\n")
    L.append(f"Generated by `Scripts/crosscheck_onnx_tool.sh` (onnx-tool {ONNX_TOOL_VERSION}, "
             f"Vernier `{os.path.relpath(vernier, ROOT)}`). Symbolic dims bound as "
             + ", ".join(f"`{k}={v}`" for k, v in dims_used.items())
             + " (each model gets only the symbols its inputs use). Per-node rows: "
             f"`{os.path.relpath(csv_path, ROOT)}`.\n")
    L.append(CONVENTIONS_MD.format(ver=ONNX_TOOL_VERSION))
    L.append("## Summary\n")
    L.append("MAC ops = Conv, ConvTranspose, Gemm, MatMul, compared per node after the "
             "translation above. \"other ops\" = MACs onnx-tool gives every other op "
             "(Vernier: its non-MAC-op MACs, e.g. LSTM).\n")
    L.append("| model | dims | nodes V / OT / matched | MAC-op nodes agree / disagree / unchecked "
             "| MAC-op MACs V (translated) | MAC-op MACs OT | other ops V / OT | total MACs V | total MACs OT "
             "| params V | params OT (raw / Vernier rule) |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for res in results:
        if res.error:
            L.append(f"| {res.label} | | error: {md_escape(res.error)} | | | | | | | | |")
            continue
        vt = res.vjson["totals"]
        mac = res.mac_rows
        agree = sum(r.status == "agree" for r in mac)
        dis = sum(r.status == "disagree" for r in mac)
        unchecked = sum(r.status not in ("agree", "disagree", "not-taken-branch") for r in mac)
        skipped = sum(r.status == "not-taken-branch" for r in mac)
        compared = [r for r in mac if r.v and r.o]
        v_mac = sum(r.v.macs for r in compared if isinstance(r.v.macs, int))
        v_tr = sum(r.expected for r in compared if r.expected is not None)
        o_mac = sum(r.o.macs for r in compared)
        vop, oop = totals_by_op(res.rows, "v"), totals_by_op(res.rows, "o")
        v_other = sum(m for op, m in vop.items() if op not in MAC_OPS and op != "If")
        o_other = sum(m for op, m in oop.items() if op not in MAC_OPS)
        matched = sum(1 for r in res.rows if r.v and r.o)
        n_v = vt.get("nodes_including_subgraphs", vt.get("nodes"))
        dims = ", ".join(f"{k}={v}" for k, v in res.dims.items()) or "-"
        counts = f"{agree} / {dis} / {unchecked}" + (f" (+{skipped} else-branch)" if skipped else "")
        L.append(f"| {res.label} | {dims} | {vt.get('nodes')}"
                 + (f" ({n_v} with subgraphs)" if n_v != vt.get("nodes") else "")
                 + f" / {len(res.ores.nodes)} / {matched} | {counts} | {fmt_int(v_mac)} ({fmt_int(v_tr)}) "
                 f"| {fmt_int(o_mac)} | {fmt_int(v_other)} / {fmt_int(o_other)} | {fmt_int(vt.get('macs'))} "
                 f"| {fmt_int(res.ores.total_macs)} | {fmt_int(vt.get('params'))} "
                 f"| {fmt_int(res.ores.total_params)} / {fmt_int(res.ores.params_vernier_rule)} |")
    L.append("")

    # ---- findings
    L.append("## Findings\n")
    L.append("### MAC ops\n")
    any_dis = False
    for res in results:
        bad = [r for r in res.mac_rows if r.status not in OK_STATUSES]
        if res.error:
            any_dis = True
            L.append(f"- **{res.label}**: not checked: {md_escape(res.error)}")
        for r in bad:
            any_dis = True
            L.append(f"- **{res.label}** `{md_escape(r.name)}` ({r.op}): {r.status}; Vernier "
                     f"{fmt_int(r.v.macs if r.v else None)} (in onnx-tool's convention "
                     f"{fmt_int(r.expected)}), onnx-tool {fmt_int(r.o.macs if r.o else None)}, Vernier's "
                     f"formula on onnx-tool's shapes {fmt_int(r.reference)}; output shapes V "
                     f"{';'.join(shape_str(s) for s in r.v.output_shapes) if r.v else '-'} / OT "
                     f"{';'.join(shape_str(s) for s in r.o.output_shapes) if r.o else '-'}.")
    checked = [r for res in results for r in res.mac_rows if r.status == "agree"]
    if not any_dis:
        L.append(f"- All {len(checked)} Conv, ConvTranspose, Gemm and MatMul nodes present in both tools "
                 "agree with onnx-tool once the documented convention differences are applied.")
    both = [r for res in results for r in res.mac_rows if r.v and r.o and r.reference is not None]
    ref_ok = sum(1 for r in both if r.reference == r.v.macs)
    ref_bad = [r for r in both if r.reference != r.v.macs]
    L.append(f"- Independently, Vernier's README formula evaluated on onnx-tool's inferred shapes "
             f"reproduces Vernier's MACs on {ref_ok} of the {len(both)} MAC-op nodes in both tools"
             + ("." if not ref_bad else ": not on " + ", ".join(f"`{md_escape(r.name)}`" for r in ref_bad[:8]) + "."))
    sm = sum(1 for res in results for r in res.rows if r.shapes_match == "no")
    nm = sum(1 for res in results for r in res.rows if r.shapes_match)
    L.append(f"- Output shapes agree on {nm - sm} of {nm} matched nodes (all ops).")
    for res in results:
        if res.error:
            continue
        ct = [r for r in res.mac_rows if r.op == "ConvTranspose" and r.status == "agree"]
        if ct:
            o_sum = sum(r.o.macs for r in ct)
            v_sum = sum(r.v.macs for r in ct)
            same = all(r.reference == r.v.macs for r in ct)
            L.append(f"- **{res.label}**: {len(ct)} ConvTranspose node(s): onnx-tool {fmt_int(o_sum)} "
                     f"MACs vs Vernier {fmt_int(v_sum)}: onnx-tool's ConvTranspose formula (above) plus "
                     "bias adds; " + ("Vernier's value is its README formula on onnx-tool's own shapes."
                                      if same else "Vernier's value differs from its README formula."))
        for r in res.rows:
            if r.op != "LSTM" or not (r.v and r.o) or not isinstance(r.v.macs, int):
                continue
            try:
                x, w, rr = r.o.input_shapes[0], r.o.input_shapes[1], r.o.input_shapes[2]
                gemm = (prod(w) + prod(rr)) * x[0] * x[1]
            except (IndexError, TypeError, ValueError):
                continue
            L.append(f"- **{res.label}** `{md_escape(r.name)}` (LSTM, informational): Vernier "
                     f"{fmt_int(r.v.macs)}; onnx-tool {fmt_int(r.o.macs)}, of which its gate-GEMM term "
                     f"(|W|+|R|) x seq x batch is {fmt_int(gemm)}"
                     + (" (= Vernier)" if gemm == r.v.macs else " (differs from Vernier)")
                     + "; the rest is bias adds and activations.")

    L.append("\n### Params\n")
    for res in results:
        if res.error:
            continue
        vt = res.vjson["totals"]
        vp, o = vt.get("params"), res.ores
        ident = o.params_vernier_rule - o.param_scalars + o.int_elements
        parts = []
        if o.int_elements:
            parts.append(f"+{fmt_int(o.int_elements)} int32/int64 initializer elements")
        if o.param_scalars:
            parts.append(f"-{o.param_scalars} rank-0 initializer(s) onnx-tool sizes as 0")
        if parts:
            L.append(f"- **{res.label}**: onnx-tool raw {fmt_int(o.total_params)} = Vernier rule "
                     f"{fmt_int(o.params_vernier_rule)} " + " ".join(parts)
                     + ("" if ident == o.total_params else f" (accounts for {fmt_int(ident)} only)") + ".")
        if isinstance(vp, int) and vp != o.params_vernier_rule:
            ot_names = {n.name for n in o.nodes}
            kept = {w for name, ws in res.facts.top_weights.items() if name in ot_names for w in ws}
            removed = {w: e for name, ws in res.facts.top_weights.items() if name not in ot_names
                       for w, e in ws.items() if w not in kept}
            sub = res.facts.subgraph_only_weights
            inlined = {w for n in o.nodes for w in n.weights if w in sub}
            not_inlined = {w: e for w, e in sub.items() if w not in inlined}
            explained = vp - sum(removed.values()) - sum(not_inlined.values())
            msg = (f"- **{res.label}**: Vernier totals.params {fmt_int(vp)} vs onnx-tool (Vernier rule) "
                   f"{fmt_int(o.params_vernier_rule)}.")
            if not_inlined:
                msg += (f" Vernier counts the weights read only inside If/Loop bodies, every branch "
                        f"({fmt_int(sum(sub.values()))} elements: {', '.join('`' + k + '`' for k in sub)}); "
                        f"onnx-tool keeps only the then-branches it inlined, leaving out "
                        f"{', '.join('`' + k + '`' for k in not_inlined)} ({fmt_int(sum(not_inlined.values()))}).")
            if removed:
                msg += (f" onnx-tool dropped the If condition chain, and with it "
                        f"{', '.join('`' + k + '`' for k in removed)} ({fmt_int(sum(removed.values()))}).")
            msg += (" These account for the whole difference." if explained == o.params_vernier_rule
                    else f" Unexplained: {fmt_int(o.params_vernier_rule - explained)}.")
            L.append(msg)
        bad_p = [r for r in res.rows if r.params_status == "differ"]
        if bad_p:
            L.append(f"- **{res.label}**: {len(bad_p)} matched node(s) whose params differ under Vernier's "
                     "rule: " + ", ".join(f"`{md_escape(r.name)}` V {fmt_int(r.v.params)} / OT "
                                          f"{fmt_int(r.o.params_read)}" for r in bad_p[:8])
                     + (" ..." if len(bad_p) > 8 else ""))
    ok = [res for res in results if not res.error]
    same_tot = sum(1 for res in ok if res.vjson["totals"].get("params") == res.ores.params_vernier_rule)
    prow = [r for res in ok for r in res.rows if r.params_status]
    L.append(f"- Vernier's totals.params equals onnx-tool's under Vernier's rule on {same_tot} of {len(ok)} "
             f"models; per-node params agree on {sum(r.params_status == 'agree' for r in prow)} of "
             f"{len(prow)} matched nodes.")
    L.append("")

    # ---- per model
    L.append("## Per model\n")
    for res in results:
        L.append(f"### {res.label}\n")
        if res.error:
            L.append(f"Not checked: {md_escape(res.error)}\n")
            continue
        vt = res.vjson["totals"]
        only_v = [r for r in res.rows if r.v and not r.o]
        only_o = [r for r in res.rows if r.o and not r.v]
        matched = sum(1 for r in res.rows if r.v and r.o)
        L.append(f"- Nodes: Vernier {vt.get('nodes')} top-level ({vt.get('nodes_including_subgraphs')} with "
                 f"subgraphs), onnx-tool {len(res.ores.nodes)}, matched by name {matched}"
                 + (f"; only in Vernier {len(only_v)}" if only_v else "")
                 + (f"; only in onnx-tool {len(only_o)}" if only_o else "") + ".")
        if res.ores.note:
            L.append(f"- {res.ores.note}.")
        mac = res.mac_rows
        by_op = defaultdict(lambda: [0, 0, 0, 0])
        for r in mac:
            c = by_op[r.op]
            c[0] += 1
            c[1] += r.status == "agree"
            c[2] += r.status not in OK_STATUSES
            c[3] += r.status == "not-taken-branch"
        if by_op:
            L.append("- MAC-op nodes: " + "; ".join(
                f"{op} {c[0]}: {c[1]} agree, {c[2]} disagree" + (f", {c[3]} in an else-branch (not compared)" if c[3] else "")
                for op, c in sorted(by_op.items())) + ".")
        bias_terms = sum((r.expected - r.v.macs) for r in mac
                         if r.status == "agree" and r.op in ("Conv", "Gemm") and isinstance(r.v.macs, int))
        L.append(f"- Total MACs: Vernier {fmt_int(vt.get('macs'))}, onnx-tool {fmt_int(res.ores.total_macs)}; "
                 f"bias adds onnx-tool counts as MACs on Conv/Gemm: {fmt_int(bias_terms)}.")
        vop, oop = totals_by_op(res.rows, "v"), totals_by_op(res.rows, "o")
        others = sorted(((op, vop.get(op, 0), oop.get(op, 0)) for op in set(vop) | set(oop)
                         if op not in MAC_OPS and (vop.get(op, 0) or oop.get(op, 0))),
                        key=lambda t: (-max(t[1], t[2]), t[0]))
        if others:
            L.append("- Other ops' MACs (Vernier / onnx-tool): "
                     + ", ".join(f"{op} {fmt_int(a)} / {fmt_int(b)}" for op, a, b in others) + ".")
        L.append(f"- Params: Vernier {fmt_int(vt.get('params'))}; onnx-tool {fmt_int(res.ores.total_params)} "
                 f"(Vernier's rule: {fmt_int(res.ores.params_vernier_rule)}).")
        shown = [r for r in only_v if r.op in MAC_OPS] + [r for r in only_o if r.op in MAC_OPS]
        for r in shown:
            L.append(f"- `{md_escape(r.name)}` ({r.op}) {r.status}"
                     + (f" in `{md_escape(r.scope)}`" if r.scope else "")
                     + f": Vernier {fmt_int(r.v.macs if r.v else None)}, onnx-tool {fmt_int(r.o.macs if r.o else None)}.")
        bad = [r for r in mac if r.status not in OK_STATUSES]
        if bad:
            L.append("")
            L.append("| node | op | Vernier MACs | in onnx-tool convention | onnx-tool MACs | status |")
            L.append("| --- | --- | --- | --- | --- | --- |")
            for r in bad:
                L.append(f"| `{md_escape(r.name)}` | {r.op} | {fmt_int(r.v.macs if r.v else None)} | "
                         f"{fmt_int(r.expected)} | {fmt_int(r.o.macs if r.o else None)} | {r.status} |")
        L.append("")
    md_path.write_text("\n".join(L))


# --------------------------------------------------------------------------- main

def default_models() -> list[Path]:
    models = sorted((ROOT / "Models").glob("*.onnx"))
    extra = ROOT / ".build-models"
    if extra.is_dir():
        models += sorted(extra.glob("*.onnx"))
    return models


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--dim", action="append", default=[], metavar="SYM=N",
                    help="bind a symbolic dim (defaults: batch=1, seq=128)")
    ap.add_argument("--vernier", type=Path, default=Path(os.environ.get("VERNIER", ROOT / ".build/debug/vernier")))
    ap.add_argument("--report", type=Path, default=ROOT / "Reports/onnx_tool_crosscheck.md")
    ap.add_argument("--csv", type=Path, default=ROOT / "Reports/onnx_tool_crosscheck.csv")
    ap.add_argument("--wait", type=int, default=900,
                    help="seconds to wait for a missing or rebuilding Vernier binary (default 900)")
    args = ap.parse_args(argv)

    try:
        have = importlib.metadata.version("onnx-tool")
    except importlib.metadata.PackageNotFoundError:
        print("crosscheck: onnx-tool is not installed; run Scripts/crosscheck_onnx_tool.sh", file=sys.stderr)
        return 2
    if have != ONNX_TOOL_VERSION:
        print(f"crosscheck: onnx-tool {have} found, {ONNX_TOOL_VERSION} expected", file=sys.stderr)
        return 2

    dims = dict(DEFAULT_DIMS)
    for d in args.dim:
        k, sep, v = d.partition("=")
        if not sep or not v.isdigit() or int(v) <= 0:
            print(f"crosscheck: --dim wants SYM=N with N > 0, got {d!r}", file=sys.stderr)
            return 2
        dims[k] = int(v)
    models = args.models or default_models()
    if not models:
        print("crosscheck: no models", file=sys.stderr)
        return 2
    vernier = args.vernier if args.vernier.is_absolute() else (Path.cwd() / args.vernier)

    results = []
    for path in models:
        path = path if path.is_absolute() else (Path.cwd() / path)
        label = os.path.relpath(path, ROOT)
        t0 = time.time()
        try:
            facts = read_model_facts(path)
        except Exception as e:  # unreadable model
            results.append(ModelResult(label, None, {}, error=f"onnx.load failed: {e}"))
            continue
        missing = [s for s in facts.symbols if s not in dims]
        if missing:
            results.append(ModelResult(label, facts, {}, error=f"unbound symbols {missing}; pass --dim"))
            continue
        bound = {s: dims[s] for s in facts.symbols}
        res = ModelResult(label, facts, bound)
        res.vjson, verr = run_vernier(vernier, path, bound, args.wait)
        if verr:
            res.error = f"vernier failed: {verr}"
            if not os.access(vernier, os.X_OK):
                args.wait = 0            # waited once already; fail the rest fast
        else:
            try:
                res.ores = run_onnx_tool(facts, bound)
            except Exception as e:
                res.error = f"onnx-tool failed: {type(e).__name__}: {e}"
        if not res.error:
            res.rows = compare(label, facts, bound, res.vjson, res.ores)
        results.append(res)
        mac = res.mac_rows
        skipped = sum(r.status == "not-taken-branch" for r in mac)
        state = res.error or (f"{sum(r.status == 'agree' for r in mac)}/{len(mac) - skipped} MAC-op nodes agree"
                              + (f" (+{skipped} in else-branches, not compared)" if skipped else "")
                              + (" -- DISAGREEMENT" if res.failed else ""))
        print(f"{label}: {state} ({time.time() - t0:.1f}s)", file=sys.stderr)

    write_reports(results, args.report, args.csv, vernier, dims)
    failed = [r.label for r in results if r.failed]
    print(f"crosscheck: {len(results) - len(failed)} model(s) agree, {len(failed)} with problems"
          + (": " + ", ".join(failed) if failed else "")
          + f"; report {os.path.relpath(args.report, ROOT)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
