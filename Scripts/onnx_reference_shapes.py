#!/bin/sh
''''exec "$(dirname "$0")/../.venv/bin/python" "$0" "$@" # '''
# The two lines above make ./Scripts/onnx_reference_shapes.py run under the repository's venv;
# the ordinary way is:  .venv/bin/python Scripts/onnx_reference_shapes.py MODEL [options]
#
# Prints, as JSON, the type and shape of every value in an ONNX model as the reference
# implementation computes them with onnx.shape_inference.infer_shapes(model, data_prop=True):
#   {"<value name>": {"dtype": "FLOAT", "shape": [1, "seq", null]}, ...}
# A dim is an int (dim_value), a string (dim_param symbol) or null (unknown); "shape" is
# null when even the rank is unknown, and both are null when inference found no type.
# Symbols named unk__N are ones onnx invents for dims it cannot name; compare them by
# identity within one output, not by name. For a sequence or optional value, dtype reads
# like "seq(FLOAT)" and shape is that of its element.
# Values come in graph order: graph inputs, initializers, then each node's outputs; values
# inside subgraphs (If/Loop/Scan bodies) come just before their node's outputs, named as
# they are (ONNX forbids a subgraph from reusing an outer name).
#
# By default the value_info annotations and the declared shapes of graph outputs (also in
# subgraphs; element types are kept) are removed before inference, so what is printed is
# what inference computed, not what the file declared. --keep-declared leaves them in.
#
# Options:
#   --input NAME=DIMS   rewrite graph input NAME's shape before inference; DIMS is like
#                       1x3x224x224, a token that is not an int is a symbol, '?' unknown
#   --dim SYMBOL=N      bind every dim_param SYMBOL of the graph inputs to N
#   --keep-declared     keep value_info and declared output shapes
#   --strict            strict mode: a node whose inference fails is an error
import argparse
import json
import sys

import onnx
from onnx import TensorProto


def parse_dims(text):
    dims = []
    for tok in text.split("x") if text else []:
        tok = tok.strip()
        if tok == "?":
            dims.append(None)
        else:
            try:
                dims.append(int(tok))
            except ValueError:
                dims.append(tok)
    return dims


def set_dims(tensor_type, dims):
    shape = tensor_type.shape
    shape.ClearField("dim")
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif isinstance(d, str):
            dim.dim_param = d


def strip_declared(graph):
    graph.ClearField("value_info")
    for out in graph.output:
        clear_shape(out.type)
    for node in graph.node:
        for g in subgraphs(node):
            strip_declared(g)


def clear_shape(t):
    kind = t.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        getattr(t, kind).ClearField("shape")
    elif kind == "sequence_type":
        clear_shape(t.sequence_type.elem_type)
    elif kind == "optional_type":
        clear_shape(t.optional_type.elem_type)


def subgraphs(node):
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield from a.graphs


def dtype_name(elem_type):
    return TensorProto.DataType.Name(elem_type) if elem_type else None


def shape_json(shape):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
            for d in shape.dim]


def describe(t):
    kind = t.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        tt = getattr(t, kind)
        name = dtype_name(tt.elem_type)
        if kind == "sparse_tensor_type" and name:
            name = f"sparse({name})"
        return {"dtype": name, "shape": shape_json(tt.shape) if tt.HasField("shape") else None}
    if kind in ("sequence_type", "optional_type"):
        inner = describe(getattr(t, kind).elem_type)
        wrap = "seq" if kind == "sequence_type" else "optional"
        return {"dtype": f"{wrap}({inner['dtype']})" if inner["dtype"] else None, "shape": inner["shape"]}
    if kind == "map_type":
        return {"dtype": f"map({dtype_name(t.map_type.key_type)})", "shape": None}
    return {"dtype": None, "shape": None}


def collect(graph, result):
    known = {}
    for v in list(graph.input) + list(graph.value_info) + list(graph.output):
        known.setdefault(v.name, v.type)

    def add(name, entry):
        if name and name not in result:
            result[name] = entry

    for v in graph.input:
        add(v.name, describe(v.type))
    for t in graph.initializer:
        add(t.name, {"dtype": dtype_name(t.data_type), "shape": list(t.dims)})
    for t in graph.sparse_initializer:
        add(t.values.name, {"dtype": f"sparse({dtype_name(t.values.data_type)})", "shape": list(t.dims)})
    for node in graph.node:
        for g in subgraphs(node):
            collect(g, result)
        for name in node.output:
            add(name, describe(known[name]) if name in known else {"dtype": None, "shape": None})
    for v in graph.output:
        add(v.name, describe(v.type))


def main():
    ap = argparse.ArgumentParser(description="Print the reference (onnx) inferred type and shape of every value.")
    ap.add_argument("model")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=DIMS")
    ap.add_argument("--dim", action="append", default=[], metavar="SYMBOL=N")
    ap.add_argument("--keep-declared", action="store_true")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()

    try:
        model = onnx.load(args.model)
    except Exception as e:  # noqa: BLE001 - any load failure ends the run the same way
        print(f"onnx_reference_shapes: cannot load {args.model}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = {v.name: v for v in graph.input}

    for binding in args.input:
        name, sep, dims = binding.partition("=")
        if not sep or name not in inputs:
            ap.error(f"--input {binding!r}: the graph has no input {name!r} "
                     f"(inputs: {', '.join(n for n in inputs if n not in inits)})")
        t = inputs[name].type
        if t.WhichOneof("value") != "tensor_type":
            ap.error(f"--input {binding!r}: {name} is not a tensor")
        set_dims(t.tensor_type, parse_dims(dims))

    for binding in args.dim:
        sym, sep, val = binding.partition("=")
        try:
            val = int(val)
        except ValueError:
            ap.error(f"--dim {binding!r}: expected SYMBOL=N")
        hits = 0
        for v in graph.input:
            if v.type.WhichOneof("value") == "tensor_type":
                for d in v.type.tensor_type.shape.dim:
                    if d.HasField("dim_param") and d.dim_param == sym:
                        d.dim_value = val      # setting dim_value clears dim_param (oneof)
                        hits += 1
        if not hits:
            ap.error(f"--dim {binding!r}: no graph input has a dim named {sym!r}")

    if not args.keep_declared:
        strip_declared(graph)

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=args.strict,
                                                     strict_mode=args.strict, data_prop=True)
    except Exception as e:  # noqa: BLE001
        print(f"onnx_reference_shapes: shape inference failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    result = {}
    collect(inferred.graph, result)
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in result.items()]
    sys.stdout.write("{\n" + ",\n".join(lines) + "\n}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
