"""Images as pixel tokens (CADD §5.2): every channel value of every pixel is one token (``--data image:NAME``).

- ``image:digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 17 gray levels 0–16; no download),
  for tests and quick presets;
- ``image:cifar10``: CIFAR-10's 32×32 RGB training images through HF ``datasets`` (256 values, n = 3072 tokens;
  the hub is needed once, offline it is one line);
- ``image:imagenet32``: ImageNet-1k's 1.28M training images at 32×32 (a hub copy of the box-resized set of
  Chrabaszcz et al. 2017, the resolution of CADD Table 2), the same way; 3.9 GB as one byte per token;
- ``image:PATH``: a folder of PNG images of one size (gray or RGB, 256 values).

Rows are the images in row-major order, channels last (pixel (0, 0) R, G, B, then (0, 1), …); the last 5 % are
validation, as for token arrays. :func:`image_grid` turns sampled rows back into one PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from augdiff.data.base import seeded_generator
from augdiff.data.tokens import ArrayDataset, split_rows
from augdiff.errors import AugdiffError
from augdiff.extras import require

__all__ = ["ImageDataset", "load_images", "image_grid"]


class ImageDataset(ArrayDataset):
    """Pixel-token rows with their image shape ``(H, W, C)`` (kept in the data description)."""

    def __init__(self, spec: str, images: np.ndarray, levels: int, flip: float = 0.0, rotate: float = 0.0) -> None:
        self.image_shape = tuple(int(v) for v in images.shape[1:])
        self.flip, self.rotate = float(flip), float(rotate)
        if self.rotate > 0 and self.image_shape[0] != self.image_shape[1]:
            raise AugdiffError(
                f"--data {spec}: image.rotate turns images by quarter turns, which needs square images; these are "
                f"{self.image_shape[0]}×{self.image_shape[1]} (set image.rotate=0)"
            )
        rows = images.reshape(images.shape[0], -1).astype(np.uint8 if levels <= 256 else np.int16, copy=False)
        super().__init__(spec, *split_rows(spec, rows), vocab_size=levels)

    def train_batch(self, seed: int, step: int, global_batch: int, rows: slice | None = None) -> Tensor:
        """The token-array batch, each image mirrored left–right with probability ``flip`` and turned by 90°,
        180° or 270° (one of the three, uniformly) with probability ``rotate`` — the pixel-exact ("blit")
        operations of Karras et al. 2020's augmentation that CADD keeps. Decided per row of the global batch from
        (seed, step), so micro-batches and processes agree and a resume repeats it."""
        batch = super().train_batch(seed, step, global_batch, rows)
        if self.flip == 0.0 and self.rotate == 0.0:
            return batch
        gen = seeded_generator(seed, step, 3)
        mirror = torch.rand(global_batch, generator=gen) < self.flip
        turns = torch.where(
            torch.rand(global_batch, generator=gen) < self.rotate,
            torch.randint(1, 4, (global_batch,), generator=gen),
            0,
        )
        if rows is not None:
            mirror, turns = mirror[rows], turns[rows]
        h, w, c = self.image_shape
        images = batch.view(-1, h, w, c)
        images = torch.where(mirror[:, None, None, None], images.flip(2), images)
        for k in (1, 2, 3) if self.rotate > 0 else ():  # square images: a quarter turn keeps the shape
            images = torch.where((turns == k)[:, None, None, None], images.rot90(k, dims=(1, 2)), images)
        return images.reshape(batch.shape)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "image_shape": list(self.image_shape), "flip": self.flip, "rotate": self.rotate}


def _digits(spec: str) -> tuple[np.ndarray, int]:
    require("sklearn", "images", f"--data {spec}")
    from sklearn.datasets import load_digits

    return load_digits().images.astype(np.int64)[..., None], 17


#: image:NAME → (hub repository, image column) of the training split
HUB_IMAGES = {"cifar10": ("uoft-cs/cifar10", "img"), "imagenet32": ("benjamin-paine/imagenet-1k-32x32", "image")}


def _hub_images(spec: str, name: str) -> tuple[np.ndarray, int]:
    from augdiff.data.hub import load_hub_splits

    repo, column = HUB_IMAGES[name]
    (split,) = load_hub_splits(f"--data {spec} ({name} comes from the Hugging Face hub as {repo})", repo, ["train"])
    images = np.empty((len(split), 32, 32, 3), dtype=np.uint8)  # one byte per token: 3.9 GB for ImageNet-32
    for i, row in enumerate(split):
        images[i] = np.asarray(row[column].convert("RGB"))
    return images, 256


def _folder(spec: str, folder: Path) -> tuple[np.ndarray, int]:
    require("PIL", "images", f"--data {spec}")
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    if len(files) < 2:
        raise AugdiffError(f"--data {spec}: a folder of at least two .png images of one size")
    arrays = [np.asarray(Image.open(f)) for f in files]
    arrays = [a[..., None] if a.ndim == 2 else a[..., :3] for a in arrays]
    if len({a.shape for a in arrays}) != 1:
        raise AugdiffError(f"--data {spec}: the images differ in size (resize them to one size)")
    return np.stack(arrays).astype(np.int64), 256


def load_images(spec: str, name: str, flip: float = 0.0, rotate: float = 0.0) -> ImageDataset:
    """The dataset of ``image:NAME`` (``flip``, ``rotate``: the training images' augmentation probabilities)."""
    if name == "digits":
        images, levels = _digits(spec)
    elif name in HUB_IMAGES:
        images, levels = _hub_images(spec, name)
    elif Path(name).is_dir():
        images, levels = _folder(spec, Path(name))
    else:
        raise AugdiffError(
            f"--data {spec}: use image:digits, image:cifar10, image:imagenet32 or image:FOLDER (of .png files)"
        )
    return ImageDataset(spec, images, levels, flip, rotate)


def image_grid(rows: np.ndarray, shape: tuple[int, ...], levels: int, path: Path, columns: int = 8) -> None:
    """Sampled rows ``[N, H·W·C]`` as one PNG grid (gray levels scaled to 0–255), written atomically."""
    require("matplotlib", "plots", "an image grid")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from augdiff.files import save_figure

    h, w, c = shape
    images = rows.reshape(-1, h, w, c).astype(np.float64) / (levels - 1)
    n = images.shape[0]
    cols = min(columns, n)
    lines = -(-n // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(cols * 1.0, lines * 1.0), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, ..., 0] if c == 1 else images[i], cmap="gray" if c == 1 else None, vmin=0, vmax=1)
    fig.tight_layout(pad=0.1)
    save_figure(fig, path)
    plt.close(fig)
