#!/usr/bin/python3
"""How far torchvision's resize (antialias True and False) is from Pillow's on
the generated inputs of pil-resize-fixtures.py (the references in
dataset/testdata/pil/). BENCHMARKS.md, "Resize filter (issue 11)", quotes it.

    /usr/bin/python3 scripts/resize-vs-torchvision.py   (Debian's python3-torchvision)
"""
import importlib.util
import os

import numpy as np
from PIL import Image
from torchvision.transforms import InterpolationMode, functional as F
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("fixtures", os.path.join(HERE, "pil-resize-fixtures.py"))
fx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fx)
MODES = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}

for name, w, h, mode, filters in fx.CASES:
    if mode != "RGB":
        continue
    a = np.array([fx.pattern(x, y, c, w, h) for y in range(h) for x in range(w) for c in range(3)], dtype=np.uint8)
    t = torch.from_numpy(a.reshape(h, w, 3)).permute(2, 0, 1).contiguous()
    for f in filters:
        if f not in MODES:
            continue
        ref = np.asarray(Image.open(os.path.join(HERE, "..", "dataset", "testdata", "pil", "%s-%s.png" % (name, f)))).astype(int)
        res = []
        for aa in (True, False):
            d = np.abs(F.resize(t, [fx.SIZE, fx.SIZE], interpolation=MODES[f], antialias=aa).permute(1, 2, 0).numpy().astype(int) - ref)
            res.append("antialias=%s max %d mean %.3f" % (aa, d.max(), d.mean()))
        print("%s %s vs Pillow: %s" % (name, f, "; ".join(res)))
