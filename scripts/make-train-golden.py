#!/usr/bin/env python3
"""Make the golden training steps in tests/fixtures/train-golden/ with PyTorch.

A tiny CNN in NCHW float32,

    conv 3->4 @3x3 (pad 1) -> ReLU -> max-pool 2x2 -> conv 4->6 @3x3 (pad 1) -> ReLU
    -> global average pool -> flatten -> dense 6->3 -> softmax cross-entropy (mean),

with fixed weights and one fixed batch of 4 images (3x8x8), takes two optimizer steps
on that batch with each of torch.optim's

    SGD(momentum 0.9, weight_decay 1e-3)                 -- the issue's SGD-momentum step
    SGD(momentum 0.9, weight_decay 1e-3, nesterov=True)
    Adam(weight_decay 1e-3)                               -- the issue's Adam step
    AdamW(weight_decay 1e-2)

and records the loss before each step and every parameter after it. Two steps, so the
momentum buffer and Adam's moments and bias correction are exercised. The Rust test
runtime/tests/train_golden.rs replays the same steps with edgebench's kernels and
optimizers and compares to 1e-5.

Output: tests/fixtures/train-golden/steps.json (float32 values written exactly as
Python floats; layouts are PyTorch's = ONNX's: conv [out, in, kh, kw], dense [out, in]).

Run:  PY=$(bash scripts/python-env.sh torch)
      $PY scripts/make-train-golden.py
"""

import json
import os
import re

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "train-golden")

N, C, H, W = 4, 3, 8, 8
CLASSES = 3
PARAM_NAMES = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "dense.weight", "dense.bias"]

CASES = [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
     dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
    ("nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True),
     dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-3),
     dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-3)),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
     dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2)),
]
STEPS = 2


def initial_params():
    """Fixed weights: seeded uniform, scaled like PyTorch's default init."""
    g = torch.Generator().manual_seed(20261125)

    def u(shape, fan_in):
        bound = 1.0 / fan_in ** 0.5
        return (torch.rand(shape, generator=g) * 2 - 1) * bound

    return {
        "conv1.weight": u((4, 3, 3, 3), 27),
        "conv1.bias": u((4,), 27),
        "conv2.weight": u((6, 4, 3, 3), 36),
        "conv2.bias": u((6,), 36),
        "dense.weight": u((CLASSES, 6), 6),
        "dense.bias": u((CLASSES,), 6),
    }


def forward(p, x):
    y = F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1))
    y = F.max_pool2d(y, 2)
    y = F.relu(F.conv2d(y, p["conv2.weight"], p["conv2.bias"], padding=1))
    y = y.mean(dim=(2, 3))  # global average pool, already [n, c]
    return F.linear(y, p["dense.weight"], p["dense.bias"])


def tensor_json(t):
    a = t.detach().cpu().numpy().astype(np.float32)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(7)
    x = torch.rand((N, C, H, W), generator=g) * 2 - 1
    labels = torch.tensor([0, 2, 1, 2], dtype=torch.int64)
    init = initial_params()

    cases = []
    for name, make, hyper in CASES:
        params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
        opt = make([params[k] for k in PARAM_NAMES])
        steps = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss = F.cross_entropy(forward(params, x), labels)
            loss.backward()
            opt.step()
            steps.append({
                "loss": float(loss.item()),
                "params": {k: tensor_json(params[k]) for k in PARAM_NAMES},
            })
        cases.append({"optimizer": name, **hyper, "steps": steps})

    doc = {
        "made_by": f"scripts/make-train-golden.py with torch {torch.__version__}",
        "model": "conv3x3(3->4,pad 1)+relu, maxpool 2, conv3x3(4->6,pad 1)+relu, gap, dense(6->3), softmax cross-entropy mean",
        "input": tensor_json(x),
        "labels": [int(v) for v in labels],
        "classes": CLASSES,
        "param_names": PARAM_NAMES,
        "initial": {k: tensor_json(v) for k, v in init.items()},
        "cases": cases,
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "steps.json")
    text = json.dumps(doc, indent=1)
    # One line per array of numbers (the file stays small and readable).
    text = re.sub(r"\[[-0-9.e,\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    for c in cases:
        print(c["optimizer"], [round(s["loss"], 6) for s in c["steps"]])


if __name__ == "__main__":
    main()
