"""Fashion-MNIST as qforge's fixture makers read it: the IDX files of Debian's dataset package,
raw pixels scaled to [0, 1] (what the exported models take), and the dataset normalisation as a
module that exports as a Sub and a Div at the start of the graph.

Shared by tools/train_fashion_mnist.py and tools/make_qat_fixtures.py.
"""

import gzip
import os
import struct

import numpy as np
import torch
import torch.nn as nn

MEAN = 0.2860
STD = 0.3530
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: unexpected IDX magic {magic:#x}")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load_split(data_dir, split):
    """Images (N x 1 x 28 x 28 float32 in [0, 1]) and labels (int64) of "train" or "test"."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


class Normalize(nn.Module):
    """(x - mean) / std in float; exported as Sub and Div with [1,1,1,1] initializers."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.full((1, 1, 1, 1), mean, dtype=torch.float32))
        self.register_buffer("std", torch.full((1, 1, 1, 1), std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std
