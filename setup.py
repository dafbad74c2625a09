"""The one compiled part of the package; everything else is in pyproject.toml.

``exchange.departments._kernels`` holds the departments' bulk kernels for cold exports: a
chunk's NDJSON from its fields' byte matrices in one pass, and the city's random draws,
hash and keyed permutation over arrays (in NumPy, joining and compressing the bytes was
half of a household chunk's derivation: bench/README.md, "cold start"). It is optional:
where no C compiler is found the install goes on, and ``jsonbytes`` and ``prng_arrays``
do the same in NumPy, slower. (Declared here, not in pyproject.toml, where setuptools
still calls extension modules experimental and warns at every install.)
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "exchange.departments._kernels",
            sources=["src/exchange/departments/_kernels.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
