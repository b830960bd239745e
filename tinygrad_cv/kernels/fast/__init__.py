"""CPU fast paths: the second chapter, read after the reference kernels in kernels/."""
