"""`tinygrad-cv doctor`: what this machine gives the framework (NumPy, BLAS, threads, GPU, cache)."""
from __future__ import annotations

import argparse
import os
import platform


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="print versions, BLAS, threads, GPU status and cache folder")
    p.set_defaults(run=run)


def _blas_lines() -> list:
    """BLAS library and thread count, from threadpoolctl when present, else NumPy's build config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        import numpy  # noqa: F401 - loads the BLAS so threadpoolctl can see it

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return [f"BLAS: {i.get('internal_api')} {i.get('version')} ({i.get('architecture')}), "
                    f"{i.get('num_threads')} threads, {i.get('filepath')}" for i in infos]
    import numpy as np

    config = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return [f"BLAS: {blas.get('name', 'unknown')} {blas.get('version', '')} (threads: see OPENBLAS_NUM_THREADS/OMP_NUM_THREADS)"]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tinygrad_cv import __version__, backend

    print(f"tinygrad-cv {__version__}, Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"NumPy {np.__version__}")
    for line in _blas_lines():
        print(line)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"  {var}={os.environ[var]}")
    print(f"GPU: {backend.gpu_status()}")
    try:
        from tinygrad_cv.io.cache import cache_dir
    except ImportError:
        cache_dir = None
    if cache_dir is not None:
        print(f"cache: {cache_dir()}")
    return 0
