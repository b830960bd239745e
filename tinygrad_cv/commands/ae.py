"""`tinygrad-cv ae train`: train an autoencoder, with checkpoints, --resume, figures and a summary.

    tinygrad-cv ae train --model dense --dataset digits --code 8 --epochs 30 -o runs/dense8
    tinygrad-cv ae train --model vae --dataset mnist --epochs 10 --iwae 1000

The run folder holds config.json (the settings), checkpoint.npz (rewritten atomically after every
epoch and on Ctrl-C), metrics.json and the figures. ``--resume`` continues exactly where the
checkpoint stopped: model, optimiser state, epoch, batch within the epoch and the noise generator
are restored, and the DataLoader's order depends only on (seed, epoch), so the resumed run computes
the very same numbers as an uninterrupted one. The last line printed is a summary scripts can read:

    held-out MSE: 0.0132 (PCA with 8 components: 0.0238)

The variational autoencoder (``--model vae``) is scored by its test ELBO on the test images binarised
once with a fixed seed, and with ``--iwae K`` also by the importance-weighted bound, the usual
estimate of the test negative log-likelihood; its defaults are the standard MNIST setting (784-400-20,
Adam 1e-3, batch 128) and its last lines read (the second with --iwae K only)

    test ELBO: -102.21 nats                    (MNIST, --epochs 10)
    test NLL (IWAE, k=K): <nats> nats
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from tinygrad_cv.commands.arguments import finite_float

MODELS = ("dense", "conv", "denoising", "sparse", "linear", "vae")  # models.autoencoder.MODELS (not imported: --help stays instant)
DATASETS = ("digits", "mnist", "fashion-mnist")  # tinygrad_cv.data.DATASETS
NOISE_KINDS = ("gaussian", "mask", "patch")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; saved as config.json so --resume can rebuild it."""

    model: str = "dense"
    dataset: str = "digits"
    code: int = 8  # the size of the code; the summary compares with PCA of as many components
    hidden: Tuple[int, ...] = (128,)  # dense/denoising/sparse hidden layers: 64-128-8 on digits
    channels: Tuple[int, ...] = (16, 32)  # conv: one conv + 2x2 pool per entry
    epochs: int = 30
    batch_size: int = 32  # with lr 3e-3: 64-128-8 reaches ~0.013 on held-out digits in 30 epochs
    lr: float = 3e-3  # Adam; 1e-3 (the usual default) needs ~100 epochs for the same error
    seed: int = 0  # weights, batch order and noise
    noise: str = "gaussian"  # denoising: gaussian | mask | patch
    noise_factor: float = 0.3  # std of the Gaussian noise on [0, 1] pixels
    mask_fraction: float = 0.3  # share of pixels blanked by masking noise
    patch_size: int = 3  # side of the square blanked by patch noise
    sparsity: float = 1e-3  # weight of the L1 penalty on the code (sparse)

    def noise_settings(self) -> Any:
        from models.autoencoder import Noise

        return Noise(kind=self.noise, factor=self.noise_factor, fraction=self.mask_fraction, patch_size=self.patch_size)


# The VAE's own defaults (models.vae.VAESettings): 784-400-20, Adam 1e-3, batch 128.
VAE_DEFAULTS = {"code": 20, "hidden": (400,), "batch_size": 128, "lr": 1e-3}

# Flags whose value may change on --resume; every other flag must match the saved config.
RESUMABLE = ("epochs",)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ae", help="train autoencoders (dense, conv, denoising, sparse, linear, vae)")
    actions = p.add_subparsers(dest="ae_action", metavar="ACTION", required=True)
    t = actions.add_parser("train", help="train one autoencoder, save checkpoints and figures",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    # Defaults are None here and filled from TrainConfig, so --resume can tell what was typed.
    t.add_argument("--model", choices=MODELS, help=f"default {d.model}")
    t.add_argument("--dataset", choices=DATASETS, help=f"default {d.dataset} (bundled with scikit-learn)")
    t.add_argument("--code", type=int, help=f"code size, default {d.code}")
    t.add_argument("--hidden", type=int, nargs="+", help=f"hidden layer sizes, default {' '.join(map(str, d.hidden))}")
    t.add_argument("--channels", type=int, nargs="+", help=f"conv channels, default {' '.join(map(str, d.channels))}")
    t.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    t.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    t.add_argument("--lr", type=finite_float, help=f"Adam learning rate, default {d.lr}")
    t.add_argument("--seed", type=int, help=f"default {d.seed}")
    t.add_argument("--noise", choices=NOISE_KINDS, help=f"denoising corruption, default {d.noise}")
    t.add_argument("--noise-factor", type=finite_float, help=f"Gaussian noise std, default {d.noise_factor}")
    t.add_argument("--mask-fraction", type=finite_float, help=f"masked pixel share, default {d.mask_fraction}")
    t.add_argument("--patch-size", type=int, help=f"blanked patch side, default {d.patch_size}")
    t.add_argument("--sparsity", type=finite_float, help=f"L1 weight on the code (sparse), default {d.sparsity}")
    t.add_argument("--iwae", type=int, metavar="K", help="vae: also estimate the test NLL with the "
                   "importance-weighted bound of K samples per image (1000 is usual; slow)")
    t.add_argument("-o", "--out", help="run folder, default runs/<model>-<dataset>-<code>")
    t.add_argument("--resume", action="store_true", help="continue the run in the folder")
    t.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    t.add_argument("--data-dir", help="folder with the MNIST IDX files (default: the cache)")
    t.add_argument("--no-figures", action="store_true", help="skip the figures at the end")
    t.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    t.set_defaults(run=run)


def config_from_args(args: argparse.Namespace, saved: Optional[TrainConfig] = None) -> TrainConfig:
    """The run's settings: the typed flags over the saved config (on resume) or the defaults.

    Raises ValueError when a resumed run is given a flag that contradicts its saved settings.
    """
    base = saved if saved is not None else TrainConfig()
    if saved is None and getattr(args, "model", None) == "vae":
        base = dataclasses.replace(base, model="vae", **VAE_DEFAULTS)
    changes: Dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        value = tuple(value) if isinstance(value, list) else value
        if saved is not None and f.name not in RESUMABLE and value != getattr(saved, f.name):
            raise ValueError(f"--{f.name.replace('_', '-')} {value} differs from the run's saved setting "
                             f"{getattr(saved, f.name)}; a resumed run keeps its settings (only --epochs may change)")
        changes[f.name] = value
    config = dataclasses.replace(base, **changes)
    _check_config(config)
    return config


def _check_config(c: TrainConfig) -> None:
    if c.code < 1 or c.epochs < 1 or c.batch_size < 1 or c.lr <= 0:
        raise ValueError(f"need code, epochs, batch size >= 1 and lr > 0; got code={c.code}, epochs={c.epochs}, "
                         f"batch_size={c.batch_size}, lr={c.lr}")


def save_config(path: Path, config: TrainConfig) -> None:
    path.write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")


def load_config(path: Path) -> TrainConfig:
    raw = json.loads(path.read_text())
    raw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return TrainConfig(**raw)


# ---- the state of a run, and its checkpoint ---------------------------------------------------------------


@dataclass
class Progress:
    """Where training stands: epochs done, batches done in the current epoch, and the curves."""

    epoch: int = 0
    batch: int = 0
    loss_sum: float = 0.0  # sum of batch loss * batch size over the current epoch so far
    seen: int = 0  # images seen in the current epoch so far
    train_loss: List[float] = field(default_factory=list)  # per finished epoch: the training objective
    held_out_mse: List[float] = field(default_factory=list)  # per finished epoch: held-out reconstruction MSE
    held_out_elbo: List[float] = field(default_factory=list)  # vae, per finished epoch: test ELBO (nats)
    seconds: float = 0.0  # training time so far, over all sessions


class Run:
    """A model, its optimiser, its noise generator and its Progress, saved to and loaded from a folder."""

    def __init__(self, folder: Path, config: TrainConfig, image_shape: tuple, device: str = "cpu",
                 output_mean: Optional[float] = None) -> None:
        """output_mean: the training images' mean pixel; the conv decoder starts at that brightness
        (models.autoencoder.start_at_mean: without it the conv model collapses on MNIST)."""
        import numpy as np

        from models.autoencoder import build_autoencoder
        from tinygrad_cv import optim

        self.folder, self.config = Path(folder), config
        self.rng = np.random.default_rng(config.seed)  # weights first, then the noise, in that order
        if config.model == "vae":
            from models.vae import VAE

            self.model = VAE(image_shape, hidden=config.hidden[0], latent=config.code, rng=self.rng)
        else:
            self.model = build_autoencoder(config.model, image_shape, config.code, hidden=config.hidden,
                                           channels=config.channels, noise=config.noise_settings(),
                                           sparsity=config.sparsity, rng=self.rng, output_mean=output_mean)
        self.model.to(device)
        self.optimizer = optim.Adam(self.model.parameters(), lr=config.lr)
        self.progress = Progress()

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / "checkpoint.npz"

    def save(self) -> None:
        """Model, optimiser, progress and generator state in one .npz, written atomically."""
        import numpy as np

        from tinygrad_cv import backend
        from tinygrad_cv.nn.module import save_npz_atomic

        arrays = {f"model/{k}": backend.to_device(v, "cpu") for k, v in self.model.state_dict().items()}
        arrays.update({f"optim/{k}": backend.to_device(v, "cpu") for k, v in self.optimizer.state_dict().items()})
        state = {"progress": dataclasses.asdict(self.progress), "rng": self.rng.bit_generator.state}
        arrays["state"] = np.array(json.dumps(state))  # JSON keeps floats and the generator's big ints exactly
        save_npz_atomic(str(self.checkpoint_path), arrays)

    def load(self) -> None:
        import numpy as np

        with np.load(self.checkpoint_path) as data:
            self.model.load_state_dict({k[len("model/"):]: data[k] for k in data.files if k.startswith("model/")})
            self.optimizer.load_state_dict({k[len("optim/"):]: data[k] for k in data.files if k.startswith("optim/")})
            state = json.loads(str(data["state"]))
        self.progress = Progress(**state["progress"])
        self.rng.bit_generator.state = state["rng"]


# ---- Ctrl-C -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_ctrl_c() -> Iterator[threading.Event]:
    """The first Ctrl-C only sets the returned event, so the loop can finish its batch and save;
    a second Ctrl-C interrupts at once. Outside the main thread (where signals cannot be caught)
    the event is simply never set."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum: int, frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        print("\nCtrl-C: saving after this batch (press again to quit without saving)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- training --------------------------------------------------------------------------------------------


def train(run: Run, train_images: Any, held_out_images: Any, quiet: bool = False,
          stop: Optional[threading.Event] = None) -> bool:
    """Train up to run.config.epochs, saving after every epoch. False if stopped early (and saved).

    ``stop``: an event that, once set, ends training after the current batch (Ctrl-C sets it).
    """
    from tqdm import tqdm

    from models.autoencoder import reconstruction_mse
    from tinygrad_cv.data import DataLoader

    c, p = run.config, run.progress
    is_vae = c.model == "vae"
    if is_vae:
        from models.vae import binarised_test_set, elbo

        held_out_bits = binarised_test_set(held_out_images)
    loader = DataLoader(train_images, batch_size=c.batch_size, seed=c.seed)
    stop = stop if stop is not None else threading.Event()
    total = c.epochs * len(loader)
    with tqdm(total=total, initial=min(p.epoch * len(loader) + p.batch, total), unit="batch", disable=quiet,
              file=sys.stderr, dynamic_ncols=True) as bar:
        while p.epoch < c.epochs:
            bar.set_description(f"epoch {p.epoch + 1}/{c.epochs}")
            finished = train_epoch(run, loader, bar, stop)
            if not finished:
                run.save()
                return False
            p.train_loss.append(p.loss_sum / p.seen)
            p.held_out_mse.append(reconstruction_mse(run.model, held_out_images))
            if is_vae:
                p.held_out_elbo.append(elbo(run.model, held_out_bits))
            p.epoch, p.batch, p.loss_sum, p.seen = p.epoch + 1, 0, 0.0, 0
            run.save()
            if not quiet:
                score = f"test ELBO {p.held_out_elbo[-1]:.2f} nats" if is_vae else f"held-out MSE {p.held_out_mse[-1]:.4f}"
                bar.write(f"epoch {p.epoch}/{c.epochs}: train loss {p.train_loss[-1]:.4f}, {score}", file=sys.stderr)
    return True


def train_epoch(run: Run, loader: Any, bar: Any, stop: threading.Event) -> bool:
    """The rest of the current epoch, from batch run.progress.batch on; False if stopped inside it."""
    from models.autoencoder import train_step

    p = run.progress
    started = time.perf_counter()
    try:
        for (x,) in loader.batches(p.epoch, start=p.batch):
            loss = train_step(run.model, run.optimizer, x, run.rng)
            p.loss_sum, p.seen, p.batch = p.loss_sum + loss * len(x), p.seen + len(x), p.batch + 1
            bar.update(1)
            bar.set_postfix(loss=f"{p.loss_sum / p.seen:.4f}")
            if stop.is_set():
                return False
        return True
    finally:
        p.seconds += time.perf_counter() - started


def evaluate(run: Run, train_set: Any, held_out: Any, iwae: int = 0) -> Dict[str, Any]:
    """Held-out numbers for the summary and metrics.json: the model's MSE, PCA's with as many
    components as the code, and, by model, denoising errors, code sparsity, or the VAE's bounds
    (``iwae``: samples per image of the importance-weighted bound, 0 for none)."""
    import numpy as np

    from models.autoencoder import DenoisingAutoencoder, SparseAutoencoder, code_statistics, corrupt, reconstruction_mse
    from tinygrad_cv.pca import pca_mse

    c = run.config
    k = min(c.code, int(np.prod(train_set.image_shape)))  # PCA cannot have more components than pixels
    metrics: Dict[str, Any] = {
        "model": c.model, "dataset": c.dataset, "code": c.code, "epochs": run.progress.epoch,
        "held_out_mse": reconstruction_mse(run.model, held_out.images),
        "pca_components": k, "pca_mse": pca_mse(train_set.images, held_out.images, k),
        "train_seconds": run.progress.seconds,
    }
    if isinstance(run.model, DenoisingAutoencoder):
        noisy = corrupt(held_out.images, run.model.noise, np.random.default_rng(c.seed + 1))
        metrics["noisy_input_mse"] = float(((noisy - held_out.images) ** 2).mean())
        metrics["denoised_mse"] = reconstruction_mse(run.model, noisy, held_out.images)
    if isinstance(run.model, SparseAutoencoder):
        metrics.update(code_statistics(run.model, held_out.images))
    if c.model == "vae":
        from models.vae import binarised_test_set, elbo, iwae_bound

        bits = binarised_test_set(held_out.images)
        metrics["test_elbo"] = elbo(run.model, bits)
        if iwae:
            started = time.perf_counter()
            metrics["iwae_k"], metrics["test_nll_iwae"] = iwae, -iwae_bound(run.model, bits, iwae, progress=True)
            metrics["iwae_seconds"] = time.perf_counter() - started
    return metrics


def summary_line(metrics: Dict[str, Any]) -> str:
    if "test_elbo" in metrics:
        line = f"test ELBO: {metrics['test_elbo']:.2f} nats"
        if "test_nll_iwae" in metrics:
            line += f"\ntest NLL (IWAE, k={metrics['iwae_k']}): {metrics['test_nll_iwae']:.2f} nats"
        return line
    return (f"held-out MSE: {metrics['held_out_mse']:.4f} "
            f"(PCA with {metrics['pca_components']} components: {metrics['pca_mse']:.4f})")


# ---- figures ------------------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Any:
    # A bare Figure (no pyplot): drawn by the Agg renderer when saved to PNG, no window, no global state.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def image_rows_figure(rows: List[Tuple[str, Any]], ncols: int = 16) -> Any:
    """One row of images per (title, images (N, C, H, W)) pair, the same items in every row."""
    from tinygrad_cv.data import image_grid

    fig = _new_figure(ncols * 0.55, 0.75 * len(rows))
    for i, (title, images) in enumerate(rows):
        ax = fig.add_subplot(len(rows), 1, i + 1)
        ax.imshow(image_grid(images[:ncols], ncols=ncols), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8, loc="left")
        ax.axis("off")
    return fig


def loss_curves_figure(progress: Progress, pca_mse: float, k: int) -> Any:
    fig = _new_figure(6, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    epochs = range(1, len(progress.train_loss) + 1)
    ax.plot(epochs, progress.train_loss, label="train (training objective)")
    ax.plot(epochs, progress.held_out_mse, label="held-out MSE")
    ax.axhline(pca_mse, color="gray", linestyle="--", label=f"PCA, {k} components (held-out)")
    ax.set(xlabel="epoch", ylabel="mean squared error", yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def elbo_curves_figure(progress: Progress) -> Any:
    fig = _new_figure(6, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    epochs = range(1, len(progress.train_loss) + 1)
    ax.plot(epochs, progress.train_loss, label="train: -ELBO (dynamically binarised batches)")
    ax.plot(epochs, [-e for e in progress.held_out_elbo], label="test: -ELBO (fixed binarisation)")
    ax.set(xlabel="epoch", ylabel="nats per image")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def vae_figures(run: Run, held_out: Any) -> Dict[str, Any]:
    """Samples from the prior, a latent interpolation and, for a 2-D latent, the decoded manifold."""
    import numpy as np

    from models.vae import interpolate, manifold, sample
    from tinygrad_cv.data import image_grid

    rng = np.random.default_rng(run.config.seed + 2)
    figures = {"loss_curves.png": elbo_curves_figure(run.progress)}
    grids = {"samples.png": ("samples: z ~ N(0, I), pixel probabilities", image_grid(sample(run.model, 64, rng), ncols=8))}
    pick = np.random.default_rng(run.config.seed + 3).choice(len(held_out), size=(6, 2), replace=False)
    rows = np.concatenate([interpolate(run.model, held_out.images[a], held_out.images[b]) for a, b in pick])
    grids["interpolation.png"] = ("straight lines between the codes of two test images", image_grid(rows, ncols=10))
    if run.config.code == 2:
        grids["manifold.png"] = ("the 2-D latent space decoded on the prior's quantiles", image_grid(manifold(run.model), ncols=15))
    for name, (title, grid) in grids.items():
        fig = _new_figure(6, 6 * grid.shape[0] / grid.shape[1] + 0.4)
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
        figures[name] = fig
    return figures


def code_scatter_figure(codes: Any, labels: Any) -> Any:
    fig = _new_figure(5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=6)
    fig.colorbar(points, ax=ax, label="label")
    ax.set(xlabel="code 1", ylabel="code 2", title="held-out images in the 2-D code space")
    return fig


def save_figures(run: Run, held_out: Any) -> List[Path]:
    """Reconstructions, loss curves, the denoising grid (denoising) and the code scatter (2-D codes)."""
    import numpy as np

    from models.autoencoder import DenoisingAutoencoder, corrupt, encode, reconstruct
    from tinygrad_cv.data import first_of_each_label

    pick = first_of_each_label(held_out.labels, per_label=2)[:16]
    originals = held_out.images[pick]
    figures = {"reconstructions.png": image_rows_figure([("held-out input", originals),
                                                         ("reconstruction", reconstruct(run.model, originals))])}
    metrics = json.loads((run.folder / "metrics.json").read_text())
    figures["loss_curves.png"] = loss_curves_figure(run.progress, metrics["pca_mse"], metrics["pca_components"])
    if run.config.model == "vae":
        figures.update(vae_figures(run, held_out))
    if isinstance(run.model, DenoisingAutoencoder):
        noisy = corrupt(originals, run.model.noise, np.random.default_rng(run.config.seed + 1))
        figures["denoising.png"] = image_rows_figure([("noisy input", noisy), ("denoised", reconstruct(run.model, noisy)),
                                                      ("clean", originals)])
    if run.config.code == 2:
        figures["codes.png"] = code_scatter_figure(encode(run.model, held_out.images), held_out.labels)
    paths = []
    for name, fig in figures.items():
        fig.savefig(run.folder / name, dpi=110, bbox_inches="tight")
        paths.append(run.folder / name)
    return paths


# ---- the command -------------------------------------------------------------------------------------------------


def prepare_run(args: argparse.Namespace) -> Tuple[Run, Any, Any]:
    """Load the data and build (or reload, with --resume) the run. Returns (run, train set, held-out set)."""
    from tinygrad_cv.data import load_split

    folder = Path(args.out) if args.out else None
    if args.resume:
        if folder is None or not (folder / "config.json").is_file():
            raise FileNotFoundError(f"--resume needs -o pointing at an earlier run folder; {folder} has no config.json")
        config = config_from_args(args, saved=load_config(folder / "config.json"))
    else:
        config = config_from_args(args)
        folder = folder or Path("runs") / f"{config.model}-{config.dataset}-{config.code}"
        if (folder / "checkpoint.npz").exists():
            raise ValueError(f"{folder} already holds a run; pass --resume to continue it or choose another -o")
    train_set, held_out = load_split(config.dataset, folder=args.data_dir)
    run = Run(folder, config, train_set.image_shape, device=args.device, output_mean=float(train_set.images.mean()))
    folder.mkdir(parents=True, exist_ok=True)
    if args.resume and run.checkpoint_path.is_file():
        run.load()
    save_config(folder / "config.json", config)
    return run, train_set, held_out


def run(args: argparse.Namespace) -> int:
    iwae = getattr(args, "iwae", None)
    if iwae is not None and iwae < 1:
        raise ValueError(f"--iwae needs K >= 1 samples per image, got {iwae}")
    if iwae and args.model not in (None, "vae"):
        raise ValueError("--iwae applies to --model vae only")
    job, train_set, held_out = prepare_run(args)
    if iwae and job.config.model != "vae":
        raise ValueError("--iwae applies to --model vae only")
    p = job.progress
    if not args.quiet:
        print(f"{job.config.model} autoencoder, code {job.config.code}, on {job.config.dataset}: "
              f"{len(train_set)} training / {len(held_out)} held-out images; run folder {job.folder}"
              + (f" (resuming at epoch {p.epoch + 1}, batch {p.batch})" if args.resume else ""), file=sys.stderr)
    with stop_on_ctrl_c() as stop:
        finished = train(job, train_set.images, held_out.images, quiet=args.quiet, stop=stop)
    if not finished:
        print(f"stopped in epoch {p.epoch + 1} after batch {p.batch}; saved to {job.checkpoint_path}. "
              f"Continue with: tinygrad-cv ae train -o {job.folder} --resume", file=sys.stderr)
        return 130
    metrics = evaluate(job, train_set, held_out, iwae=iwae or 0)
    (job.folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if not args.no_figures:
        for path in save_figures(job, held_out):
            if not args.quiet:
                print(f"saved {path}", file=sys.stderr)
    for key in ("noisy_input_mse", "denoised_mse", "mean_activation", "active_fraction", "dead_units"):
        if key in metrics:
            value = metrics[key]
            print(f"{key.replace('_', ' ')}: {value:.4f}" if isinstance(value, float) else f"{key.replace('_', ' ')}: {value}")
    print(summary_line(metrics))
    return 0
