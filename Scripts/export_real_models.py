#!/usr/bin/env python3
# Exports real networks with random weights into .build-models/ (gitignored), for trying
# Vernier on models as a user would get them from PyTorch and onnxruntime. Run it with
# the venv that Scripts/make_real_models.sh prepares (torch, torchvision, onnx,
# onnxruntime); the ordinary way is to run that script, which calls this one.
#
#   .build-models/venv/bin/python Scripts/export_real_models.py [--out DIR] [--force]
#                                 [--only NAME,NAME...] [--table] [--list]
#
# What it writes (one .onnx file each, weights inside the file, all under 2 GB):
#   torchvision resnet18, resnet50, mobilenet_v2, mobilenet_v3_small, efficientnet_b0,
#     shufflenet_v2_x1_0, squeezenet1_0, densenet121, vgg11, vit_b_16
#     (input `input` [batch,3,224,224], output `logits` [batch,1000])
#   bert_base      BERT-base-style encoder written here (12 layers, hidden 768, 12 heads,
#                  FFN 3072, vocab 30522); inputs input_ids, attention_mask int64 [batch,seq]
#   yolo_small     YOLOv5-style detector written here (SiLU, C3, SPPF, PAN with Resize,
#                  sigmoid heads with box decoding), 1x3x320x320 -> 1x6300x85
#   ocr_det_db     DBNet-style text detector (MobileNetV3-style backbone with Hardswish and
#                  Hardsigmoid SE, FPN, ConvTranspose head), 1x3x640x640 -> 1x1x640x640
#   ocr_rec_crnn   CRNN recognizer (VGG-style convs, 2 bidirectional LSTMs), 1x1x32x128
#                  -> 33x1x37 log-probabilities
#   audio_kws_if   torch.jit.script'ed keyword spotter whose forward branches on the data
#                  (ONNX If nodes, one nested), 1x16000 waveform
#   audio_lstm     speech-commands-style recognizer: Conv1d over 98 frames of 40 log-mel
#                  bands, 2 stacked LSTMs (hidden 256), Linear on the last frame; 1x98x40
#                  -> 1x12 (a second model with LSTMs, so leave-one-out prediction of
#                  either has recurrent kernels to calibrate on)
#   unet_seg       UNet-style segmenter (3 down stages, ConvTranspose up-sampling, skip
#                  Concats), 1x3x256x256 -> 1x2x256x256 (a second model with ConvTranspose)
#   resnet18_int8_qdq  resnet18 quantized by onnxruntime quantize_static (after
#                  quant_pre_process), QDQ format, per-channel int8 weights, uint8
#                  activations calibrated on 8 random images
#   mobilenet_v2_int8_qdq  mobilenet_v2 quantized the same way (a second int8 model, so
#                  leave-one-out prediction has int8 kernels to calibrate on)
#   resnet50_int8_qdq  resnet50 quantized the same way
#   mobilenet_v3_small_int8_qdq, efficientnet_b0_int8_qdq  quantized the same way: more
#                  int8 depthwise and squeeze-and-excitation layers to calibrate on
#   bert_base_int8_qdq  bert_base quantized the same way, calibrated on 8 random token
#                  sequences of 128 (issue 7's int8 targets: ResNet-50 and a BERT encoder)
#   vit_b_16_int8_qdq  vit_b_16 quantized the same way: a second int8 transformer, so
#                  leave-one-out prediction of either has int8 matmuls of its shapes
#
# Exporter: the TorchScript-based torch.onnx.export(..., dynamo=False), opset 17, for
# every model. The dynamo exporter (torch.onnx.export(..., dynamo=True)) needs the extra
# package onnxscript, only emits opset 18 (its down-conversion to 17 fails on
# ReduceMean's axes) and cannot take a ScriptModule, whose If subgraphs are the point of
# audio_kws_if.
#
# Every model is run once in onnxruntime on random input (batch 2 where the batch is
# dynamic, seq 16 for BERT) and its output shapes are checked; torch models are also
# compared with the eager module's output on the same input. Weights: torch.manual_seed(0)
# and weights=None, nothing is downloaded (only ViT's zero-initialised classifier is
# re-drawn, so that its output is not identically 0). Two runs write identical bytes, with
# the CPU and the CUDA build of torch alike.
#
# Idempotent: .build-models/manifest.json records each model's fingerprint (this script's
# hash and the package versions). A model whose file and fingerprint are current is
# skipped; when nothing had to be exported the script prints nothing (unless --table).
# The manifest also lists, per model, its inputs and outputs, the `vernier` arguments to
# bind its symbols, and reference MAC counts (see reference_gmacs below).
import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPSET = 17
SEED = 0
TORCHVISION_NAMES = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                     "shufflenet_v2_x1_0", "squeezenet1_0", "densenet121", "vgg11", "vit_b_16"]
OTHER_NAMES = ["bert_base", "yolo_small", "ocr_det_db", "ocr_rec_crnn", "audio_kws_if", "audio_lstm", "unet_seg",
               "resnet18_int8_qdq",
               "mobilenet_v2_int8_qdq", "resnet50_int8_qdq", "bert_base_int8_qdq", "mobilenet_v3_small_int8_qdq",
               "efficientnet_b0_int8_qdq", "vit_b_16_int8_qdq"]
# A quantized model is made from another one.
SOURCES = {"resnet18_int8_qdq": "resnet18", "mobilenet_v2_int8_qdq": "mobilenet_v2", "resnet50_int8_qdq": "resnet50",
           "mobilenet_v3_small_int8_qdq": "mobilenet_v3_small", "efficientnet_b0_int8_qdq": "efficientnet_b0",
           "bert_base_int8_qdq": "bert_base", "vit_b_16_int8_qdq": "vit_b_16"}


def parse_args():
    ap = argparse.ArgumentParser(description="Export real networks with random weights to ONNX.")
    ap.add_argument("--out", default=str(ROOT / ".build-models"))
    ap.add_argument("--force", action="store_true", help="re-export even when current")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--table", action="store_true", help="print the table even when nothing changed")
    ap.add_argument("--list", action="store_true", help="list model names and exit")
    args = ap.parse_args()
    names = TORCHVISION_NAMES + OTHER_NAMES
    wanted = [n for n in args.only.split(",") if n] or names
    unknown = set(wanted) - set(names)
    if unknown:
        raise SystemExit(f"export_real_models: unknown model(s) {sorted(unknown)}; --list shows the names")
    args.todo = []  # in order, each source before the model made from it
    for name in wanted:
        for n in (SOURCES.get(name), name):
            if n and n not in args.todo:
                args.todo.append(n)
    return args


def fingerprint():
    from importlib.metadata import version
    script = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    versions = " ".join(f"{p}={version(p)}" for p in ("torch", "torchvision", "onnx", "onnxruntime"))
    return f"script={script} {versions} opset={OPSET}"


def load_manifest(out_dir):
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    manifest.setdefault("models", {})
    return manifest


def is_current(manifest, out_dir, name, fp):
    e = manifest["models"].get(name)
    p = out_dir / f"{name}.onnx"
    return e is not None and e.get("fingerprint") == fp and p.exists() and p.stat().st_size == e["bytes"]


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.list:
        print("\n".join(TORCHVISION_NAMES + OTHER_NAMES))
        sys.exit(0)
    # Fast path, before the slow imports: nothing to do and nothing asked to print.
    _out, _fp = Path(ARGS.out), fingerprint()
    _manifest = load_manifest(_out)
    if not (ARGS.force or ARGS.table) and all(is_current(_manifest, _out, n, _fp) for n in ARGS.todo):
        sys.exit(0)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def import_torchvision():
    # PyPI's torchvision wheels are built against PyPI's CUDA torch. With a CPU-only torch
    # (a `+cpu` wheel) their compiled ops (_C_stable.so) cannot load, and importing
    # torchvision then fails in _meta_registrations ("operator torchvision::nms does not
    # exist"). Those modules only register kernels for detection ops (nms, roi_align...)
    # that no model here uses, so they are replaced by empty modules in that case.
    if torch.version.cuda is None:
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules.setdefault(name, types.ModuleType(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torchvision
    return torchvision


torchvision = import_torchvision()


# --------------------------------------------------------------------------------------
# BERT-base-style encoder (the layout of Hugging Face's BertModel, eager attention)
# --------------------------------------------------------------------------------------
class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, type_vocab):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0), persistent=False)
        self.register_buffer("token_type_ids", torch.zeros(1, max_pos, dtype=torch.long), persistent=False)

    def forward(self, input_ids):
        batch, seq = input_ids.size()
        position_ids = self.position_ids[:, :seq]
        token_type_ids = self.token_type_ids[:, :seq].expand(batch, seq)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.num_heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(0.1)

    def split_heads(self, x):
        x = x.view(x.size()[:-1] + (self.num_heads, self.head_dim))
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, extended_mask):
        q = self.split_heads(self.query(hidden_states))
        k = self.split_heads(self.key(hidden_states))
        v = self.split_heads(self.value(hidden_states))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores + extended_mask
        probs = self.dropout(F.softmax(scores, dim=-1))
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size()[:-2] + (self.num_heads * self.head_dim,))


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.attention = BertSelfAttention(hidden, heads)
        self.attention_output = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = nn.Linear(hidden, ffn)
        self.activation = nn.GELU()
        self.output = nn.Linear(ffn, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, extended_mask):
        a = self.dropout(self.attention_output(self.attention(x, extended_mask)))
        x = self.attention_norm(a + x)
        h = self.dropout(self.output(self.activation(self.intermediate(x))))
        return self.output_norm(h + x)


class BertBase(nn.Module):
    def __init__(self, vocab=30522, hidden=768, layers=12, heads=12, ffn=3072, max_pos=512, type_vocab=2):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, max_pos, type_vocab)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, ffn) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask[:, None, None, :].to(torch.float32)
        extended_mask = (1.0 - mask) * torch.finfo(torch.float32).min
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x, extended_mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return x, pooled


# --------------------------------------------------------------------------------------
# YOLOv5-style detector
# --------------------------------------------------------------------------------------
class ConvBNSiLU(nn.Module):
    def __init__(self, cin, cout, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut=True):
        super().__init__()
        self.cv1 = ConvBNSiLU(c, c, 1)
        self.cv2 = ConvBNSiLU(c, c, 3)
        self.add = shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, cin, cout, n=1, shortcut=True):
        super().__init__()
        c = cout // 2
        self.cv1 = ConvBNSiLU(cin, c, 1)
        self.cv2 = ConvBNSiLU(cin, c, 1)
        self.cv3 = ConvBNSiLU(2 * c, cout, 1)
        self.m = nn.Sequential(*(Bottleneck(c, shortcut) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, cin, cout, k=5):
        super().__init__()
        self.cv1 = ConvBNSiLU(cin, cin // 2, 1)
        self.cv2 = ConvBNSiLU(cin * 2, cout, 1)
        self.pool = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.cv2(torch.cat((x, y1, y2, self.pool(y2)), 1))


class Detect(nn.Module):
    anchors = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))

    def __init__(self, nc, channels, strides, image_size):
        super().__init__()
        self.nc, self.no, self.na = nc, nc + 5, 3
        self.strides = strides
        self.m = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in channels)
        for i, s in enumerate(strides):
            n = image_size // s
            yv, xv = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            grid = torch.stack((xv, yv), 2).expand(1, self.na, n, n, 2).float() - 0.5
            a = torch.tensor(self.anchors[i], dtype=torch.float32).view(1, self.na, 1, 1, 2)
            self.register_buffer(f"grid{i}", grid.contiguous())
            self.register_buffer(f"anchor_grid{i}", a.expand(1, self.na, n, n, 2).contiguous())

    def forward(self, feats):
        out = []
        for i, x in enumerate(feats):
            x = self.m[i](x)
            bs, _, ny, nx = x.shape
            y = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous().sigmoid()
            xy, wh, conf = y.split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + getattr(self, f"grid{i}")) * self.strides[i]
            wh = (wh * 2) ** 2 * getattr(self, f"anchor_grid{i}")
            out.append(torch.cat((xy, wh, conf), 4).view(bs, -1, self.no))
        return torch.cat(out, 1)


class YoloSmall(nn.Module):
    def __init__(self, nc=80, image_size=320):
        super().__init__()
        self.stem = ConvBNSiLU(3, 16, 3, 2)  # 1/2
        self.s2 = nn.Sequential(ConvBNSiLU(16, 32, 3, 2), C3(32, 32, 1))  # 1/4
        self.s3 = nn.Sequential(ConvBNSiLU(32, 64, 3, 2), C3(64, 64, 2))  # 1/8
        self.s4 = nn.Sequential(ConvBNSiLU(64, 128, 3, 2), C3(128, 128, 3))  # 1/16
        self.s5 = nn.Sequential(ConvBNSiLU(128, 256, 3, 2), C3(256, 256, 1), SPPF(256, 256))  # 1/32
        self.lat5 = ConvBNSiLU(256, 128, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = C3(256, 128, 1, shortcut=False)
        self.lat4 = ConvBNSiLU(128, 64, 1)
        self.td3 = C3(128, 64, 1, shortcut=False)
        self.down3 = ConvBNSiLU(64, 64, 3, 2)
        self.bu4 = C3(128, 128, 1, shortcut=False)
        self.down4 = ConvBNSiLU(128, 128, 3, 2)
        self.bu5 = C3(256, 256, 1, shortcut=False)
        self.detect = Detect(nc, (64, 128, 256), (8, 16, 32), image_size)

    def forward(self, x):
        p3 = self.s3(self.s2(self.stem(x)))
        p4 = self.s4(p3)
        p5 = self.s5(p4)
        h5 = self.lat5(p5)
        n4 = self.td4(torch.cat((self.up(h5), p4), 1))
        h4 = self.lat4(n4)
        o3 = self.td3(torch.cat((F.interpolate(h4, scale_factor=2.0, mode="nearest"), p3), 1))
        o4 = self.bu4(torch.cat((self.down3(o3), h4), 1))
        o5 = self.bu5(torch.cat((self.down4(o4), h5), 1))
        return self.detect([o3, o4, o5])


# --------------------------------------------------------------------------------------
# DBNet-style text detector (PaddleOCR's det layout: MobileNetV3 backbone, DBFPN, DBHead)
# --------------------------------------------------------------------------------------
class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(F.relu(self.fc1(self.pool(x)))))


class InvertedResidual(nn.Module):
    def __init__(self, cin, mid, cout, k, s, se, hswish):
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers = []
        if mid != cin:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), act()]
        layers += [nn.Conv2d(mid, mid, k, s, k // 2, groups=mid, bias=False), nn.BatchNorm2d(mid), act()]
        if se:
            layers.append(SqueezeExcite(mid))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class DBNetSmall(nn.Module):
    # (kernel, expanded, out, squeeze-excite, hardswish, stride); stages end at 1/4..1/32
    config = [
        [(3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1)],
        [(5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1)],
        [(3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 480, 112, True, True, 1),
         (3, 672, 112, True, True, 1)],
        [(5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1)],
    ]

    def __init__(self, neck=96):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        stages, cin, outs = [], 16, []
        for stage in self.config:
            blocks = []
            for k, mid, cout, se, hs, s in stage:
                blocks.append(InvertedResidual(cin, mid, cout, k, s, se, hs))
                cin = cout
            stages.append(nn.Sequential(*blocks))
            outs.append(cin)
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck, 1, bias=False) for c in outs)
        self.smooth = nn.ModuleList(nn.Conv2d(neck, neck // 4, 3, padding=1, bias=False) for _ in outs)
        q = neck // 4
        self.head = nn.Sequential(
            nn.Conv2d(neck, q, 3, padding=1, bias=False), nn.BatchNorm2d(q), nn.ReLU(),
            nn.ConvTranspose2d(q, q, 2, 2), nn.BatchNorm2d(q), nn.ReLU(),
            nn.ConvTranspose2d(q, 1, 2, 2), nn.Sigmoid(),
        )

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        c2, c3, c4, c5 = (lat(f) for lat, f in zip(self.lateral, feats))
        o4 = c4 + F.interpolate(c5, scale_factor=2.0, mode="nearest")
        o3 = c3 + F.interpolate(o4, scale_factor=2.0, mode="nearest")
        o2 = c2 + F.interpolate(o3, scale_factor=2.0, mode="nearest")
        p5, p4, p3, p2 = (sm(t) for sm, t in zip(reversed(self.smooth), (c5, o4, o3, o2)))
        p5 = F.interpolate(p5, scale_factor=8.0, mode="bilinear", align_corners=False)
        p4 = F.interpolate(p4, scale_factor=4.0, mode="bilinear", align_corners=False)
        p3 = F.interpolate(p3, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.head(torch.cat((p5, p4, p3, p2), 1))


# --------------------------------------------------------------------------------------
# CRNN text recognizer
# --------------------------------------------------------------------------------------
class BidirectionalLSTM(nn.Module):
    def __init__(self, cin, hidden, cout):
        super().__init__()
        self.rnn = nn.LSTM(cin, hidden, bidirectional=True)
        self.embedding = nn.Linear(hidden * 2, cout)

    def forward(self, x):
        recurrent, _ = self.rnn(x)
        t, b, h = recurrent.size()
        return self.embedding(recurrent.view(t * b, h)).view(t, b, -1)


class CRNN(nn.Module):
    def __init__(self, nclass=37, hidden=256):
        super().__init__()

        def conv(cin, cout, k=3, p=1, bn=False):
            layers = [nn.Conv2d(cin, cout, k, 1, p)]
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.ReLU(inplace=True)]

        self.cnn = nn.Sequential(
            *conv(1, 64), nn.MaxPool2d(2, 2),  # 16x64
            *conv(64, 128), nn.MaxPool2d(2, 2),  # 8x32
            *conv(128, 256, bn=True), *conv(256, 256), nn.MaxPool2d((2, 2), (2, 1), (0, 1)),  # 4x33
            *conv(256, 512, bn=True), *conv(512, 512), nn.MaxPool2d((2, 2), (2, 1), (0, 1)),  # 2x34
            *conv(512, 512, k=2, p=0, bn=True),  # 1x33
        )
        self.rnn = nn.Sequential(BidirectionalLSTM(512, hidden, hidden), BidirectionalLSTM(hidden, hidden, nclass))

    def forward(self, x):
        features = self.cnn(x).squeeze(2).permute(2, 0, 1)  # [T, batch, 512]
        return F.log_softmax(self.rnn(features), dim=2)


class AudioLSTM(nn.Module):
    def __init__(self, bands=40, hidden=256, nclass=12):
        super().__init__()
        self.frontend = nn.Sequential(nn.Conv1d(bands, 128, 3, padding=1), nn.BatchNorm1d(128), nn.ReLU(inplace=True))
        self.rnn = nn.LSTM(128, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, nclass)

    def forward(self, features):  # [batch, frames, bands]
        x = self.frontend(features.transpose(1, 2)).transpose(1, 2)
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class UNetSeg(nn.Module):
    def __init__(self, nclass=2, width=32):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        w = [width, width * 2, width * 4, width * 8]
        self.down = nn.ModuleList([block(3, w[0]), block(w[0], w[1]), block(w[1], w[2])])
        self.bottom = block(w[2], w[3])
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in (2, 1, 0)])
        self.merge = nn.ModuleList([block(w[i] * 2, w[i]) for i in (2, 1, 0)])
        self.head = nn.Conv2d(w[0], nclass, 1)

    def forward(self, x):
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


# --------------------------------------------------------------------------------------
# Keyword spotter with data-dependent branches (scripted, so the branches become If nodes)
# --------------------------------------------------------------------------------------
class AudioKWS(nn.Module):
    def __init__(self, nclass: int = 35):
        super().__init__()
        self.frontend = nn.Conv1d(1, 64, kernel_size=400, stride=160, padding=200, bias=False)
        self.frontend_bn = nn.BatchNorm1d(64)
        self.conv_a = nn.Conv1d(64, 128, 3, padding=1)
        self.conv_b = nn.Conv1d(64, 128, 1)
        self.conv2 = nn.Conv1d(128, 128, 3, padding=2, dilation=2, groups=4)
        self.conv2_bn = nn.BatchNorm1d(128)
        self.fc = nn.Linear(128, nclass)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.unsqueeze(1)  # [batch, 1, samples]
        peak = x.abs().max()
        if peak > 1.0:  # clipping guard: normalise loud input
            x = x / peak
        x = torch.log1p(torch.relu(self.frontend_bn(self.frontend(x))))
        if x.mean() > 0.5:
            y = self.conv_a(x)
            if y.std() > 1.0:
                y = y * 0.5
        else:
            y = self.conv_b(x)
        y = torch.relu(self.conv2_bn(self.conv2(torch.relu(y))))
        return self.fc(y.mean(dim=2))


# --------------------------------------------------------------------------------------
# Reference MAC counts (Conv, ConvTranspose, Linear, LSTM layers, counted with hooks)
# --------------------------------------------------------------------------------------
def layer_macs(model, inputs):
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.LSTM):
            x = inp[0]
            t, b = x.shape[0], x.shape[1]
            h, d = m.hidden_size, 2 if m.bidirectional else 1
            cin = m.input_size
            for _ in range(m.num_layers):
                total[0] += t * b * d * 4 * h * (cin + h)
                cin = h * d
            return
        y = out
        if isinstance(m, nn.Linear):
            total[0] += y.numel() * m.in_features
        elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
            total[0] += y.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
        elif isinstance(m, nn.ConvTranspose2d):
            total[0] += inp[0].numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.LSTM))]
    with torch.no_grad():
        model(*inputs)
    for h in handles:
        h.remove()
    return total[0]


# torchvision's documented cost of each classifier at 224x224 (its "GFLOPS" column, which
# counts one multiply-add as one operation, i.e. GMACs).
TORCHVISION_GMACS = {
    "resnet18": 1.81, "resnet50": 4.09, "mobilenet_v2": 0.30, "mobilenet_v3_small": 0.06,
    "efficientnet_b0": 0.39, "shufflenet_v2_x1_0": 0.14, "squeezenet1_0": 0.82,
    "densenet121": 2.83, "vgg11": 7.61, "vit_b_16": 17.56,
}


# --------------------------------------------------------------------------------------
# Model list
# --------------------------------------------------------------------------------------
def torchvision_model(name):
    model = getattr(torchvision.models, name)(weights=None)
    if name == "vit_b_16":
        # torchvision zero-initialises ViT's classifier, which would make every output 0
        # and the comparison with onnxruntime below vacuous.
        nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


def image(b, size=224, channels=3):
    return torch.randn(b, channels, size, size)


def bert_inputs(b, s):
    ids = torch.randint(1, 30522, (b, s), dtype=torch.long)
    mask = torch.ones(b, s, dtype=torch.long)
    mask[1:, s // 2:] = 0  # padding in the second sequence
    ids[mask == 0] = 0
    return ids, mask


def specs():
    out = []
    for name in TORCHVISION_NAMES:
        out.append(dict(
            name=name, kind="torchvision", build=lambda n=name: torchvision_model(n),
            example=lambda: (image(1),), check=lambda: (image(2),),
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            check_shapes=[[2, 1000]], vernier_args=["--dim", "batch=1"],
            reference_gmacs=TORCHVISION_GMACS[name], reference_source="torchvision docs (batch 1)",
        ))
    out.append(dict(
        name="bert_base", kind="custom", build=BertBase,
        example=lambda: bert_inputs(1, 128), check=lambda: bert_inputs(2, 16),
        input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state", "pooler_output"],
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                      "last_hidden_state": {0: "batch", 1: "seq"}, "pooler_output": {0: "batch"}},
        check_shapes=[[2, 16, 768], [2, 768]], vernier_args=["--dim", "batch=1", "--dim", "seq=128"],
        # Linear layers (from the hooks) plus attention's two batched matmuls per layer:
        # 2 * 12 layers * seq^2 * hidden.
        extra_macs=2 * 12 * 128 * 128 * 768,
        reference_source="Linear layers + attention matmuls, batch 1, seq 128",
    ))
    out.append(dict(
        name="yolo_small", kind="custom", build=YoloSmall,
        example=lambda: (image(1, 320),), check=lambda: (image(1, 320),),
        input_names=["images"], output_names=["detections"], dynamic_axes=None,
        check_shapes=[[1, 6300, 85]], vernier_args=[],
        reference_source="Conv layers",
    ))
    out.append(dict(
        name="ocr_det_db", kind="custom", build=DBNetSmall,
        example=lambda: (image(1, 640),), check=lambda: (image(1, 640),),
        input_names=["image"], output_names=["prob_map"], dynamic_axes=None,
        check_shapes=[[1, 1, 640, 640]], vernier_args=[],
        reference_source="Conv and ConvTranspose layers",
    ))
    out.append(dict(
        name="ocr_rec_crnn", kind="custom", build=CRNN,
        example=lambda: (torch.randn(1, 1, 32, 128),), check=lambda: (torch.randn(1, 1, 32, 128),),
        input_names=["image"], output_names=["log_probs"], dynamic_axes=None,
        check_shapes=[[33, 1, 37]], vernier_args=[],
        reference_source="Conv, LSTM and Linear layers",
    ))
    out.append(dict(
        name="audio_kws_if", kind="scripted", build=AudioKWS,
        # Loud input (peak > 1) so the first If takes its then-branch on the check run.
        example=lambda: (torch.randn(1, 16000) * 2.0,), check=lambda: (torch.randn(1, 16000) * 2.0,),
        input_names=["waveform"], output_names=["logits"], dynamic_axes=None,
        check_shapes=[[1, 35]], vernier_args=[],
        reference_source="Conv1d and Linear layers on the branch taken for the check input",
    ))
    out.append(dict(
        name="audio_lstm", kind="custom", build=AudioLSTM,
        example=lambda: (torch.randn(1, 98, 40),), check=lambda: (torch.randn(1, 98, 40),),
        input_names=["features"], output_names=["logits"], dynamic_axes=None,
        check_shapes=[[1, 12]], vernier_args=[],
        reference_source="Conv1d, LSTM and Linear layers",
    ))
    out.append(dict(
        name="unet_seg", kind="custom", build=UNetSeg,
        example=lambda: (image(1, 256),), check=lambda: (image(1, 256),),
        input_names=["image"], output_names=["mask_logits"], dynamic_axes=None,
        check_shapes=[[1, 2, 256, 256]], vernier_args=[],
        reference_source="Conv and ConvTranspose layers",
    ))
    for source in ("resnet18", "mobilenet_v2", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16"):
        out.append(dict(
            name=f"{source}_int8_qdq", kind="quantized", source=source,
            check=lambda: (image(2),), input_names=["input"], output_names=["logits"],
            check_shapes=[[2, 1000]], vernier_args=["--dim", "batch=1"], calibration=random_images,
            reference_gmacs=TORCHVISION_GMACS[source], reference_source=f"same network as {source}",
            # onnxruntime's symbolic shape inference fails on ViT's attention reshapes too.
            pre_process=dict(skip_symbolic_shape=True) if source == "vit_b_16" else {},
        ))
    out.append(dict(
        name="bert_base_int8_qdq", kind="quantized", source="bert_base",
        check=lambda: bert_inputs(2, 16), input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state", "pooler_output"], check_shapes=[[2, 16, 768], [2, 768]],
        vernier_args=["--dim", "batch=1", "--dim", "seq=128"], calibration=random_sentences,
        # onnxruntime's symbolic shape inference gives up on the exported attention
        # ("Incomplete symbolic shape inference"); ONNX's own shape inference still runs.
        pre_process=dict(skip_symbolic_shape=True),
        extra_macs=2 * 12 * 128 * 128 * 768, reference_source="same network as bert_base",
    ))
    return out


# --------------------------------------------------------------------------------------
# Export, quantization, checks
# --------------------------------------------------------------------------------------
def export_torch(spec, path):
    torch.manual_seed(SEED)
    model = spec["build"]().eval()
    if spec["kind"] == "scripted":
        module = torch.jit.script(model)
    else:
        module = model
    torch.manual_seed(SEED + 1)
    example = spec["example"]()
    tmp = path.with_suffix(".onnx.partial")
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its own deprecation and about Python
        # control flow it traces as constants (shape checks in torchvision and MHA).
        # Not under torch.no_grad(): there nn.MultiheadAttention (vit_b_16) takes its fast
        # path, aten::_native_multi_head_attention, which the exporter cannot convert.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, example, str(tmp), dynamo=False, opset_version=OPSET,
            input_names=spec["input_names"], output_names=spec["output_names"],
            dynamic_axes=spec["dynamic_axes"], do_constant_folding=True,
        )
    os.replace(tmp, path)

    torch.manual_seed(SEED + 2)
    check_inputs = spec["check"]()
    with torch.no_grad():
        expected = module(*check_inputs)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    macs = layer_macs(model, check_inputs if spec["kind"] == "scripted" else example)
    return check_inputs, [t.numpy() for t in expected], macs


# Calibration data for quantize_static: a few random inputs (random weights give no
# meaningful activation ranges anyway; this only exercises the tool).
def random_images(count=8):
    rng = np.random.default_rng(SEED)
    return [{"input": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)} for _ in range(count)]


def random_sentences(count=8):
    rng = np.random.default_rng(SEED)
    return [{"input_ids": rng.integers(1, 30522, (1, 128), dtype=np.int64),
             "attention_mask": np.ones((1, 128), dtype=np.int64)} for _ in range(count)]


def quantize(source_path, path, calibration, pre_process):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration())

        def get_next(self):
            return next(self.items, None)

    pre = path.with_suffix(".pre.onnx")
    tmp = path.with_suffix(".onnx.partial")
    cwd = os.getcwd()
    try:
        # onnxruntime's shape inference writes temporary files (a model and, for large
        # ones, a 400 MB external-data file) into the working directory and leaves them
        # there when it fails: give it a scratch folder instead of the caller's.
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            os.chdir(scratch)
            try:
                quant_pre_process(str(source_path), str(pre), **pre_process)
            finally:
                os.chdir(cwd)
        quantize_static(
            str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
        )
        os.replace(tmp, path)
    finally:
        for p in (pre, tmp):
            if p.exists():
                p.unlink()


def run_ort(path, spec, inputs):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {n: (t.numpy() if isinstance(t, torch.Tensor) else t) for n, t in zip(spec["input_names"], inputs)}
    t = time.perf_counter()
    outputs = session.run(None, feed)
    return outputs, time.perf_counter() - t


def graph_stats(path):
    model = onnx.load(str(path), load_external_data=False)
    ops, sub = {}, [0]

    def walk(graph, top):
        for node in graph.node:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
            if not top:
                sub[0] += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g, False)
                for g in attr.graphs:
                    walk(g, False)

    walk(model.graph, True)

    def shape(vi):
        dims = vi.type.tensor_type.shape.dim
        return [d.dim_param if d.dim_param else d.dim_value for d in dims]

    def dtype(vi):
        return onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name

    return {
        "nodes": len(model.graph.node), "subgraph_nodes": sub[0],
        "op_types": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "inputs": [{"name": i.name, "dtype": dtype(i), "shape": shape(i)} for i in model.graph.input],
        "outputs": [{"name": o.name, "dtype": dtype(o), "shape": shape(o)} for o in model.graph.output],
    }


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make(spec, out_dir, built, fp):
    path = out_dir / f"{spec['name']}.onnx"
    start = time.perf_counter()
    if spec["kind"] == "quantized":
        quantize(built[spec["source"]], path, spec["calibration"], spec.get("pre_process", {}))
        torch.manual_seed(SEED + 2)
        check_inputs, expected = spec["check"](), None
        macs = None
    else:
        check_inputs, expected, macs = export_torch(spec, path)
    export_seconds = time.perf_counter() - start

    onnx.checker.check_model(str(path), full_check=True)
    outputs, run_seconds = run_ort(path, spec, check_inputs)
    shapes = [list(o.shape) for o in outputs]
    if shapes != spec["check_shapes"]:
        raise SystemExit(f"export_real_models: {spec['name']}: onnxruntime gave output shapes "
                         f"{shapes}, expected {spec['check_shapes']}")
    max_diff = scale = None
    if expected is not None:
        # Relative to the largest output: with random weights and BatchNorm at its initial
        # statistics some classifiers' logits are as small as 1e-9.
        max_diff = max(float(np.max(np.abs(o.astype(np.float64) - e.astype(np.float64))))
                       for o, e in zip(outputs, expected))
        scale = max(float(np.max(np.abs(e))) for e in expected)
        if not (scale > 0 and max_diff <= 1e-4 * scale):
            raise SystemExit(f"export_real_models: {spec['name']}: onnxruntime differs from torch "
                             f"by {max_diff} (largest output {scale})")

    gmacs = spec.get("reference_gmacs")
    if gmacs is None and macs is not None:
        gmacs = round((macs + spec.get("extra_macs", 0)) / 1e9, 4)
    entry = {
        "name": spec["name"], "file": path.name, "bytes": path.stat().st_size, "sha256": sha256(path),
        "exporter": ("onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, "
                     f"uint8 activations) of {spec['source']}.onnx"
                     if spec["kind"] == "quantized" else
                     "torch.onnx.export(dynamo=False)" + (" of torch.jit.script(module)"
                                                          if spec["kind"] == "scripted" else "")),
        **graph_stats(path),
        "check": {"input_shapes": [list(t.shape) for t in check_inputs], "output_shapes": shapes,
                  "max_abs_diff_vs_torch": max_diff, "max_abs_output": scale,
                  "ort_seconds": round(run_seconds, 4)},
        "export_seconds": round(export_seconds, 2),
        "vernier_args": spec["vernier_args"],
        "reference_gmacs": gmacs, "reference_source": spec["reference_source"],
        "fingerprint": fp,
    }
    return path, entry


def print_table(manifest, names):
    rows = [("file", "MB", "nodes", "sub", "ops", "op types (most frequent first)")]
    total = 0
    for name in names:
        e = manifest["models"].get(name)
        if not e:
            continue
        total += e["bytes"]
        rows.append((e["file"], f"{e['bytes'] / 1e6:.1f}", str(e["nodes"]), str(e["subgraph_nodes"]),
                     str(len(e["op_types"])), ", ".join(e["op_types"])))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.rjust(w) if 0 < i < 5 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[5])
    print(f"total {total / 1e6:.1f} MB in {len(rows) - 1} models")


def main(args):
    by_name = {s["name"]: s for s in specs()}
    if sorted(by_name) != sorted(TORCHVISION_NAMES + OTHER_NAMES):
        raise SystemExit("export_real_models: the model lists disagree")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    manifest = load_manifest(out_dir)
    fp = fingerprint()

    built, changed = {}, []
    for name in args.todo:
        path = out_dir / f"{name}.onnx"
        spec = by_name[name]
        if not args.force and SOURCES.get(name) not in changed and is_current(manifest, out_dir, name, fp):
            built[name] = path
            continue
        print(f"export_real_models: {name} ...", file=sys.stderr, flush=True)
        path, entry = make(spec, out_dir, built, fp)
        built[name] = path
        changed.append(name)
        manifest["models"][name] = entry
        manifest["generator"] = fp
        tmp = manifest_path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, manifest_path)
        print(f"export_real_models: {name}: {entry['bytes'] / 1e6:.1f} MB, {entry['nodes']} nodes, "
              f"export {entry['export_seconds']} s, outputs {entry['check']['output_shapes']}, "
              f"max |ort - torch| {entry['check']['max_abs_diff_vs_torch']} (max |output| "
              f"{entry['check']['max_abs_output']})", file=sys.stderr, flush=True)

    if changed or args.table:
        print_table(manifest, args.todo)


if __name__ == "__main__":
    main(ARGS)
