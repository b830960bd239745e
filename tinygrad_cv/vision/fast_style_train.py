"""Teach a pretrained multi-style network a new style: only a new (gamma, beta) per normalisation layer.

Dumoulin, Shlens & Kudlur 2017, section 4.2: with the convolutions of the 26-style network frozen, a
new painting is learnt by training one more scale-and-shift pair per conditional instance
normalisation (990 numbers here), starting from the mean of the existing styles' pairs. The loss is
Johnson, Alahi & Fei-Fei's (2016) perceptual loss on VGG16: content at relu2_2 (our ``conv2_2``) and
Gram matrices at relu1_2, relu2_2, relu3_3 and relu4_3, on random crops and flips of the photos that
ship with scikit-image.

Where this departs from the papers, and why:
- Both terms are *relative* squared errors, as in ``vision/style.py`` (sum((G - A)^2) / sum(A^2), the
  style term averaged over its four layers), so one pair of weights works for any painting.
- Few parameters and a frozen network train in minutes on a CPU: 128 px crops, two per step, a few
  hundred Adam steps, instead of 256 px crops for 40,000 steps.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import tinygrad_cv.functional as F
from tinygrad_cv import backend, no_grad
from tinygrad_cv.io.cache import atomic_write
from tinygrad_cv.optim import Adam
from tinygrad_cv.tensor import Tensor
from tinygrad_cv.vision.fast_style import save_style_file
from tinygrad_cv.vision.image import resize, to_rgb_uint8
from tinygrad_cv.vision.style import fit_longest_side

CONTENT_LAYER = "conv2_2"  # Johnson et al. 2016, section 3.1: relu2_2
STYLE_LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")  # ibid., relu1_2 ... relu4_3
# scikit-image's colour photos, and two grey ones made RGB: the training pool.
TRAIN_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                "stereo_motorcycle", "camera", "clock", "coins")
# Never trained on: scikit-learn's two photos and matplotlib's Grace Hopper (held-out evaluation).
HELD_OUT_PHOTOS = ("china.jpg", "flower.jpg", "grace_hopper.jpg")


@dataclass(frozen=True)
class TrainSettings:
    """The defaults train a style in about 10 minutes on 2 cores (see PERFORMANCE.md)."""

    steps: int = 500
    crop: int = 128  # training crop side; the photos are first scaled so their short side is 1.5x this
    batch: int = 2
    lr: float = 0.02  # Adam on gamma and beta, which start near 1 and 0
    style_size: int = 256  # longest side of the painting when its Gram matrices are taken
    content_weight: float = 1.0
    style_weight: float = 5.0  # relative losses: about the balance of the pretrained styles
    checkpoint_every: int = 50
    seed: int = 0

    def check(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.crop < 16 or self.style_size < 32 or self.checkpoint_every < 1:
            raise ValueError(f"need steps, batch, checkpoint_every >= 1, crop >= 16 and style_size >= 32, got {self}")
        if not (self.lr > 0 and self.content_weight >= 0 and self.style_weight > 0):
            raise ValueError(f"need lr > 0, content_weight >= 0 and style_weight > 0, got {self}")


@dataclass
class TrainResult:
    step: int
    history: List[Dict[str, float]]  # one dict of loss terms per step
    interrupted: bool


# ---- photos -------------------------------------------------------------------------------------------
def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
    return to_rgb_uint8(np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3])


def held_out_photo(name: str) -> np.ndarray:
    if name == "grace_hopper.jpg":
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
            return to_rgb_uint8(img)
    from tinygrad_cv.vision.samples import sample_photo

    return sample_photo(name)


def training_photos(crop: int) -> List[np.ndarray]:
    """The training pool, each scaled so that its short side is 1.5 x crop."""
    photos = []
    for name in TRAIN_PHOTOS:
        photo = _skimage_photo(name)
        h, w = photo.shape[:2]
        scale = 1.5 * crop / min(h, w)
        photos.append(resize(photo, (max(crop, round(h * scale)), max(crop, round(w * scale)))))
    return photos


def held_out_views(count: int = 10, side: int = 160, seed: int = 1234) -> List[np.ndarray]:
    """``count`` fixed square crops (seeded) of the held-out photos, scaled to 2 x side on the long side."""
    rng = np.random.default_rng(seed)
    photos = [fit_longest_side(held_out_photo(name), 2 * side) for name in HELD_OUT_PHOTOS]
    views = []
    for i in range(count):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
        views.append(photo[top:top + side, left:left + side])
    return views


def random_batch(photos: Sequence[np.ndarray], crop: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """(batch, 3, crop, crop) float32 in [0, 1]: random photo, random crop, random left-right flip."""
    out = np.empty((batch, 3, crop, crop), np.float32)
    for i in range(batch):
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(0, photo.shape[0] - crop + 1), rng.integers(0, photo.shape[1] - crop + 1)
        patch = photo[top:top + crop, left:left + crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        out[i] = patch.transpose(2, 0, 1) / 255.0
    return out


# ---- losses ---------------------------------------------------------------------------------------------
def _tensor(array: np.ndarray, device: str) -> Tensor:
    return Tensor(backend.to_device(array, device))


def style_targets(vgg: Any, painting: np.ndarray, size: int) -> Dict[str, Tensor]:
    """The painting's Gram matrices at STYLE_LAYERS, (1, C, C) each, painting scaled to ``size``."""
    x = _tensor(fit_longest_side(to_rgb_uint8(painting), size).transpose(2, 0, 1)[None] / np.float32(255), vgg.device)
    with no_grad():
        feats = vgg(vgg.normalize(x), layers=STYLE_LAYERS)
        return {name: F.gram_matrix(feats[name]) for name in STYLE_LAYERS}


def _relative(value: Tensor, target: Tensor) -> Tensor:
    """sum((value - target)^2) / sum(target^2) per image, averaged over the batch (target broadcasts)."""
    diff = value - target
    scale = float((target.data.astype(np.float64) ** 2).sum()) * value.shape[0] / target.shape[0] + 1e-12
    return (diff * diff).sum() / scale


def perceptual_losses(vgg: Any, stylized: Tensor, photos: Tensor, targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """{'content': ..., 'style': ...}: relative content error at CONTENT_LAYER, relative Gram error
    averaged over STYLE_LAYERS."""
    feats = vgg(vgg.normalize(stylized), layers=STYLE_LAYERS)
    with no_grad():
        content_target = vgg(vgg.normalize(photos), layers=[CONTENT_LAYER])[CONTENT_LAYER]
    style = sum(_relative(F.gram_matrix(feats[n]), targets[n]) for n in STYLE_LAYERS) / len(STYLE_LAYERS)
    return {"content": _relative(feats[CONTENT_LAYER], content_target), "style": style}


def relative_style_loss(net: Any, style_weights: Any, vgg: Any, targets: Dict[str, Tensor],
                        photos: Sequence[np.ndarray]) -> float:
    """Mean relative Gram error of the network's pictures of ``photos`` (one at a time) to ``targets``."""
    values = []
    with no_grad():
        for photo in photos:
            x = _tensor(photo.transpose(2, 0, 1)[None] / np.float32(255), vgg.device)
            feats = vgg(vgg.normalize(net(x, style_weights)), layers=STYLE_LAYERS)
            values.append(float(sum(_relative(F.gram_matrix(feats[n]), targets[n]).item()
                                    for n in STYLE_LAYERS) / len(STYLE_LAYERS)))
    return float(np.mean(values))


# ---- the trainable style ----------------------------------------------------------------------------------
def start_parameters(net: Any) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """The mean of the network's styles' (gamma, beta), per layer: the starting point of a new style."""
    from tinygrad_cv.vision.fast_style import style_parameters

    return style_parameters(net, np.full(net.styles, 1.0 / net.styles, np.float32))


def single_style_copy(net: Any, gammas: Dict[str, np.ndarray], betas: Dict[str, np.ndarray]) -> Any:
    """A network of the same class with one style (the given pair), sharing the frozen convolutions."""
    from tinygrad_cv.nn.module import Parameter

    student = type(net)(styles=1)
    frozen = {name: p for name, p in net.named_parameters() if name.endswith(".w")}
    for name, p in student.named_parameters():
        if name.endswith(".w"):
            p.data, p.requires_grad = frozen[name].data, False
    for name, norm in student.norms():
        layer = name[: -len(".norm")]
        norm.gamma = Parameter(backend.to_device(gammas[layer].reshape(1, -1).astype(np.float32), net.device))
        norm.beta = Parameter(backend.to_device(betas[layer].reshape(1, -1).astype(np.float32), net.device))
    return student


def _pairs(student: Any) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    gammas = {n[: -len(".norm")]: backend.to_device(m.gamma.data[0], "cpu") for n, m in student.norms()}
    betas = {n[: -len(".norm")]: backend.to_device(m.beta.data[0], "cpu") for n, m in student.norms()}
    return gammas, betas


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.stem + ".ckpt.npz")


def _save_checkpoint(path: Path, student: Any, opt: Adam, rng: np.random.Generator, step: int,
                     history: List[Dict[str, float]], settings: TrainSettings) -> None:
    arrays = {f"param.{name}": backend.to_device(p.data, "cpu") for name, p in student.named_parameters()
              if not name.endswith(".w")}
    arrays.update({f"adam.{k}": backend.to_device(v, "cpu") for k, v in opt.state_dict().items()})
    meta = {"step": step, "history": history, "rng": rng.bit_generator.state, "settings": asdict(settings)}
    with atomic_write(path) as f:
        np.savez(f, **arrays, __meta__=np.array(json.dumps(meta)))


def _load_checkpoint(path: Path, student: Any, opt: Adam, settings: TrainSettings) -> Tuple[int, list, dict]:
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint {path} (it is written every --checkpoint-every steps)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        for name, p in student.named_parameters():
            if not name.endswith(".w"):
                if arrays[f"param.{name}"].shape != p.shape:
                    raise ValueError(f"{name} has shape {arrays[f'param.{name}'].shape}, expected {p.shape}")
                p.data = backend.to_device(arrays[f"param.{name}"], p.device)
        opt.load_state_dict({k[len("adam."):]: v for k, v in arrays.items() if k.startswith("adam.")})
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a checkpoint of this network ({type(exc).__name__}: {exc})") from None
    saved = {k: v for k, v in meta["settings"].items() if k not in ("steps", "checkpoint_every")}
    now = {k: v for k, v in asdict(settings).items() if k not in ("steps", "checkpoint_every")}
    if saved != now:
        changed = sorted(k for k in now if saved.get(k) != now[k])
        raise ValueError(f"{path} was trained with other settings ({', '.join(changed)}); resume with the same ones")
    return meta["step"], meta["history"], meta["rng"]


def train_style(net: Any, vgg: Any, painting: np.ndarray, output: Path, settings: TrainSettings = TrainSettings(),
                resume: bool = False, info: Optional[Dict[str, Any]] = None,
                callbacks: Sequence[Callable[[int, Dict[str, float]], None]] = (), progress: bool = True) -> TrainResult:
    """Learn a (gamma, beta) pair per layer for ``painting``; write the style file ``output`` (and a
    resumable checkpoint beside it) every ``checkpoint_every`` steps, at the end, and on Ctrl-C."""
    from tqdm import tqdm

    settings.check()
    output = Path(output)
    student = single_style_copy(net, *start_parameters(net))
    params = [p for name, p in student.named_parameters() if not name.endswith(".w")]
    opt = Adam(params, lr=settings.lr)
    rng = np.random.default_rng(settings.seed)
    step, history = 0, []
    if resume:
        step, history, rng_state = _load_checkpoint(checkpoint_path(output), student, opt, settings)
        rng.bit_generator.state = rng_state
    photos = training_photos(settings.crop)
    targets = style_targets(vgg, painting, settings.style_size)
    one = np.ones(1, np.float32)

    def save() -> None:
        _save_checkpoint(checkpoint_path(output), student, opt, rng, step, history, settings)
        save_style_file(output, *_pairs(student), {**(info or {}), "steps": step, "settings": asdict(settings)})

    bar = tqdm(total=settings.steps, initial=step, unit="step", dynamic_ncols=True, disable=not progress,
               desc="training the style")
    interrupted = False
    try:
        while step < settings.steps:
            photos_batch = _tensor(random_batch(photos, settings.crop, settings.batch, rng), net.device)
            terms = perceptual_losses(vgg, student(photos_batch, one), photos_batch, targets)
            loss = terms["content"] * settings.content_weight + terms["style"] * settings.style_weight
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            values = {k: float(v.item()) for k, v in terms.items()}
            if not all(math.isfinite(v) for v in values.values()):
                raise RuntimeError(f"the loss became non-finite at step {step} ({values}); try a smaller --lr")
            history.append(values)
            bar.update(1)
            bar.set_postfix(content=f"{values['content']:.3f}", style=f"{values['style']:.3f}", refresh=False)
            for callback in callbacks:
                callback(step, values)
            if step % settings.checkpoint_every == 0 or step == settings.steps:
                save()
    except KeyboardInterrupt:
        interrupted = True
        save()
    finally:
        bar.close()
    return TrainResult(step, history, interrupted)
