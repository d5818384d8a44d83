"""minigen.kernels: the hand-written kernels, each in its own folder with a plain NumPy
reference, a Numba CPU version and a CUDA version behind one signature."""
