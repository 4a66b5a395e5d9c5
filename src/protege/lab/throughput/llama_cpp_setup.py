"""Getting llama.cpp onto this machine for the generation-throughput benchmark, built once and cached.

    python -m protege.lab.throughput.llama_cpp_setup          # install/build both now (what the benchmark does lazily)

Two servers come out of one source release, llama-cpp-python (pinned below):
  * `python -m llama_cpp.server` (llama-cpp-python[server]): installed into the running venv from a wheel kept in
    $PROTEGE_CACHE/wheels (default ~/.cache/protege/wheels); without that wheel it is built with `pip wheel`
    first. This server answers one request at a time (a global lock), so it has no parallel slots.
  * `llama-server`, llama.cpp's own C++ server vendored in the same sdist, which does have parallel slots
    (`--parallel N`, continuous batching): built with CMake, statically linked, into
    $PROTEGE_CACHE/llama.cpp/<version>/llama-server.

The default native build crashes on CPUs with AMX (the repacked AMX kernels), and other engineers share the 2
cores, so both builds use the portable flags in CMAKE_FLAGS, `nice -n 19` and 2 compile jobs. On the busy shared
2-core machine (load 2-6) the wheel took 22 min and llama-server 9 min; from the cache both are instant. A failed
build is reported, never raised: the benchmark prints why and skips the llama.cpp rows.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from protege.models.resolve import cache_dir

from protege.export.llama_source import VERSION  # one llama.cpp version for the bench and export
CMAKE_FLAGS = ["-DGGML_NATIVE=OFF", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_AVX512=OFF",
               "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF",
               "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]
SERVER_DEPS = "import llama_cpp.server.app"  # imports fastapi, uvicorn, sse-starlette too


def wheels_dir() -> Path:
    return cache_dir() / "wheels"


def server_binary() -> Path:
    return cache_dir() / "llama.cpp" / VERSION / "llama-server"


def _build_env() -> dict:
    return {**os.environ, "CMAKE_ARGS": " ".join(CMAKE_FLAGS), "CMAKE_BUILD_PARALLEL_LEVEL": "2"}


def _run(cmd: list[str], log: Path, env: dict | None = None) -> bool:
    with open(log, "ab") as f:
        f.write(f"\n$ {' '.join(cmd)}\n".encode())
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode == 0


def _tail(log: Path, n: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def python_server_ready() -> bool:
    """llama_cpp.server importable in a child process (a broken native library must not kill the caller)."""
    return subprocess.run([sys.executable, "-c", SERVER_DEPS], capture_output=True).returncode == 0


def ensure_python_server(build: bool = True) -> tuple[bool, str]:
    """(installed, what happened): llama-cpp-python[server] in this venv, from the cached wheel or built."""
    if python_server_ready():
        return True, "llama-cpp-python already installed"
    wheels = wheels_dir()
    wheels.mkdir(parents=True, exist_ok=True)
    log = wheels / f"llama-cpp-python-{VERSION}.log"
    pip = [sys.executable, "-m", "pip"]
    cached = sorted(wheels.glob(f"llama_cpp_python-{VERSION}-*.whl"))
    if not cached:
        if not build:
            return False, f"no cached wheel in {wheels} and building was turned off"
        print(f"building llama-cpp-python {VERSION} into {wheels} (about 20 min on 2 shared cores; log: {log})",
              flush=True)
        t0 = time.time()
        ok = _run(["nice", "-n", "19", *pip, "wheel", f"llama-cpp-python[server]=={VERSION}", "-w", str(wheels)],
                  log, _build_env())
        if not ok:
            return False, f"building the llama-cpp-python wheel failed; the end of {log}:\n{_tail(log)}"
        print(f"built in {(time.time() - t0) / 60:.0f} min", flush=True)
    # --find-links: the cached wheel (and the dependency wheels `pip wheel` left beside it) win over a rebuild.
    if not _run([*pip, "install", "--prefer-binary", "--find-links", str(wheels),
                 f"llama-cpp-python[server]=={VERSION}"], log, _build_env()):
        return False, f"installing llama-cpp-python from {wheels} failed; the end of {log}:\n{_tail(log)}"
    if not python_server_ready():
        return False, f"llama-cpp-python installed but `{SERVER_DEPS}` fails in a fresh interpreter"
    return True, f"installed llama-cpp-python {VERSION} from {wheels}"


def ensure_llama_server(build: bool = True) -> tuple[bool, str]:
    """(present, what happened): the C++ llama-server binary, built from the llama-cpp-python sdist once."""
    binary = server_binary()
    if binary.exists():
        return True, f"llama-server {VERSION} cached at {binary}"
    if not build:
        return False, f"no llama-server at {binary} and building was turned off"
    binary.parent.mkdir(parents=True, exist_ok=True)
    log = binary.parent / "build.log"
    from protege.export.llama_source import ConverterUnavailable, sdist_path

    try:
        sdist = sdist_path()  # the same cached sdist protege export takes llama.cpp's converter from
    except ConverterUnavailable as e:
        return False, str(e)
    print(f"building llama-server {VERSION} (about 10 min on 2 shared cores; log: {log})", flush=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir=binary.parent) as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        src = next(Path(tmp).glob("llama_cpp_python-*")) / "vendor" / "llama.cpp"
        build_dir = Path(tmp) / "build"
        configure = ["cmake", "-S", str(src), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                     "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_SERVER=ON",
                     "-DLLAMA_BUILD_TOOLS=ON", *CMAKE_FLAGS]
        built = build_dir / "bin" / "llama-server"
        if not (_run(configure, log) and _run(["nice", "-n", "19", "cmake", "--build", str(build_dir), "-j", "2",
                                               "--target", "llama-server"], log) and built.exists()):
            return False, f"building llama-server failed; the end of {log}:\n{_tail(log)}"
        tmp_bin = binary.with_suffix(".tmp")
        shutil.copy2(built, tmp_bin)
        os.replace(tmp_bin, binary)
    print(f"built in {(time.time() - t0) / 60:.0f} min", flush=True)
    return True, f"built llama-server {VERSION} into {binary}"


if __name__ == "__main__":
    for ensure in (ensure_python_server, ensure_llama_server):
        print(ensure()[1])
