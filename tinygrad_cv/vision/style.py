"""Neural style transfer (Gatys, Ecker & Bethge 2015, "A Neural Algorithm of Artistic Style",
arXiv:1508.06576).

Find an image whose VGG features match a *content* image at one deep layer (conv4_2: what is where)
and whose feature *correlations* (Gram matrices) match a *style* image at several layers (conv1_1 ...
conv5_1: which textures and colours occur together, wherever they are). A total-variation term keeps
neighbouring pixels close. The pixels are optimised with L-BFGS, as in the paper.

Where this departs from the paper, and why:
- Gram matrices are averaged over positions, G = F F^T / (H W), and every loss is *relative*: the
  squared error divided by the squared size of its target, sum((G - A)^2) / sum(A^2). Each term is then
  a dimensionless number near 1 at the start, for any image size and any layer, so one set of weights
  works at 128 px and at 512 px and for every layer (the paper's 1/(4 N^2 M^2) factor still leaves
  layer scales apart by orders of magnitude, which its per-layer weights must undo).
- Pixels are optimised in RGB [0, 1] (L-BFGS-B keeps them there with box constraints) and mapped into
  the network's input convention by ``model.normalize``; the paper optimises the network input.
- Several styles are blended by mixing their Gram targets, A = sum_i w_i A_i (as in Johnson's
  neural-style); "original colours" recombines the result's luminance with the content's chroma
  after optimisation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer", the
  luminance-only variant done as a post-process).

Photorealistic transfer (Luan, Paris, Shechtman & Bala 2017, "Deep Photo Style Transfer") adds a
third term, the content's matting Laplacian (vision/matting.py): photo_weight * sum_c V_c^T M V_c, which
is zero when the output is, window by window, an affine recolouring of the content, so edges and
textures stay those of the photo. ``photo_settings()`` is that recipe; ``smooth`` runs the closed-form
pass of Li et al. 2018 on the result; masks (vision/masks.py) give Luan's per-region style loss.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import tinygrad_cv.functional as F
from tinygrad_cv import no_grad
from tinygrad_cv.tensor import Tensor
from tinygrad_cv.vision import masks, matting
from tinygrad_cv.vision.image import resize
from tinygrad_cv.vision.render import Callback, Objective, PixelParam, RenderResult, RenderSettings, render

TARGET_CHECKS = (0.5, 0.75)  # with a style target: where (as a share of the steps) the weight may be raised


@dataclass(frozen=True)
class StyleSettings:
    """Everything that shapes a style transfer run. The defaults were chosen on the bundled images
    and the evaluation paintings at 256 px with VGG16 (see the issue notes for the figures)."""

    size: int = 256  # longest side of the output, in pixels
    iters: int = 300  # L-BFGS iterations (or Adam steps) at the final scale
    content_layer: str = "conv4_2"  # Gatys et al. section 2
    style_layers: Tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # ibid.
    style_layer_weights: Tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # normalised to sum 1
    content_weight: float = 1.0
    style_weight: float = 10.0  # relative losses: style/content ratio 10 keeps the content readable
    tv_weight: float = 1e-3  # on mean squared neighbour differences of [0, 1] pixels
    init: str = "content"  # "content", "noise", or a path to an image (read by the caller)
    optimizer: str = "lbfgs"  # or "adam"
    lr: float = 0.02  # Adam's step on [0, 1] pixels
    style_blend: Optional[Tuple[float, ...]] = None  # one weight per style image; equal by default
    style_scale: float = 1.0  # style images are resized to style_scale * size (longest side)
    original_colors: bool = False  # keep the content's colours, take only luminance from the result
    pooling: str = "max"  # "avg" gives smoother results (Gatys et al. prefer it)
    scales: Tuple[int, ...] = ()  # coarse-to-fine sizes, e.g. (128, 256); () means just `size`
    iters_per_scale: Optional[int] = None  # iterations at coarser scales; default iters // 2
    seed: int = 0
    model: str = "vgg16"
    photo_weight: float = 0.0  # weight of the matting-Laplacian term (0: off; see photo_settings)
    photo_eps: float = matting.EPS  # the Laplacian's regulariser (Levin's and Luan's 1e-7)
    smooth: bool = False  # run the closed-form smoothing (vision/matting.smooth) on the result
    style_target: float = 0.0  # > 0: after half and after three quarters of the iterations, if the style loss is
    style_boost: float = 3.0  # above this fraction of its start, the style weight is multiplied by style_boost


def photo_settings(**overrides) -> StyleSettings:
    """The photorealistic recipe (``tinygrad-cv style --photo``), chosen on the bundled photos at
    256 px (figures in benchmarks/eval_photo_style.py):
    - init from the content and the regulariser on from the first step: the content has (almost) zero
      matting energy, so the optimiser starts on a photo and is held near photos all along; Luan
      starts from the content too, but switches the term on only in a second run.
    - photo_weight: Luan's lambda, rescaled to this module's relative losses (the term is divided by
      the content's sum_c |V_c - mean|^2, so it reads as the relative matting energy).
    - style_weight 10 (as plain style) against photo_weight 1e3, and a style target of 0.45 with a
      boost of 3: after half the iterations, and again after three quarters, if the style loss has not
      fallen to 0.45 of its start, the style weight is tripled. One fixed balance does not serve every
      pair. With 10 throughout, at 256 px, three pairs end at 0.28-0.46 of their style loss, but rocket
      <- china (a night scene given daylight) only at 0.66: the regulariser wins there. Its colours can
      move, but the textures the deeper layers see cannot: at 128 px, started from the content recoloured
      to the look's colour mean and covariance (one affine map, no matting energy), the loss per layer
      ended at 0.35 of the content's for conv1_1 but 0.79-0.93 for conv2_1-conv5_1. A higher weight from
      the start would paint every pair (1e3 at 256 px turned china <- flower into flowers everywhere,
      style loss down 95%, energy still only 0.018), so the boost is applied only where the target is
      missed: at 256 px it leaves the china/flower pairs alone (0.36 and 0.35 at half time), triples once
      on chelsea <- coffee (0.47 at half time; 0.35 at the end) and twice on rocket <- china (0.45 at
      the end, energy 0.0034, 1/92 of plain style's). What the boost buys is partly painted: faint
      blotches in the night sky and a ghost of the temple's roof by the right tower, a ghost of the cup
      in the cat's blurred background. Checking earlier (after a quarter) boosts pairs that would have
      got there anyway (china <- flower is at 0.455 after 50 of 200 steps and ends at 0.28), and a
      single boost of 100 (tried before) paints far more. ``style_target=0`` turns it off.
    - photo_eps 1e-5 (the TF port's value) rather than Levin's 1e-7: eps penalises each window's
      slope a_k (energy ~ eps |a_k|^2), so where the content is almost flat (a clear sky, a blurred
      background) the output must stay almost flat too instead of amplifying the content's faint
      noise into ghosts of the look photo's objects. At 128 px on china <- flower (style weight 10)
      the ghost flower in the sky fades from 1e-7 to 1e-5 to 1e-4. 1e-3 removes it at 256 px too, but
      costs style elsewhere: at 256 px, 200 iterations, the style loss fell 67% on china <- flower,
      50% on flower <- china and only 20% on chelsea <- coffee (with 1e-5: 72%, 69%, 54%). The
      reported energy uses 1e-7 whatever the recipe uses.
    - 200 iterations; smoothing off: it removes texture and left 0.59-0.79 of the style loss at 256 px.
    - no TV term: the Laplacian already penalises noise, and TV would also blur true edges.
    """
    recipe = dict(init="content", iters=200, content_weight=1.0, style_weight=10.0, tv_weight=0.0,
                  photo_weight=1e3, photo_eps=1e-5, smooth=False, style_target=0.45, style_boost=3.0)
    recipe.update(overrides)
    return StyleSettings(**recipe)


# ---- the losses, each a plain function of arrays of features -------------------------------------------
def relative_squared_error(value: Tensor, target: Tensor, scale: Optional[float] = None) -> Tensor:
    """sum((value - target)^2) / sum(target^2): a scale-free mismatch (1.0 for value = 0).

    ``scale`` is sum(target^2) when the caller has it already (it is the same at every step).
    """
    if scale is None:
        scale = squared_norm(target)
    return F.mse_loss(value, target, reduction="sum") / scale


def squared_norm(target: Tensor) -> float:
    """sum(target^2) in float64, plus a tiny constant so that a zero target does not divide by 0."""
    return float((target.data.astype(np.float64) ** 2).sum()) + 1e-12


def content_loss(layer: str, target: Tensor) -> Objective:
    """Relative squared error between the image's features and the content's features at ``layer``."""
    scale = squared_norm(target)
    return Objective.term("content", lambda feats, image: relative_squared_error(feats[layer], target, scale), [layer])


def style_loss(layers: Sequence[str], targets: Sequence[Tensor], weights: Sequence[float]) -> Objective:
    """Weighted relative squared error between Gram matrices, summed over ``layers``."""
    total = float(sum(weights))
    scales = [squared_norm(target) for target in targets]

    def fn(feats: Dict[str, Tensor], image: Tensor) -> Tensor:
        parts = [relative_squared_error(F.gram_matrix(feats[name]), target, scale) * (w / total)
                 for name, target, scale, w in zip(layers, targets, scales, weights)]
        return sum(parts[1:], parts[0])

    return Objective.term("style", fn, layers)


def tv_loss() -> Objective:
    """Total variation: mean squared difference between vertical and horizontal neighbours."""

    def fn(feats: Dict[str, Tensor], image: Tensor) -> Tensor:
        dy = image[:, :, 1:, :] - image[:, :, :-1, :]
        dx = image[:, :, :, 1:] - image[:, :, :, :-1]
        return (dy * dy).mean() + (dx * dx).mean()

    return Objective.term("tv", fn)


def photo_loss(content: np.ndarray, eps: float = matting.EPS) -> Objective:
    """The matting energy of the image under the content's Laplacian, over the content's spread
    sum_c |V_c - mean(V_c)|^2: for an image near the content it reads as its relative matting energy."""
    laplacian = matting.matting_laplacian(content, eps)
    V = content.reshape(-1, 3).astype(np.float64) / 255.0
    spread = float(((V - V.mean(axis=0)) ** 2).sum()) + 1e-12
    return Objective.term("photo", lambda feats, image: matting.matting_energy(image, laplacian) / spread)


# ---- images <-> tensors ---------------------------------------------------------------------------------
def to_tensor(image: np.ndarray, device: str = "cpu") -> Tensor:
    """uint8 (H, W, 3) -> (1, 3, H, W) float32 in [0, 1] on ``device``."""
    return Tensor(image.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).to(device)


def to_uint8(batch: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) floats in [0, 1] -> uint8 (H, W, 3)."""
    return (np.clip(batch[0].transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)


def fit_longest_side(image: np.ndarray, side: int) -> np.ndarray:
    """Resize (up or down) so the longest side is ``side``, keeping the aspect ratio."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    return resize(image, (max(1, round(h * scale)), max(1, round(w * scale))))


def original_colors(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance of ``result`` with the chroma (YIQ's I and Q) of ``content``; both uint8 (H, W, 3)."""
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    r = result.astype(np.float64) / 255 @ to_yiq.T
    c = content.astype(np.float64) / 255 @ to_yiq.T
    yiq = np.concatenate([r[..., :1], c[..., 1:]], axis=-1)
    return (np.clip(yiq @ np.linalg.inv(to_yiq).T, 0, 1) * 255).round().astype(np.uint8)


# ---- the whole job -------------------------------------------------------------------------------------
@dataclass
class StyleResult:
    image: np.ndarray  # uint8 (H, W, 3)
    status: str  # "done", "interrupted", or which loss term became non-finite
    history: List[Dict[str, float]] = field(default_factory=list)  # every step of every scale
    initial: Dict[str, float] = field(default_factory=dict)  # each loss term at the first scale's start
    seconds: float = 0.0
    steps_per_scale: List[int] = field(default_factory=list)
    style_weight: float = 0.0  # the weight of the last step: settings.style_weight unless a style target raised it


def style_targets(model, styles: Sequence[np.ndarray], settings: StyleSettings, side: int) -> List[Tensor]:
    """Blended Gram targets per style layer: A_l = sum_i w_i G_l(style_i) (weights normalised)."""
    blend = settings.style_blend or tuple(1.0 for _ in styles)
    if len(blend) != len(styles):
        raise ValueError(f"style_blend has {len(blend)} weights for {len(styles)} style images")
    if any(w < 0 for w in blend) or sum(blend) <= 0:
        raise ValueError(f"style_blend weights must be non-negative with a positive sum, got {blend}")
    style_side = max(16, round(side * settings.style_scale))
    targets: List[Tensor] = [None] * len(settings.style_layers)  # type: ignore[list-item]
    with no_grad():
        for style, w in zip(styles, blend):
            x = to_tensor(fit_longest_side(style, style_side), model.device)
            feats = model(model.normalize(x), layers=settings.style_layers)
            for i, name in enumerate(settings.style_layers):
                g = F.gram_matrix(feats[name]) * (w / sum(blend))
                targets[i] = g if targets[i] is None else targets[i] + g
    return targets


def stylize(
    model,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    settings: StyleSettings = StyleSettings(),
    init_image: Optional[np.ndarray] = None,
    callbacks: Sequence[Callable[[int, int, object], None]] = (),
    content_mask: Optional[np.ndarray] = None,
    style_mask: Optional[np.ndarray] = None,
) -> StyleResult:
    """Paint ``content`` (uint8 H x W x 3) in the style of ``styles`` with a VGG ``model``.

    Args:
        model: a VGG from models.vgg.load_vgg (needs ``model(x, layers)`` and ``model.normalize``).
        callbacks: called as ``cb(scale_index, n_scales, step_info)`` after every step.
        content_mask, style_mask: colour-coded region masks (uint8, any size), both or neither; one
            style image only. The style loss is then computed per region (vision/masks.py).
    Returns:
        StyleResult; on Ctrl-C or a non-finite loss, the last good image and a status saying so.
    """
    if not styles:
        raise ValueError("need at least one style image")
    sides = list(settings.scales) or [settings.size]
    if any(s < 16 for s in sides):
        raise ValueError(f"sizes must be at least 16 px, got {sides}")
    regions = regions_of(content_mask, style_mask, len(styles))
    if settings.photo_weight < 0:
        raise ValueError(f"photo_weight must be >= 0, got {settings.photo_weight}")
    if not 0 <= settings.style_target < 1 or settings.style_boost < 1:
        raise ValueError(f"style_target must lie in [0, 1) and style_boost be >= 1, got {settings.style_target}, "
                         f"{settings.style_boost}")
    rng = np.random.default_rng(settings.seed)
    start, history, steps_per_scale, initial = time.perf_counter(), [], [], {}
    current: Optional[np.ndarray] = None
    status, style_weight = "done", settings.style_weight
    for k, side in enumerate(sides):
        content_k = fit_longest_side(content, side)
        objective = style_objective(model, content_k, styles, settings, side, regions)
        start_image = _initial_image(settings, content_k, init_image, current, rng)
        steps = settings.iters if k == len(sides) - 1 else (settings.iters_per_scale or max(1, settings.iters // 2))
        per_step: List[Callback] = [lambda info, k=k: [cb(k, len(sides), info) for cb in callbacks]]
        last = k == len(sides) - 1
        if last and settings.style_target and settings.style_weight:
            result, style_weight = _render_to_style_target(model, objective, start_image, steps, settings, per_step)
        else:
            result = _render(model, objective, start_image, steps, settings, per_step)
        history += result.history
        initial = initial or result.initial
        steps_per_scale.append(result.steps)
        current = to_uint8(result.image)
        if result.status != "done":
            status = result.status
            break
    assert current is not None
    if settings.smooth and status == "done":  # not after Ctrl-C: at 512 px the solve takes a while
        current = matting.smooth(current, resize(content, current.shape[:2]))
    if settings.original_colors:
        current = original_colors(current, resize(content, current.shape[:2]))
    return StyleResult(current, status, history, initial, time.perf_counter() - start, steps_per_scale, style_weight)


def _render(model, objective: Objective, start_image: np.ndarray, steps: int, settings: StyleSettings,
            callbacks: Sequence[Callback]) -> RenderResult:
    return render(PixelParam(to_tensor(start_image, model.device)),
                  lambda x, layers: model(model.normalize(x), layers=layers), objective,
                  RenderSettings(steps=steps, optimizer=settings.optimizer, lr=settings.lr), callbacks=callbacks)


def _render_to_style_target(model, objective: Objective, start_image: np.ndarray, steps: int,
                            settings: StyleSettings, callbacks: Sequence[Callback]) -> Tuple[RenderResult, float]:
    """The steps in stages split at TARGET_CHECKS. After each stage but the last, if the style loss is still
    above ``settings.style_target`` of its value at the start, the style term's weight is multiplied by
    ``settings.style_boost``; once it is below, the remaining steps keep the weight they have. Each
    stage after the first is a fresh optimiser run from the current image (uint8, as every scale
    hands on). Progress is reported as one run of ``steps``. Returns the result and the style weight
    of its last step."""
    bounds = [0] + [int(steps * share) for share in TARGET_CHECKS] + [steps]
    boost, done, image = 1.0, 0, start_image
    history: List[Dict[str, float]] = []
    initial: Dict[str, float] = {}

    def report(info) -> None:
        info = replace(info, step=info.step + done, steps=steps)
        for callback in callbacks:
            callback(info)

    for end in bounds[1:]:
        if end <= done:
            continue
        if history:  # a later stage: the style loss so far, at the starting weight
            if history[-1]["style"] / boost <= settings.style_target * initial["style"]:
                end = steps  # reached: no more boosts
            else:
                boost *= settings.style_boost
                objective = objective.reweighted("style", settings.style_boost)
        result = _render(model, objective, image, end - done, settings, [report])
        history += result.history
        initial = initial or result.initial
        done += result.steps
        image = to_uint8(result.image)
        if result.status != "done" or done >= steps or not result.history:
            break
    return RenderResult(result.image, done, result.status, history, initial), settings.style_weight * boost


def regions_of(content_mask: Optional[np.ndarray], style_mask: Optional[np.ndarray], n_styles: int):
    """(colours, content maps, style maps) from masks.match_masks, or None without masks."""
    if content_mask is None and style_mask is None:
        return None
    if content_mask is None or style_mask is None:
        raise ValueError("masks come in pairs: give both a content mask and a style mask")
    if n_styles != 1:
        raise ValueError(f"masks work with one style image, got {n_styles}")
    return masks.match_masks(content_mask, style_mask)


def style_objective(model, content: np.ndarray, styles: Sequence[np.ndarray], settings: StyleSettings,
                    side: int, regions=None) -> Objective:
    """content + style (per region with masks) + TV + photo terms for ``content`` at its own size."""
    layers = [settings.content_layer] + [name for name in settings.style_layers if name != settings.content_layer]
    with no_grad():
        x = to_tensor(content, model.device)
        feats = model(model.normalize(x), layers=layers if regions is not None else [settings.content_layer])
    if regions is None:
        style = style_loss(settings.style_layers, style_targets(model, styles, settings, side), settings.style_layer_weights)
    else:
        style = _masked_style(model, feats, styles[0], regions, settings, side)
    objective = settings.content_weight * content_loss(settings.content_layer, feats[settings.content_layer])
    objective = objective + settings.style_weight * style
    if settings.tv_weight:
        objective = objective + settings.tv_weight * tv_loss()
    if settings.photo_weight:
        objective = objective + settings.photo_weight * photo_loss(content, settings.photo_eps)
    return objective


def _masked_style(model, content_feats: Dict[str, Tensor], style: np.ndarray, regions, settings: StyleSettings,
                  side: int) -> Objective:
    """Luan's per-region style loss: Gram targets of the style under its mask, the content's maps per layer."""
    _, content_maps, style_maps = regions
    with no_grad():
        x = to_tensor(fit_longest_side(style, max(16, round(side * settings.style_scale))), model.device)
        style_feats = model(model.normalize(x), layers=settings.style_layers)
    targets = masks.region_grams(style_feats, style_maps, settings.style_layers)
    maps = [masks.resize_maps(content_maps, content_feats[name].shape[2:]) for name in settings.style_layers]
    shares = content_maps.mean(axis=(1, 2))
    return masks.masked_style_loss(settings.style_layers, targets, maps, settings.style_layer_weights, shares)


def measure(model, image: np.ndarray, content: np.ndarray, styles: Sequence[np.ndarray],
            settings: StyleSettings = StyleSettings(), content_mask: Optional[np.ndarray] = None,
            style_mask: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Unweighted content and style losses of ``image`` (uint8) against ``content`` resized to it, and
    its relative matting energy under the content's Laplacian ("energy", 0 for a locally affine
    recolouring of the content)."""
    h, w = image.shape[:2]
    content_k = resize(content, (h, w))
    plain = replace(settings, content_weight=1.0, style_weight=1.0, tv_weight=0.0, photo_weight=0.0)
    objective = style_objective(model, content_k, styles, plain, max(h, w),
                                regions_of(content_mask, style_mask, len(styles)))
    with no_grad():
        x = to_tensor(image, model.device)
        _, parts = objective(model(model.normalize(x), layers=objective.layers), x)
    parts["energy"] = matting.relative_matting_energy(image, matting.matting_laplacian(content_k))
    return parts


def _initial_image(settings: StyleSettings, content: np.ndarray, init_image: Optional[np.ndarray],
                   previous: Optional[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Where the pixels start: the previous scale's result, the content, noise, or a given image."""
    h, w = content.shape[:2]
    if previous is not None:
        return resize(previous, (h, w))  # coarse-to-fine: warm start from the last scale
    if settings.init == "content":
        return content
    if settings.init == "noise":
        return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    if init_image is None:
        raise ValueError(f"init={settings.init!r}: pass the image to start from (init_image)")
    return resize(init_image, (h, w))
