from setuptools import find_packages, setup

setup(
    name="minigen",
    version="0.1.0",
    description="Deep generative models from scratch on NumPy and CuPy, with their own "
                "autodiff engine and kernels",
    python_requires=">=3.10",
    # kernels/ is installed as minigen.kernels: every folder in it is one kernel package
    packages=find_packages(include=["minigen", "minigen.*"]) + ["minigen.kernels"]
    + [f"minigen.kernels.{name}" for name in find_packages("kernels")],
    package_dir={"minigen.kernels": "kernels"},
    package_data={"": ["*.cu"]},  # the CUDA C sources beside each kernel's cuda.py
    install_requires=["numpy>=1.26", "scipy>=1.11", "numba>=0.59", "scikit-learn>=1.3",
                      "pillow>=10", "tqdm>=4.60",
                      "threadpoolctl>=3.1"],  # already a scikit-learn dependency
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.80", "mpmath>=1.3"],
        "bench": ["torch>=2.1"],
        "gpu": ["cupy-cuda13x>=14"],
    },
    entry_points={"console_scripts": ["minigen=minigen.cli:main"]},
)
