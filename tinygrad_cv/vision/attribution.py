"""Attribution maps: which pixels made the network say class K, and the checks that a map deserves trust.

Four maps of one picture for one class K, each an (H, W) array over the network's input:

- **gradient** (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks", eq. 2 and
  section 3.1): the maximum over colour channels of |d logit_K / d pixel|;
- **SmoothGrad** (Smilkov et al. 2017): the mean of that map over ``samples`` noisy copies of the
  picture, Gaussian noise with a standard deviation of ``noise`` times the picture's value range
  (the paper finds 10-20% best; 15% here);
- **integrated gradients** (Sundararajan, Taly & Yan 2017, eq. 1): (x - x') times the average gradient
  along the straight path from a baseline x' (a black picture) to x. Its *completeness* axiom says the
  attributions add up to f(x) - f(x'); the relative error of that sum measures how well the path
  integral was approximated (see ``integrated_gradients`` for the step rule);
- **Grad-CAM** (Selvaraju et al. 2017, eqs. 1-2): on a layer's activation A (for EfficientNet-Lite0 the
  head, 1280 channels after its ReLU6, 7 x 7), channel weights w_c = the spatial mean of d logit_K / dA_c,
  map = ReLU(sum_c w_c A_c), upsampled bilinearly to the input size.

And two sanity checks:

- **randomisation** (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", section 3): replace the
  weights of the network by random ones, layer by layer from the classifier down to the stem
  (*cascading*), and measure the Spearman rank correlation between the map of the trained network and of
  the randomised one after each step. A map that stays the same when the model is destroyed shows the
  picture, not the model;
- **deletion** (Petsiuk et al. 2018, "RISE", section 4.1): the class probability as the most-attributed
  pixels are replaced by grey first, against a random order. A map that finds the evidence makes the
  probability fall fast.

The model is any classifier with: ``model(x)`` -> logits (N, K) for a network input x; ``model.normalize``
(differentiable: RGB in [0, 1] -> network input); and, for Grad-CAM, ``model(x, layers=[name])`` -> dict
of activations and ``model.forward_from(name, activation)`` -> logits. Maps are computed with respect to
the [0, 1] picture, shape (N, 3, H, W). EfficientNet-Lite0 (models/efficientnet.py) has all of these.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv import functional as F
from tinygrad_cv.nn.init import random_like
from tinygrad_cv.tensor import Tensor, no_grad

METHODS = ("gradient", "smoothgrad", "integrated-gradients", "gradcam")
STEP_RULES = ("adaptive", "uniform")
Progress = Optional[Callable[[int], None]]  # called with the number of gradient evaluations just done


@dataclass(frozen=True)
class AttributionSettings:
    """How each map is computed; the defaults are the ones the command and the lesson use."""

    samples: int = 25  # SmoothGrad: noisy copies (Smilkov et al. see little change past ~50; 25 halves the time)
    noise: float = 0.15  # SmoothGrad: noise std / (max - min) of the picture (paper: 10-20% works best)
    steps: int = 64  # integrated gradients: gradient evaluations along the path, both ends included
    step_rule: str = "adaptive"  # "adaptive" (bisect where the sum is off) or "uniform" (the paper's)
    layer: str = "head"  # Grad-CAM: the layer whose activation is weighted (EfficientNet: 1280 channels)
    batch: int = 8  # pictures per forward/backward pass: memory against the per-pass overhead
    seed: int = 0  # SmoothGrad noise


@dataclass
class Attribution:
    """One map and what was measured on the way.

    ``map`` is (H, W) float32: non-negative for gradient, SmoothGrad and Grad-CAM; for integrated
    gradients the signed sum over colour channels of ``attributions`` (3, H, W).
    """

    method: str
    target: int
    map: np.ndarray
    logit: float  # logit K of the picture
    attributions: Optional[np.ndarray] = None  # integrated gradients: per channel, (3, H, W)
    baseline_logit: Optional[float] = None  # integrated gradients: logit K of the baseline
    completeness_error: Optional[float] = None  # |sum(attributions) - (f(x) - f(x'))| / |f(x) - f(x')|
    alphas: Optional[np.ndarray] = None  # integrated gradients: the path positions used, sorted
    extra: Dict[str, Any] = field(default_factory=dict)


# ---- the one thing every method needs: d logit_K / d picture -------------------------------------------
def logit_gradients(model: Any, pictures: np.ndarray, target: int, batch: int = 8,
                    progress: Progress = None) -> Tuple[np.ndarray, np.ndarray]:
    """Gradients of logit ``target`` with respect to each picture, and the logits.

    Args:
        pictures: (N, 3, H, W) RGB in [0, 1] (NumPy).
        target: the class index K.
        batch: pictures per forward/backward pass (eval-mode networks treat them independently).

    Returns:
        (gradients (N, 3, H, W) float32 NumPy, logits K (N,) float64).
    """
    grads, logits = [], []
    for start in range(0, len(pictures), batch):
        chunk = pictures[start:start + batch]
        x = Tensor(backend.to_device(np.ascontiguousarray(chunk, dtype=np.float32), model_device(model)),
                   requires_grad=True)
        out = model(model.normalize(x))  # (n, K)
        check_target(target, out.shape[1])
        seed = backend.get_array_module(out.data).zeros(out.shape, dtype=out.dtype)
        seed[:, target] = 1.0  # backward of sum_n logit_K(x_n): each picture gets its own gradient
        out.backward(seed)
        grads.append(backend.to_device(x.grad, "cpu"))
        logits.append(backend.to_device(out.data[:, target], "cpu").astype(np.float64))
        if progress is not None:
            progress(len(chunk))
    return np.concatenate(grads), np.concatenate(logits)


def model_device(model: Any) -> str:
    return getattr(model, "device", "cpu")


def check_target(target: int, classes: int) -> None:
    if not 0 <= target < classes:
        raise ValueError(f"class {target} is out of range: the network has classes 0 to {classes - 1}")


def gradient_map(gradients: np.ndarray) -> np.ndarray:
    """(..., 3, H, W) gradients -> (..., H, W): the maximum over colour channels of |gradient|."""
    return np.abs(gradients).max(axis=-3).astype(np.float32)


# ---- the four methods ------------------------------------------------------------------------------------
def gradient(model: Any, picture: np.ndarray, target: int) -> Attribution:
    """Simonyan et al. (2014): max over channels of |d logit_K / d picture|. ``picture`` (3, H, W) in [0, 1]."""
    grads, logits = logit_gradients(model, picture[None], target)
    return Attribution("gradient", target, gradient_map(grads[0]), float(logits[0]))


def smoothgrad(model: Any, picture: np.ndarray, target: int, settings: AttributionSettings = AttributionSettings(),
               progress: Progress = None) -> Attribution:
    """Smilkov et al. (2017), eq. 3: the mean gradient map over noisy copies x + N(0, sigma^2),
    sigma = noise * (max(x) - min(x)). The copies are not clipped to [0, 1], as in the paper."""
    if settings.samples < 1 or settings.noise < 0:
        raise ValueError(f"SmoothGrad needs samples >= 1 and noise >= 0, got {settings.samples} and {settings.noise}")
    rng = np.random.default_rng(settings.seed)
    sigma = settings.noise * float(picture.max() - picture.min())
    noisy = picture[None] + rng.normal(0.0, 1.0, (settings.samples,) + picture.shape).astype(np.float32) * sigma
    grads, logits = logit_gradients(model, noisy.astype(np.float32), target, settings.batch, progress)
    total = np.zeros(picture.shape[1:], dtype=np.float64)
    for g in grads:  # mean of the per-copy maps (the maximum over channels is taken per copy)
        total += gradient_map(g)
    logit = class_logits(model, picture[None])[0, target] if settings.noise > 0 else logits[0]
    return Attribution("smoothgrad", target, (total / len(grads)).astype(np.float32), float(logit),
                       extra={"sigma": sigma, "samples": settings.samples})


def integrated_gradients(model: Any, picture: np.ndarray, target: int,
                         settings: AttributionSettings = AttributionSettings(),
                         baseline: Optional[np.ndarray] = None, progress: Progress = None) -> Attribution:
    """Sundararajan et al. (2017), eq. 1, from a black baseline x' = 0: attribution_i =
    (x_i - x'_i) * integral over a in [0, 1] of d f / d x_i at x' + a (x - x').

    The integral is the trapezoid rule over ``settings.steps`` points a_0 = 0 < ... < a_m = 1 (the
    gradient is evaluated at each; the two ends give f(x') and f(x) on the way).

    Step rules:
    - ``"uniform"``: equally spaced points, the paper's Riemann sum. On EfficientNet-Lite0 the logit
      changes most of its value over short stretches of the path (ReLU6 units and BatchNorm switching on
      and off), which equal steps undersample: the completeness error stays large at 64 steps.
    - ``"adaptive"`` (the default): start from ``steps // 4 + 1`` equally spaced points; then, ``batch``
      points at a time, bisect the intervals whose trapezoid estimate of the change of f,
      (a_j+1 - a_j) (f'(a_j) + f'(a_j+1)) / 2 with f'(a) = (x - x') . grad f, disagrees most with the
      change f(a_j+1) - f(a_j) measured by the forward passes. It is still a trapezoid rule on the same
      path, only with non-uniform steps where the integrand moves fast (adaptive quadrature). The
      completeness error it reports is the honest residual of that sum, not a rescaling.
    """
    if settings.steps < 2 or settings.step_rule not in STEP_RULES:
        raise ValueError(f"integrated gradients needs steps >= 2 and a step rule in {STEP_RULES}, "
                         f"got {settings.steps} and {settings.step_rule!r}")
    baseline = np.zeros_like(picture) if baseline is None else baseline.astype(np.float32)
    delta = (picture - baseline).astype(np.float32)  # (3, H, W)
    first = settings.steps if settings.step_rule == "uniform" else max(2, settings.steps // 4 + 1)
    alphas = np.linspace(0.0, 1.0, first)
    grads, values = _path_gradients(model, baseline, delta, alphas, target, settings.batch, progress)
    while len(alphas) < settings.steps:
        residual = _interval_residuals(alphas, grads, values, delta)
        budget = min(settings.batch, settings.steps - len(alphas))
        worst = np.argsort(-np.abs(residual), kind="stable")[:budget]
        new = (alphas[worst] + alphas[worst + 1]) / 2.0
        new_grads, new_values = _path_gradients(model, baseline, delta, new, target, settings.batch, progress)
        order = np.argsort(np.concatenate([alphas, new]), kind="stable")
        alphas = np.concatenate([alphas, new])[order]
        grads = np.concatenate([grads, new_grads])[order]
        values = np.concatenate([values, new_values])[order]
    widths = np.diff(alphas)  # (m,)
    mean_grad = np.tensordot(widths, (grads[:-1] + grads[1:]) / 2.0, axes=1)  # (3, H, W): the trapezoid rule
    attributions = (delta * mean_grad).astype(np.float32)
    change = values[-1] - values[0]
    error = abs(float(attributions.sum(dtype=np.float64)) - change) / max(abs(change), 1e-12)
    return Attribution("integrated-gradients", target, attributions.sum(axis=0), float(values[-1]),
                       attributions=attributions, baseline_logit=float(values[0]), completeness_error=error,
                       alphas=alphas, extra={"step_rule": settings.step_rule, "path_logits": values,
                                             "path_slopes": _slopes(grads, delta)})


def _path_gradients(model: Any, baseline: np.ndarray, delta: np.ndarray, alphas: np.ndarray, target: int,
                    batch: int, progress: Progress) -> Tuple[np.ndarray, np.ndarray]:
    points = baseline[None] + alphas.astype(np.float32)[:, None, None, None] * delta[None]  # (n, 3, H, W)
    return logit_gradients(model, points, target, batch, progress)


def _slopes(grads: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """d f(x' + a (x - x')) / d a = (x - x') . grad f at each point: (n, 3, H, W) -> (n,)."""
    return np.tensordot(grads.astype(np.float64), delta.astype(np.float64), axes=3)


def _interval_residuals(alphas: np.ndarray, grads: np.ndarray, values: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Per interval: trapezoid estimate of f(a_j+1) - f(a_j) minus its measured value. Shape (m,)."""
    slopes = _slopes(grads, delta)
    estimate = np.diff(alphas) * (slopes[:-1] + slopes[1:]) / 2.0
    return estimate - np.diff(values)


def gradcam(model: Any, picture: np.ndarray, target: int, layer: str = "head") -> Attribution:
    """Selvaraju et al. (2017), eqs. 1-2: ReLU(sum_c w_c A_c) with w_c the spatial mean of
    d logit_K / d A_c, upsampled (bilinear, pixel centres aligned) to the picture's size."""
    x = Tensor(backend.to_device(picture[None].astype(np.float32), model_device(model)))
    with no_grad():
        activation = model(model.normalize(x), layers=[layer])[layer]
    if activation.ndim != 4:
        raise ValueError(f"Grad-CAM needs a layer with a spatial activation (N, C, H, W); {layer!r} gives {activation.shape}")
    leaf = Tensor(activation.data, requires_grad=True)  # a leaf, so the engine keeps its gradient
    logits = model.forward_from(layer, leaf)
    check_target(target, logits.shape[1])
    seed = backend.get_array_module(logits.data).zeros(logits.shape, dtype=logits.dtype)
    seed[:, target] = 1.0
    logits.backward(seed)
    A = backend.to_device(activation.data[0], "cpu").astype(np.float64)  # (C, h, w)
    weights = backend.to_device(leaf.grad[0], "cpu").astype(np.float64).mean(axis=(1, 2))  # (C,)
    cam = np.maximum(np.tensordot(weights, A, axes=1), 0.0)  # (h, w)
    size = picture.shape[1:]
    with no_grad():
        upsampled = F.resize_bilinear(Tensor(cam[None, None].astype(np.float32)), size).numpy()[0, 0]
    return Attribution("gradcam", target, np.maximum(upsampled, 0.0).astype(np.float32),
                       float(backend.to_device(logits.data, "cpu")[0, target]),
                       extra={"layer": layer, "cam": cam.astype(np.float32), "weights": weights.astype(np.float32)})


def attribute(model: Any, picture: np.ndarray, method: str, target: int,
              settings: AttributionSettings = AttributionSettings(), progress: Progress = None) -> Attribution:
    """One of METHODS by name, for a (3, H, W) picture in [0, 1]."""
    if method == "gradient":
        return gradient(model, picture, target)
    if method == "smoothgrad":
        return smoothgrad(model, picture, target, settings, progress)
    if method == "integrated-gradients":
        return integrated_gradients(model, picture, target, settings, progress=progress)
    if method == "gradcam":
        return gradcam(model, picture, target, settings.layer)
    raise ValueError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")


def gradient_evaluations(method: str, settings: AttributionSettings) -> int:
    """How many pictures a method differentiates (for progress bars)."""
    return {"gradient": 1, "smoothgrad": settings.samples, "integrated-gradients": settings.steps,
            "gradcam": 1}[method]


def class_logits(model: Any, pictures: np.ndarray) -> np.ndarray:
    """Logits (N, K) of (N, 3, H, W) pictures in [0, 1], without a graph."""
    x = Tensor(backend.to_device(pictures.astype(np.float32), model_device(model)))
    with no_grad():
        return backend.to_device(model(model.normalize(x)).data, "cpu").astype(np.float64)


def top_class(model: Any, picture: np.ndarray) -> int:
    """The index of the largest logit for a (3, H, W) picture in [0, 1]."""
    return int(np.argmax(class_logits(model, picture[None])[0]))


# ---- sanity check 1: randomisation (Adebayo et al. 2018) ---------------------------------------------------
def randomization_order(model: Any) -> List[str]:
    """Layers from the classifier down to the stem: for EfficientNet-Lite0 'logits', 'head', 'block15',
    ..., 'block0', 'stem' (the layers with weights, top first, as in Adebayo et al.'s cascade)."""
    return [name for name in reversed(model.layer_names) if layer_parameters(model, name)]


def layer_parameters(model: Any, layer: str) -> List[str]:
    """The parameter names that belong to a named layer (its weights and BatchNorm statistics)."""
    if layer not in model.layer_names:
        raise ValueError(f"unknown layer {layer!r}: choose from {', '.join(model.layer_names)}")
    prefix = {"logits": "classifier."}.get(layer, layer.replace("block", "blocks.") + ".")
    return [name for name, _ in model.named_parameters() if name.startswith(prefix)]


def cascading_randomization(model: Any, seed: int = 0, layers: Optional[Sequence[str]] = None) -> Iterator[Tuple[str, Any]]:
    """Yield (layer, network) after randomising each layer in turn, top first; every step keeps the
    layers randomised before it (cascading). The network yielded is one copy, changed in place from
    step to step; ``model`` itself is never changed. The last step is the fully randomised network."""
    network = copy.deepcopy(model)
    params = dict(network.named_parameters())
    rng = np.random.default_rng(seed)
    for layer in (randomization_order(model) if layers is None else layers):
        for name in layer_parameters(network, layer):
            p = params[name]
            p.data = backend.to_device(random_like(name, p.shape, rng), p.device)
        yield layer, network


def fully_randomized(model: Any, seed: int = 0) -> Any:
    """A copy of the network with every layer randomised (the last step of the cascade)."""
    network = model
    for _, network in cascading_randomization(model, seed):
        pass
    return network


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties get their mean rank). A constant map has no
    ranking: the correlation is 0 then (scipy would give nan)."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def rank_map(attribution: Attribution) -> np.ndarray:
    """The map compared in the randomisation test: its absolute value (Adebayo et al. compare the
    absolute maps; integrated gradients' sign flips would otherwise count as a change)."""
    return np.abs(attribution.map)


# ---- sanity check 2: deletion (Petsiuk et al. 2018) --------------------------------------------------------
def deletion_curve(model: Any, picture: np.ndarray, saliency: Optional[np.ndarray], target: int,
                   fractions: Sequence[float] = tuple(np.linspace(0.0, 1.0, 21)), fill: float = 0.5,
                   seed: int = 0, batch: int = 8) -> np.ndarray:
    """Probability of class K as the pixels are replaced by grey, most-attributed first.

    Args:
        picture: (3, H, W) in [0, 1].
        saliency: (H, W) map, compared by absolute value; None removes the pixels in a random order
            (the reference curve).
        fractions: shares of the pixels removed, one probability each.
        fill: the value removed pixels get: 0.5, grey, is about zero after EfficientNet's normalisation.

    Returns:
        (len(fractions),) probabilities.
    """
    H, W = picture.shape[1:]
    if saliency is None:
        order = np.random.default_rng(seed).permutation(H * W)
    else:
        order = np.argsort(-np.abs(saliency).ravel(), kind="stable")
    rank = np.empty(H * W, dtype=np.int64)
    rank[order] = np.arange(H * W)  # rank[p] = when pixel p is removed
    rank = rank.reshape(H, W)
    pictures = np.stack([np.where(rank < round(f * H * W), np.float32(fill), picture) for f in fractions])
    return class_probabilities(model, pictures.astype(np.float32), target, batch)


def class_probabilities(model: Any, pictures: np.ndarray, target: int, batch: int = 8) -> np.ndarray:
    """Softmax probability of class ``target`` for each of (N, 3, H, W) pictures in [0, 1]."""
    found = []
    for start in range(0, len(pictures), batch):
        x = Tensor(backend.to_device(pictures[start:start + batch], model_device(model)))
        with no_grad():
            probs = F.softmax(model(model.normalize(x)), axis=1)
        found.append(backend.to_device(probs.data[:, target], "cpu").astype(np.float64))
    return np.concatenate(found)


def area_under(curve: np.ndarray, fractions: Sequence[float] = tuple(np.linspace(0.0, 1.0, 21))) -> float:
    """Trapezoid area under a deletion curve over [0, 1]: smaller means the map found the evidence."""
    f, c = np.asarray(fractions, dtype=np.float64), np.asarray(curve, dtype=np.float64)
    return float(np.sum(np.diff(f) * (c[:-1] + c[1:]) / 2.0))


def randomization_test(model: Any, randomized: Any, picture: np.ndarray, target: int,
                       methods: Sequence[str] = METHODS, settings: AttributionSettings = AttributionSettings(),
                       trained_maps: Optional[Dict[str, Attribution]] = None) -> Dict[str, float]:
    """Spearman correlation between each method's map of ``model`` and of ``randomized`` (for the same
    picture and class), compared by absolute value. Below about 0.3: the map depends on the weights."""
    found = {}
    for method in methods:
        trained = trained_maps[method] if trained_maps and method in trained_maps else attribute(
            model, picture, method, target, settings)
        random_map = attribute(randomized, picture, method, target, settings)
        found[method] = spearman(rank_map(trained), rank_map(random_map))
    return found
