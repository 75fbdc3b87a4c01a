#!/bin/sh
''''exec "$(dirname "$0")/../.venv/bin/python" "$0" "$@" # '''
# The two lines above make ./Scripts/make_models.py run under the repository's venv;
# the ordinary way is:  .venv/bin/python Scripts/make_models.py   (from the repository root).
#
# Writes Vernier's small test models into Models/ (good ones), Models/broken/
# (deliberately invalid ones) and Models/external/ (a model with external data),
# then checks them: every good model must pass onnx.checker (full_check) and run
# in onnxruntime, every broken one must be what its name says. Any failure raises.
#
# Deterministic: weights come from np.random.default_rng(seed) with fixed seeds and
# nothing time- or version-dependent is written, so two runs give identical bytes.
# Default-domain opset 17 and IR version 8 keep the models within libonnx 1.12.
#
# Options:  --out DIR    write somewhere other than <repo>/Models
#           --no-check   only write the files (skip checker and onnxruntime)
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "vernier-make_models"
F = TensorProto.FLOAT
I64 = TensorProto.INT64


class Builder:
    """Collects nodes and initializers for one graph, with unique generated names."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.counts = {}

    def uniq(self, base):
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return f"{base}_{n}" if n else base

    def const(self, name, array):
        """Adds an initializer (name used as given, must be unique)."""
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, name, shape, fan_in=None, scale=None):
        if scale is None:
            fan_in = fan_in if fan_in is not None else int(np.prod(shape[1:]))
            scale = np.sqrt(2.0 / max(fan_in, 1))
        w = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        return self.const(name, w)

    def bias(self, name, n, scale=0.05):
        return self.const(name, (self.rng.standard_normal(n) * scale).astype(np.float32))

    def op(self, op_type, inputs, n_out=1, name=None, out=None, exact=False, **attrs):
        """Adds a node; its name (made unique unless exact) also names its output(s)."""
        name = name if exact else self.uniq(name or op_type)
        if out is None:
            outs = [name if n_out == 1 else f"{name}_out{i}" for i in range(n_out)]
        else:
            outs = [out] if isinstance(out, str) else list(out)
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # --- common layers -------------------------------------------------------
    def conv(self, x, cin, cout, k, stride=1, pad=None, group=1, bias=True, name="conv"):
        name = self.uniq(name)
        pad = k // 2 if pad is None else pad
        w = self.weight(f"{name}.weight", (cout, cin // group, k, k))
        ins = [x, w]
        if bias:
            ins.append(self.bias(f"{name}.bias", cout))
        return self.op("Conv", ins, name=name, exact=True, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[pad] * 4, group=group, dilations=[1, 1])

    def bn(self, x, c, name="bn"):
        name = self.uniq(name)
        scale = self.const(f"{name}.weight", (1.0 + 0.1 * self.rng.standard_normal(c)).astype(np.float32))
        b = self.const(f"{name}.bias", (0.05 * self.rng.standard_normal(c)).astype(np.float32))
        mean = self.const(f"{name}.running_mean", (0.05 * self.rng.standard_normal(c)).astype(np.float32))
        var = self.const(f"{name}.running_var", (1.0 + 0.1 * self.rng.random(c)).astype(np.float32))
        return self.op("BatchNormalization", [x, scale, b, mean, var], name=name, exact=True, epsilon=1e-5, momentum=0.9)

    def linear(self, x, fin, fout, name="fc"):
        """Gemm with transB=1, the PyTorch nn.Linear export form."""
        name = self.uniq(name)
        w = self.weight(f"{name}.weight", (fout, fin), fan_in=fin)
        b = self.bias(f"{name}.bias", fout)
        return self.op("Gemm", [x, w, b], name=name, exact=True, alpha=1.0, beta=1.0, transB=1)

    def graph(self, inputs, outputs, value_info=()):
        return helper.make_graph(self.nodes, self.name, inputs, outputs,
                                 initializer=self.inits, value_info=list(value_info))


def make_model(graph, doc, opset=OPSET, extra_opsets=()):
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                          producer_version="1", doc_string=doc)
    m.ir_version = IR_VERSION
    m.model_version = 1
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


# ----------------------------------------------------------------------------
# Good models
# ----------------------------------------------------------------------------

def cifar_cnn():
    b = Builder("cifar_cnn", seed=1)
    x = "input"
    c_in = 3
    for i, c in enumerate([16, 32, 32]):
        x = b.conv(x, c_in, c, 3, name=f"features.conv{i}")
        x = b.op("Relu", [x], name=f"features.relu{i}")
        x = b.op("MaxPool", [x], name=f"features.pool{i}", kernel_shape=[2, 2], strides=[2, 2])
        c_in = c
    x = b.op("Flatten", [x], name="flatten", axis=1)            # [1, 32*4*4]
    x = b.linear(x, 32 * 4 * 4, 64, name="classifier.fc0")
    x = b.op("Relu", [x], name="classifier.relu")
    b.linear(x, 64, 10, name="classifier.fc1")
    b.nodes[-1].output[0] = "logits"
    g = b.graph([vi("input", F, [1, 3, 32, 32])], [vi("logits", F, [1, 10])])
    return make_model(g, "CIFAR-10 style CNN: 3x(Conv, Relu, MaxPool), Flatten, Gemm, Relu, Gemm.")


def resnet_mini():
    b = Builder("resnet_mini", seed=2)
    x = b.conv("input", 3, 16, 3, stride=2, bias=False, name="stem.conv")   # 32x32
    x = b.bn(x, 16, name="stem.bn")
    x = b.op("Relu", [x], name="stem.relu")
    x = b.op("MaxPool", [x], name="stem.pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])  # 16x16

    def block(x, cin, cout, stride, name):
        y = b.conv(x, cin, cout, 3, stride=stride, bias=False, name=f"{name}.conv1")
        y = b.bn(y, cout, name=f"{name}.bn1")
        y = b.op("Relu", [y], name=f"{name}.relu1")
        y = b.conv(y, cout, cout, 3, bias=False, name=f"{name}.conv2")
        y = b.bn(y, cout, name=f"{name}.bn2")
        if stride != 1 or cin != cout:
            s = b.conv(x, cin, cout, 1, stride=stride, pad=0, bias=False, name=f"{name}.downsample.conv")
            s = b.bn(s, cout, name=f"{name}.downsample.bn")
        else:
            s = x
        y = b.op("Add", [y, s], name=f"{name}.add")
        return b.op("Relu", [y], name=f"{name}.relu2")

    x = block(x, 16, 16, 1, "layer1.0")     # 16x16, identity shortcut
    x = block(x, 16, 32, 2, "layer2.0")     # 8x8, strided 1x1 downsample shortcut
    x = block(x, 32, 32, 1, "layer2.1")     # 8x8, identity shortcut
    x = b.op("GlobalAveragePool", [x], name="avgpool")
    x = b.op("Flatten", [x], name="flatten", axis=1)
    b.linear(x, 32, 10, name="fc")
    b.nodes[-1].output[0] = "logits"
    g = b.graph([vi("input", F, [1, 3, 64, 64])], [vi("logits", F, [1, 10])])
    return make_model(g, "ResNet-style: stem Conv/BN/Relu/MaxPool, 3 basic blocks "
                         "(one with a strided 1x1 downsample), GlobalAveragePool, Gemm.")


def mobilenetv2_mini():
    b = Builder("mobilenetv2_mini", seed=3)
    lo = b.const("clip_min", np.array(0.0, dtype=np.float32))
    hi = b.const("clip_max", np.array(6.0, dtype=np.float32))

    def relu6(x, name):
        return b.op("Clip", [x, lo, hi], name=name)

    x = b.conv("input", 3, 16, 3, stride=2, name="features.0.conv")     # 32x32
    x = relu6(x, "features.0.relu6")

    def inverted_residual(x, cin, cout, stride, t, name):
        hidden = cin * t
        y = b.conv(x, cin, hidden, 1, pad=0, name=f"{name}.expand")
        y = relu6(y, f"{name}.expand_relu6")
        y = b.conv(y, hidden, hidden, 3, stride=stride, group=hidden, name=f"{name}.depthwise")
        y = relu6(y, f"{name}.depthwise_relu6")
        y = b.conv(y, hidden, cout, 1, pad=0, name=f"{name}.project")      # linear bottleneck
        if stride == 1 and cin == cout:
            y = b.op("Add", [x, y], name=f"{name}.add")
        return y

    x = inverted_residual(x, 16, 16, 1, 4, "features.1")   # residual
    x = inverted_residual(x, 16, 24, 2, 4, "features.2")   # 16x16
    x = inverted_residual(x, 24, 24, 1, 4, "features.3")   # residual
    x = inverted_residual(x, 24, 32, 2, 4, "features.4")   # 8x8
    x = b.conv(x, 32, 64, 1, pad=0, name="features.5.conv")
    x = relu6(x, "features.5.relu6")
    x = b.op("GlobalAveragePool", [x], name="avgpool")
    shape = b.const("flatten_shape", np.array([0, -1], dtype=np.int64))
    x = b.op("Reshape", [x, shape], name="flatten")
    b.linear(x, 64, 10, name="classifier")
    b.nodes[-1].output[0] = "logits"
    g = b.graph([vi("input", F, [1, 3, 64, 64])], [vi("logits", F, [1, 10])])
    return make_model(g, "MobileNetV2-style: inverted residuals (1x1 expand, depthwise 3x3, "
                         "Clip(0,6), 1x1 project, residual Add), GlobalAveragePool, Reshape, Gemm.")


def bert_mini():
    V, H, NH, FF, MAXPOS, LAYERS = 1000, 64, 4, 128, 128, 2
    HD = H // NH
    b = Builder("bert_mini", seed=4)
    i64 = lambda v: np.array(v, dtype=np.int64)
    f32 = lambda v: np.array(v, dtype=np.float32)
    c_zero, c_one = b.const("const_0", i64(0)), b.const("const_1", i64(1))
    axes0 = b.const("axes_0", i64([0]))
    axes12 = b.const("axes_1_2", i64([1, 2]))
    heads_dims = b.const("heads_dims", i64([NH, HD]))
    hidden_dim = b.const("hidden_dim", i64([H]))

    def layer_norm(x, name):
        g = b.const(f"{name}.weight", (1.0 + 0.05 * b.rng.standard_normal(H)).astype(np.float32))
        be = b.const(f"{name}.bias", (0.02 * b.rng.standard_normal(H)).astype(np.float32))
        return b.op("LayerNormalization", [x, g, be], name=name, axis=-1, epsilon=1e-12)

    def dense(x, fin, fout, name):
        w = b.weight(f"{name}.weight", (fin, fout), scale=0.02 * 4)
        bb = b.bias(f"{name}.bias", fout, scale=0.02)
        y = b.op("MatMul", [x, w], name=f"{name}.matmul")
        return b.op("Add", [y, bb], name=f"{name}.add")

    # Embeddings: word + position, positions from Shape -> Gather -> Range.
    word = b.weight("embeddings.word_embeddings.weight", (V, H), scale=0.05)
    pos = b.weight("embeddings.position_embeddings.weight", (MAXPOS, H), scale=0.05)
    ids_shape = b.op("Shape", ["input_ids"], name="embeddings.shape")
    seq_len = b.op("Gather", [ids_shape, c_one], name="embeddings.seq_len", axis=0)
    pos_ids = b.op("Range", [c_zero, seq_len, c_one], name="embeddings.position_ids")
    pos_ids = b.op("Unsqueeze", [pos_ids, axes0], name="embeddings.position_ids_unsqueeze")
    we = b.op("Gather", [word, "input_ids"], name="embeddings.word", axis=0)
    pe = b.op("Gather", [pos, pos_ids], name="embeddings.position", axis=0)
    x = b.op("Add", [we, pe], name="embeddings.add")
    x = layer_norm(x, "embeddings.LayerNorm")

    # Extended attention mask: (1 - mask[:, None, None, :]) * -10000
    m = b.op("Unsqueeze", ["attention_mask", axes12], name="mask.unsqueeze")
    m = b.op("Cast", [m], name="mask.cast", to=F)
    m = b.op("Sub", [b.const("const_1f", f32(1.0)), m], name="mask.sub")
    mask = b.op("Mul", [m, b.const("const_neg10000", f32(-10000.0))], name="mask.mul")

    for L in range(LAYERS):
        p = f"encoder.layer.{L}"
        # Exporter-style dynamic shapes: batch and seq from Shape -> Gather -> Unsqueeze.
        xs = b.op("Shape", [x], name=f"{p}.attention.shape")
        bsz = b.op("Gather", [xs, c_zero], name=f"{p}.attention.batch", axis=0)
        sl = b.op("Gather", [xs, c_one], name=f"{p}.attention.seq", axis=0)
        bsz = b.op("Unsqueeze", [bsz, axes0], name=f"{p}.attention.batch_unsqueeze")
        sl = b.op("Unsqueeze", [sl, axes0], name=f"{p}.attention.seq_unsqueeze")
        split_shape = b.op("Concat", [bsz, sl, heads_dims], name=f"{p}.attention.heads_shape", axis=0)
        merge_shape = b.op("Concat", [bsz, sl, hidden_dim], name=f"{p}.attention.merge_shape", axis=0)

        def heads(t, perm, name):
            t = b.op("Reshape", [t, split_shape], name=f"{name}.reshape")
            return b.op("Transpose", [t], name=f"{name}.transpose", perm=perm)

        q = heads(dense(x, H, H, f"{p}.attention.self.query"), [0, 2, 1, 3], f"{p}.attention.self.query")
        k = heads(dense(x, H, H, f"{p}.attention.self.key"), [0, 2, 3, 1], f"{p}.attention.self.key")
        v = heads(dense(x, H, H, f"{p}.attention.self.value"), [0, 2, 1, 3], f"{p}.attention.self.value")
        s = b.op("MatMul", [q, k], name=f"{p}.attention.self.scores")            # [b, nh, s, s]
        s = b.op("Div", [s, b.const(f"{p}.attention.self.scale", f32(np.sqrt(HD)))],
                 name=f"{p}.attention.self.div")
        s = b.op("Add", [s, mask], name=f"{p}.attention.self.add_mask")
        s = b.op("Softmax", [s], name=f"{p}.attention.self.softmax", axis=-1)
        c = b.op("MatMul", [s, v], name=f"{p}.attention.self.context")          # [b, nh, s, hd]
        c = b.op("Transpose", [c], name=f"{p}.attention.self.context_transpose", perm=[0, 2, 1, 3])
        c = b.op("Reshape", [c, merge_shape], name=f"{p}.attention.self.context_reshape")
        a = dense(c, H, H, f"{p}.attention.output.dense")
        a = b.op("Add", [a, x], name=f"{p}.attention.output.residual")
        x = layer_norm(a, f"{p}.attention.output.LayerNorm")

        h = dense(x, H, FF, f"{p}.intermediate.dense")
        # GELU, erf form: x * 0.5 * (1 + erf(x / sqrt(2)))
        e = b.op("Div", [h, b.const(f"{p}.intermediate.sqrt2", f32(np.sqrt(2.0)))], name=f"{p}.intermediate.gelu.div")
        e = b.op("Erf", [e], name=f"{p}.intermediate.gelu.erf")
        e = b.op("Add", [e, b.const(f"{p}.intermediate.one", f32(1.0))], name=f"{p}.intermediate.gelu.add")
        e = b.op("Mul", [h, e], name=f"{p}.intermediate.gelu.mul")
        h = b.op("Mul", [e, b.const(f"{p}.intermediate.half", f32(0.5))], name=f"{p}.intermediate.gelu.mul_half")
        o = dense(h, FF, H, f"{p}.output.dense")
        o = b.op("Add", [o, x], name=f"{p}.output.residual")
        x = layer_norm(o, f"{p}.output.LayerNorm")

    b.nodes[-1].output[0] = "last_hidden_state"
    first = b.op("Gather", ["last_hidden_state", c_zero], name="pooler.first_token", axis=1)   # [b, H]
    pooled = b.linear(first, H, H, name="pooler.dense")
    b.op("Tanh", [pooled], name="pooler.tanh", out="pooler_output")

    g = b.graph(
        [vi("input_ids", I64, ["batch", "seq"]), vi("attention_mask", I64, ["batch", "seq"])],
        [vi("last_hidden_state", F, ["batch", "seq", H]), vi("pooler_output", F, ["batch", H])],
    )
    return make_model(g, "BERT-style encoder, 2 layers, hidden 64, 4 heads, symbolic batch/seq; "
                         "exporter-style Shape/Gather/Unsqueeze/Concat/Reshape chains; GELU via Erf.")


def yolo_mini():
    NC = 3                      # classes
    NO = 4 + 1 + NC             # box, objectness, classes
    b = Builder("yolo_mini", seed=5)

    def conv_silu(x, cin, cout, k, stride=1, name="conv"):
        y = b.conv(x, cin, cout, k, stride=stride, name=f"{name}.conv")
        s = b.op("Sigmoid", [y], name=f"{name}.sigmoid")
        return b.op("Mul", [y, s], name=f"{name}.silu")

    x = conv_silu("input", 3, 8, 3, 2, "backbone.0")      # 32x32
    p3 = conv_silu(x, 8, 16, 3, 2, "backbone.1")          # 16x16, stride 4
    p4 = conv_silu(p3, 16, 32, 3, 2, "backbone.2")        # 8x8, stride 8
    p5 = conv_silu(p4, 32, 32, 3, 2, "backbone.3")        # 4x4, stride 16

    scales = b.const("upsample_scales", np.array([1.0, 1.0, 2.0, 2.0], dtype=np.float32))

    def upsample(x, name):
        # opset 13+ Resize: X, roi (omitted, empty name), scales
        return b.op("Resize", [x, "", scales], name=name, mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    t = conv_silu(p5, 32, 16, 1, 1, "neck.lateral5")
    t = upsample(t, "neck.upsample5")                    # 8x8
    t = b.op("Concat", [t, p4], name="neck.concat4", axis=1)   # 16 + 32
    n4 = conv_silu(t, 48, 32, 3, 1, "neck.c4")           # [1, 32, 8, 8]
    t = conv_silu(n4, 32, 16, 1, 1, "neck.lateral4")
    t = upsample(t, "neck.upsample4")                    # 16x16
    t = b.op("Concat", [t, p3], name="neck.concat3", axis=1)   # 16 + 16
    n3 = conv_silu(t, 32, 16, 3, 1, "neck.c3")           # [1, 16, 16, 16]

    split_sizes = b.const("head_split", np.array([4, 1, NC], dtype=np.int64))
    flat = []
    for i, (feat, c, hw) in enumerate([(n3, 16, 16), (n4, 32, 8)]):
        p = f"head.{i}"
        h = b.conv(feat, c, NO, 1, pad=0, name=f"{p}.conv")
        box, obj, cls = b.op("Split", [h, split_sizes], n_out=3, name=f"{p}.split", axis=1)
        obj = b.op("Sigmoid", [obj], name=f"{p}.obj_sigmoid")
        cls = b.op("Sigmoid", [cls], name=f"{p}.cls_sigmoid")
        h = b.op("Concat", [box, obj, cls], name=f"{p}.concat", axis=1)
        shp = b.const(f"{p}.flat_shape", np.array([1, NO, hw * hw], dtype=np.int64))
        flat.append(b.op("Reshape", [h, shp], name=f"{p}.reshape"))
    t = b.op("Concat", flat, name="head.concat", axis=2)          # [1, NO, 320]
    b.op("Transpose", [t], name="head.transpose", perm=[0, 2, 1], out="detections")
    n = 16 * 16 + 8 * 8
    g = b.graph([vi("input", F, [1, 3, 64, 64])], [vi("detections", F, [1, n, NO])])
    return make_model(g, "Detection-style: SiLU as x*Sigmoid(x), Resize(nearest, scales) upsampling, "
                         "Concat skips, per-head Split/Sigmoid/Concat, Reshape/Concat/Transpose to [1,320,8].")


def unet_mini():
    b = Builder("unet_mini", seed=6)

    def double_conv(x, cin, cout, name):
        x = b.op("Relu", [b.conv(x, cin, cout, 3, name=f"{name}.conv1")], name=f"{name}.relu1")
        return b.op("Relu", [b.conv(x, cout, cout, 3, name=f"{name}.conv2")], name=f"{name}.relu2")

    def pool(x, name):
        return b.op("MaxPool", [x], name=name, kernel_shape=[2, 2], strides=[2, 2])

    def up(x, cin, cout, name):
        w = b.weight(f"{name}.weight", (cin, cout, 2, 2), fan_in=cin * 4)
        bb = b.bias(f"{name}.bias", cout)
        return b.op("ConvTranspose", [x, w, bb], name=name, kernel_shape=[2, 2], strides=[2, 2])

    e1 = double_conv("input", 1, 8, "enc1")                 # [1, 8, 64, 64]
    e2 = double_conv(pool(e1, "pool1"), 8, 16, "enc2")      # [1, 16, 32, 32]
    mid = double_conv(pool(e2, "pool2"), 16, 32, "bottleneck")  # [1, 32, 16, 16]
    d2 = up(mid, 32, 16, "up2")                             # [1, 16, 32, 32]
    d2 = double_conv(b.op("Concat", [d2, e2], name="concat2", axis=1), 32, 16, "dec2")
    d1 = up(d2, 16, 8, "up1")                               # [1, 8, 64, 64]
    d1 = double_conv(b.op("Concat", [d1, e1], name="concat1", axis=1), 16, 8, "dec1")
    y = b.conv(d1, 8, 1, 1, pad=0, name="head")
    b.op("Sigmoid", [y], name="head.sigmoid", out="mask")
    g = b.graph([vi("input", F, [1, 1, 64, 64])], [vi("mask", F, [1, 1, 64, 64])])
    return make_model(g, "U-Net-style: encoder convs + MaxPool, ConvTranspose(stride 2) decoder with "
                         "Concat skip connections, 1x1 head, Sigmoid.")


def lstm_mini():
    T, N, I, Hd, NDIR, C = 10, 1, 16, 32, 2, 5
    b = Builder("lstm_mini", seed=7)
    s = 1.0 / np.sqrt(Hd)
    W = b.const("lstm.W", (b.rng.uniform(-s, s, (NDIR, 4 * Hd, I))).astype(np.float32))
    R = b.const("lstm.R", (b.rng.uniform(-s, s, (NDIR, 4 * Hd, Hd))).astype(np.float32))
    B = b.const("lstm.B", (b.rng.uniform(-s, s, (NDIR, 8 * Hd))).astype(np.float32))
    # Outputs Y [T, NDIR, N, Hd] and Y_h [NDIR, N, Hd]; Y_c (3rd) is omitted.
    y, yh = b.op("LSTM", ["input", W, R, B], n_out=2, name="lstm", hidden_size=Hd,
                 direction="bidirectional")
    # Sequence classification from the final hidden states of both directions.
    h = b.op("Squeeze", [yh, b.const("squeeze_axes", np.array([1], dtype=np.int64))], name="final.squeeze")   # [2, 32]
    h = b.op("Reshape", [h, b.const("final_shape", np.array([1, NDIR * Hd], dtype=np.int64))],
             name="final.reshape")                                                                   # [1, 64]
    b.linear(h, NDIR * Hd, C, name="classifier")
    b.nodes[-1].output[0] = "logits"
    # Per-step tagging from Y: [T, 2, N, Hd] -> [N, T, 2, Hd] -> [N, T, 2*Hd] -> MatMul.
    t = b.op("Transpose", [y], name="steps.transpose", perm=[2, 0, 1, 3])
    t = b.op("Reshape", [t, b.const("steps_shape", np.array([N, T, NDIR * Hd], dtype=np.int64))],
             name="steps.reshape")
    w = b.weight("tagger.weight", (NDIR * Hd, C), fan_in=NDIR * Hd)
    t = b.op("MatMul", [t, w], name="tagger.matmul")
    b.op("Add", [t, b.bias("tagger.bias", C)], name="tagger.add", out="step_logits")
    g = b.graph([vi("input", F, [T, N, I])], [vi("logits", F, [N, C]), vi("step_logits", F, [N, T, C])])
    return make_model(g, "Bidirectional LSTM (hidden 32, with B, no sequence_lens), Squeeze/Reshape/Gemm "
                         "on Y_h and Transpose/Reshape/MatMul on Y.")


def tiny_if():
    b = Builder("tiny_if", seed=8)
    shape = [2, 3]
    total = b.op("ReduceSum", ["x"], name="sum", keepdims=0)
    cond = b.op("Greater", [total, b.const("zero", np.array(0.0, dtype=np.float32))], name="positive")
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["then_out"], name="then_relu")],
                               "then_branch", [], [vi("then_out", F, shape)])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["else_out"], name="else_neg")],
                               "else_branch", [], [vi("else_out", F, shape)])
    b.op("If", [cond], name="branch", out="y", then_branch=then_g, else_branch=else_g)
    g = b.graph([vi("x", F, shape)], [vi("y", F, shape)])
    return make_model(g, "If with two subgraph branches: Relu(x) when ReduceSum(x) > 0, else Neg(x); "
                         "both branches read x from the outer scope.")


def ext_weights():
    b = Builder("ext_weights", seed=9)
    h = b.op("Relu", [b.linear("input", 16, 32, name="fc0")], name="relu")
    b.linear(h, 32, 4, name="fc1")
    b.nodes[-1].output[0] = "output"
    g = b.graph([vi("input", F, [1, 16])], [vi("output", F, [1, 4])])
    return make_model(g, "Two Gemm layers whose initializers live in ext_weights.bin.")


GOOD = [
    ("cifar_cnn.onnx", cifar_cnn),
    ("resnet_mini.onnx", resnet_mini),
    ("mobilenetv2_mini.onnx", mobilenetv2_mini),
    ("bert_mini.onnx", bert_mini),
    ("yolo_mini.onnx", yolo_mini),
    ("unet_mini.onnx", unet_mini),
    ("lstm_mini.onnx", lstm_mini),
    ("tiny_if.onnx", tiny_if),
]


# ----------------------------------------------------------------------------
# Broken models
# ----------------------------------------------------------------------------

def _tiny(nodes, inputs, outputs, inits=(), name="broken"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    return make_model(g, f"Deliberately invalid test model: {name}.")


def broken_models():
    """Returns [(file name, bytes, what is wrong)]. None of these is checked on creation."""
    out = []
    x = vi("x", F, [1, 4])
    y = vi("y", F, [1, 4])

    # A valid model whose serialization is cut in the middle of an initializer's raw_data.
    w = numpy_helper.from_array(np.random.default_rng(10).standard_normal((16, 16)).astype(np.float32), "W")
    valid = _tiny([helper.make_node("MatMul", ["x16", "W"], ["y16"], name="matmul")],
                  [vi("x16", F, [1, 16])], [vi("y16", F, [1, 16])], [w], name="truncated")
    data = valid.SerializeToString()
    out.append(("truncated.onnx", data[: len(data) // 2], "valid model serialization cut in half"))

    out.append(("garbage.onnx", np.random.default_rng(11).bytes(512), "512 random bytes"))

    m = _tiny([helper.make_node("Add", ["x", "b"], ["a"], name="add"),
               helper.make_node("Relu", ["a"], ["b"], name="relu")], [x], [vi("b", F, [1, 4])], name="cycle")
    out.append(("cycle.onnx", m.SerializeToString(), "add consumes b, relu consumes a and produces b"))

    m = _tiny([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")], [x], [y], name="undefined_input")
    out.append(("undefined_input.onnx", m.SerializeToString(), "node input 'ghost' has no producer"))

    m = _tiny([helper.make_node("Relu", ["x"], ["y"], name="relu"),
               helper.make_node("Neg", ["x"], ["y"], name="neg")], [x], [y], name="duplicate_output")
    out.append(("duplicate_output.onnx", m.SerializeToString(), "two nodes produce 'y'"))

    bad = TensorProto(name="W", data_type=F, dims=[4, 4], raw_data=bytes(range(10)))
    m = _tiny([helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")], [x], [y], [bad],
              name="bad_initializer_size")
    out.append(("bad_initializer_size.onnx", m.SerializeToString(),
                "initializer W dims [4,4] float (64 bytes) but raw_data has 10 bytes"))

    m = _tiny([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x], [y, vi("z", F, [1, 4])],
              name="missing_graph_output")
    out.append(("missing_graph_output.onnx", m.SerializeToString(), "graph output 'z' has no producer"))

    for fname, loc in [("external_escape.onnx", "../../etc/passwd"), ("external_absolute.onnx", "/etc/passwd")]:
        t = TensorProto(name="W", data_type=F, dims=[4])
        t.data_location = TensorProto.EXTERNAL
        for k, v in [("location", loc), ("offset", "0"), ("length", "16")]:
            e = t.external_data.add()
            e.key, e.value = k, v
        m = _tiny([helper.make_node("Add", ["x", "W"], ["y"], name="add")], [x], [y], [t],
                  name=fname[:-5])
        out.append((fname, m.SerializeToString(), f"initializer W is EXTERNAL at {loc!r}"))

    big = 2 ** 40
    m = _tiny([helper.make_node("Relu", ["x"], ["y"], name="relu")],
              [vi("x", F, [big, big])], [vi("y", F, [big, big])], name="huge_dims")
    out.append(("huge_dims.onnx", m.SerializeToString(), "input dims [2^40, 2^40]: element count 2^80"))

    out.append(("empty.onnx", b"", "0 bytes"))
    return out


# ----------------------------------------------------------------------------
# Writing and checking
# ----------------------------------------------------------------------------

def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def random_feed(sess, rng, dims):
    feed = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) else dims[d] for d in inp.shape]
        if inp.type == "tensor(float)":
            feed[inp.name] = rng.standard_normal(shape).astype(np.float32)
        elif inp.name == "attention_mask":
            m = np.ones(shape, dtype=np.int64)
            m[:, -2:] = 0            # padding at the end of each sequence
            feed[inp.name] = m
        elif inp.type == "tensor(int64)":
            feed[inp.name] = rng.integers(0, 1000, size=shape, dtype=np.int64)
        else:
            raise RuntimeError(f"no feed rule for input {inp.name} of {inp.type}")
    return feed


def run_ort(path, feeds_list):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    results = []
    for feeds in feeds_list(sess):
        outs = sess.run(None, feeds)
        for o, v in zip(sess.get_outputs(), outs):
            if not np.all(np.isfinite(v)):
                raise RuntimeError(f"{path}: output {o.name} has non-finite values")
        results.append(([f"{k}{list(v.shape)}" for k, v in feeds.items()],
                        [f"{o.name}{list(v.shape)}" for o, v in zip(sess.get_outputs(), outs)], outs))
    return results


def check_good(path):
    onnx.checker.check_model(path, full_check=True)
    rng = np.random.default_rng(100)
    if os.path.basename(path) == "bert_mini.onnx":
        feeds = lambda s: [random_feed(s, rng, {"batch": 2, "seq": 7}),
                           random_feed(s, rng, {"batch": 1, "seq": 16})]
    elif os.path.basename(path) == "tiny_if.onnx":
        pos = np.abs(rng.standard_normal((2, 3))).astype(np.float32)
        feeds = lambda s: [{"x": pos}, {"x": -pos}]
    else:
        feeds = lambda s: [random_feed(s, rng, {})]
    res = run_ort(path, feeds)
    if os.path.basename(path) == "tiny_if.onnx":     # both branches must have been taken correctly
        assert np.array_equal(res[0][2][0], pos) and np.array_equal(res[1][2][0], pos), "If branches wrong"
    return res


def check_broken(path):
    """Returns a short text of which layer rejects the file. Raises if nothing does."""
    import onnxruntime as ort
    verdicts = []
    try:
        m = onnx.load(path, load_external_data=False)
        if os.path.getsize(path) == 0:
            verdicts.append("onnx.load: parses as an empty ModelProto")
    except Exception as e:  # noqa: BLE001
        verdicts.append(f"onnx.load: {type(e).__name__}")
        m = None
    if m is not None:
        try:
            onnx.checker.check_model(path, full_check=True)
            verdicts.append("checker: accepts")
        except Exception as e:  # noqa: BLE001
            verdicts.append("checker: " + str(e).strip().splitlines()[0][:100])
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        if os.path.basename(path) == "huge_dims.onnx":
            verdicts.append("ort: loads (cannot be run: 2^80 elements)")
        else:
            feed = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
                    for i in sess.get_inputs()}
            sess.run(None, feed)
            verdicts.append("ort: loads and runs")
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().splitlines()[0].replace(f"Load model from {path} failed:", "")
        verdicts.append("ort: " + msg.replace("[ONNXRuntimeError] : ", "")[:100])
    rejected = any(not (v.endswith("accepts") or "loads" in v or "empty ModelProto" in v) for v in verdicts)
    if not rejected and os.path.basename(path) != "huge_dims.onnx":
        raise RuntimeError(f"{path}: nothing rejects this 'broken' model: {verdicts}")
    return verdicts


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description="Write and check the test models in Models/.")
    ap.add_argument("--out", default=os.path.join(root, "Models"))
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    out = args.out
    os.makedirs(os.path.join(out, "broken"), exist_ok=True)
    os.makedirs(os.path.join(out, "external"), exist_ok=True)

    written = []
    for fname, fn in GOOD:
        path = os.path.join(out, fname)
        write_bytes(path, fn().SerializeToString())
        written.append(path)

    ext_model = os.path.join(out, "external", "ext_weights.onnx")
    ext_bin = os.path.join(out, "external", "ext_weights.bin")
    if os.path.exists(ext_bin):
        os.remove(ext_bin)          # onnx appends to an existing data file
    onnx.save_model(ext_weights(), ext_model, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext_weights.bin", size_threshold=0)
    os.chmod(ext_bin, 0o644)        # onnx creates the data file as 0600
    written += [ext_model, ext_bin]

    broken = broken_models()
    for fname, data, _ in broken:
        write_bytes(os.path.join(out, "broken", fname), data)
        written.append(os.path.join(out, "broken", fname))

    if args.no_check:
        for p in written:
            print(f"{os.path.getsize(p):>9}  {os.path.relpath(p, out)}")
        return 0

    failures = 0
    for path in [os.path.join(out, f) for f, _ in GOOD] + [ext_model]:
        try:
            res = check_good(path)
            size = os.path.getsize(path) + (os.path.getsize(ext_bin) if path == ext_model else 0)
            for ins, outs, _ in res:
                print(f"ok   {os.path.relpath(path, out):<28} {size:>8} B  {', '.join(ins)} -> {', '.join(outs)}")
        except Exception as e:  # noqa: BLE001
            failures += 1
            print(f"FAIL {os.path.relpath(path, out)}: {e}", file=sys.stderr)
    for fname, _, what in broken:
        path = os.path.join(out, "broken", fname)
        try:
            verdicts = check_broken(path)
            print(f"bad  broken/{fname:<26} {os.path.getsize(path):>6} B  {what}\n       " + "; ".join(verdicts))
        except Exception as e:  # noqa: BLE001
            failures += 1
            print(f"FAIL broken/{fname}: {e}", file=sys.stderr)
    if failures:
        print(f"make_models: {failures} model(s) failed their checks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
