"""Count the lines of the reference core: tensor.py, functional/ without the fast ops' modules, kernels/
without fast/ and cuda.py. The reading path a student follows; the project keeps it at most 2,000 lines."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinygrad_cv"


def reference_core_files():
    files = [PACKAGE / "tensor.py"]
    files += [p for p in sorted((PACKAGE / "functional").glob("*.py")) if "fast" not in p.stem]
    files += [p for p in sorted((PACKAGE / "kernels").glob("*.py")) if p.name != "cuda.py"]
    return files


if __name__ == "__main__":
    total = 0
    for path in reference_core_files():
        n = len(path.read_text().splitlines())
        total += n
        print(f"{n:6d}  {path.relative_to(PACKAGE.parent)}")
    print(f"{total:6d}  reference core (limit 2000)")
