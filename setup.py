"""Install tinygrad_cv (the framework) and models (VGG, autoencoders)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "tinygrad_cv" / "__init__.py").read_text()).group(1)

setup(
    name="tinygrad_cv",
    version=VERSION,
    description="A from-scratch autograd on NumPy/CuPy for style transfer, feature visualisation and autoencoders",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["tinygrad_cv", "tinygrad_cv.*", "models", "models.*"]),
    package_data={"models": ["imagenet_classes.txt"]},
    install_requires=[
        "numpy>=1.22",
        "scipy>=1.11",  # L-BFGS-B (the callback API used needs 1.11)
        "pillow>=9.0",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "scikit-learn>=1.0",  # the bundled 8x8 digits and the sample photos china.jpg / flower.jpg
        "scikit-image>=0.19",  # bundled photos (astronaut, chelsea, coffee, ...): attribution checks, fast-style training crops
        "threadpoolctl>=3",  # the fast conv path runs its blocks on threads with BLAS held to one
    ],
    extras_require={
        # A binary CuPy wheel for your CUDA major version; see README, "GPU".
        "gpu": ["cupy-cuda12x"],
        "gpu13": ["cupy-cuda13x"],
        "test": ["pytest>=7", "hypothesis>=6"],
    },
    entry_points={"console_scripts": ["tinygrad-cv=tinygrad_cv.cli:main"]},
    license="MIT",
)
