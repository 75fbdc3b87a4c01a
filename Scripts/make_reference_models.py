#!/bin/sh
''''exec "$(dirname "$0")/../.venv/bin/python" "$0" "$@" # '''
"""Writes structural replicas of well-known networks (torchvision's ResNet-18,
ResNet-50, VGG-11 and ViT-B/16, at 1x3x224x224) into Tests/Data/reference/
(gitignored), for the cost model's known-total tests.

The weights are graph inputs with their exact shapes instead of initializers, so the
files stay a few KB while every layer's shape and therefore every MAC is the real
network's. (Real exports with weights come from Scripts/make_real_models.sh.)

Usage: .venv/bin/python Scripts/make_reference_models.py
"""
import os

import onnx
from onnx import TensorProto, helper

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out_dir = os.path.join(root, "Tests", "Data", "reference")


class Builder:
    def __init__(self, name):
        self.name = name
        self.nodes, self.inputs, self.count = [], [], 0
        self.inputs.append(helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224]))

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def weight(self, name, shape):
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def const_ints(self, values):
        name = self.fresh("const")
        self.nodes.append(helper.make_node("Constant", [], [name],
                                           value=helper.make_tensor(name, TensorProto.INT64, [len(values)], values)))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, pad=0, bias=False, group=1):
        w = self.weight(self.fresh("w"), [cout, cin // group, k, k])
        inputs = [x, w] + ([self.weight(self.fresh("b"), [cout])] if bias else [])
        return self.op("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)

    def bn(self, x, c):
        params = [self.weight(self.fresh(n), [c]) for n in ("scale", "bias", "mean", "var")]
        return self.op("BatchNormalization", [x] + params)

    def gemm(self, x, cin, cout):
        return self.op("Gemm", [x, self.weight(self.fresh("fc_w"), [cout, cin]), self.weight(self.fresh("fc_b"), [cout])], transB=1)

    def save(self, output):
        graph = helper.make_graph(self.nodes, self.name, self.inputs,
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 1000])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(out_dir, f"{self.name}.onnx"))


def resnet(name, blocks, bottleneck):
    b = Builder(name)
    x = b.op("Relu", [b.bn(b.conv("input", 3, 64, 7, 2, 3), 64)])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, (count, width) in enumerate(zip(blocks, [64, 128, 256, 512])):
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            cout = width * 4 if bottleneck else width
            if bottleneck:
                y = b.op("Relu", [b.bn(b.conv(x, cin, width, 1), width)])
                y = b.op("Relu", [b.bn(b.conv(y, width, width, 3, stride, 1), width)])
                y = b.bn(b.conv(y, width, cout, 1), cout)
            else:
                y = b.op("Relu", [b.bn(b.conv(x, cin, width, 3, stride, 1), width)])
                y = b.bn(b.conv(y, width, width, 3, 1, 1), width)
            shortcut = x if stride == 1 and cin == cout else b.bn(b.conv(x, cin, cout, 1, stride), cout)
            x = b.op("Relu", [b.op("Add", [y, shortcut])])
            cin = cout
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    b.save(b.gemm(x, cin, 1000))


def vgg11():
    b = Builder("vgg11")
    x, cin = "input", 3
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
        if v == "M":
            x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        else:
            x = b.op("Relu", [b.conv(x, cin, v, 3, 1, 1, bias=True)])
            cin = v
    # torchvision's AdaptiveAvgPool2d((7, 7)) is the identity at 224x224.
    x = b.op("Flatten", [x])
    x = b.op("Relu", [b.gemm(x, 512 * 7 * 7, 4096)])
    x = b.op("Relu", [b.gemm(x, 4096, 4096)])
    b.save(b.gemm(x, 4096, 1000))


def vit_b_16():
    b = Builder("vit_b_16")
    d, heads, layers, ffn, tokens = 768, 12, 12, 3072, 197
    x = b.conv("input", 3, d, 16, 16, 0, bias=True)                      # [1, 768, 14, 14]
    x = b.op("Reshape", [x, b.const_ints([1, d, 196])])
    x = b.op("Transpose", [x], perm=[0, 2, 1])                              # [1, 196, 768]
    x = b.op("Concat", [b.weight("class_token", [1, 1, d]), x], axis=1)     # [1, 197, 768]
    x = b.op("Add", [x, b.weight("pos_embedding", [1, tokens, d])])

    def linear(x, cin, cout):
        return b.op("Add", [b.op("MatMul", [x, b.weight(b.fresh("lin_w"), [cin, cout])]), b.weight(b.fresh("lin_b"), [cout])])

    def layer_norm(x):
        return b.op("LayerNormalization", [x, b.weight(b.fresh("ln_g"), [d]), b.weight(b.fresh("ln_b"), [d])], axis=-1)

    for _ in range(layers):
        y = layer_norm(x)
        qkv = [b.op("Transpose", [b.op("Reshape", [linear(y, d, d), b.const_ints([1, tokens, heads, d // heads])])], perm=[0, 2, 1, 3])
               for _ in range(3)]
        k_t = b.op("Transpose", [qkv[1]], perm=[0, 1, 3, 2])
        scores = b.op("Softmax", [b.op("Div", [b.op("MatMul", [qkv[0], k_t]), b.weight(b.fresh("scale"), [1])])], axis=-1)
        attn = b.op("Transpose", [b.op("MatMul", [scores, qkv[2]])], perm=[0, 2, 1, 3])
        attn = linear(b.op("Reshape", [attn, b.const_ints([1, tokens, d])]), d, d)
        x = b.op("Add", [x, attn])
        y = layer_norm(x)
        h = linear(y, d, ffn)
        # GELU as exporters write it: 0.5 * h * (1 + erf(h / sqrt(2)))
        erf = b.op("Erf", [b.op("Div", [h, b.weight(b.fresh("sqrt2"), [1])])])
        gelu = b.op("Mul", [b.op("Mul", [h, b.op("Add", [erf, b.weight(b.fresh("one"), [1])])]), b.weight(b.fresh("half"), [1])])
        y = linear(gelu, ffn, d)
        x = b.op("Add", [x, y])
    x = layer_norm(x)
    cls = b.op("Gather", [x, b.const_ints([0])], axis=1)                    # [1, 1, 768]
    cls = b.op("Reshape", [cls, b.const_ints([1, d])])
    b.save(b.gemm(cls, d, 1000))


if __name__ == "__main__":
    os.makedirs(out_dir, exist_ok=True)
    resnet("resnet18", [2, 2, 2, 2], bottleneck=False)
    resnet("resnet50", [3, 4, 6, 3], bottleneck=True)
    vgg11()
    vit_b_16()
    print(f"wrote {sorted(os.listdir(out_dir))} to {out_dir}")
