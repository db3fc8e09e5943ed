"""Regenerate the Python stubs from protos/ — the one command for codegen.

    python -m gateway.proto.codegen          # rewrite gateway/proto/silian/v1/
    python -m gateway.proto.codegen --check  # exit 1 if the committed stubs are stale

protoc names modules after the proto package (``silian.v1``); the layout keeps
them under ``gateway.proto``, so imports in the output are rewritten to
``gateway.proto.silian.v1``.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = Path(__file__).resolve().parent
GENERATED = OUT_ROOT / "silian"

_IMPORT_FROM = re.compile(r"\bfrom silian\.v1 import\b")
_DOTTED = re.compile(r"(?<![\w.])silian\.v1\.(\w+_pb2(?:_grpc)?)\b")


def _rewrite(text: str) -> str:
    text = _IMPORT_FROM.sub("from gateway.proto.silian.v1 import", text)
    return _DOTTED.sub(r"gateway.proto.silian.v1.\1", text)


def generate(out_dir: Path) -> None:
    """Generate *_pb2.py, *_pb2_grpc.py and .pyi files for every proto into out_dir."""
    import grpc_tools
    from grpc_tools import protoc  # dev dependency, imported only here

    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    bindir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in out_dir.rglob("*.py*"):
        path.write_text(_rewrite(path.read_text()))
    for package in {p.parent for p in out_dir.rglob("*_pb2.py")} | {out_dir / "silian"}:
        (package / "__init__.py").touch()


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def stale_files() -> list[str]:
    """Names of generated files that differ from what protos/ would generate now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        want = _files(fresh / "silian")
        have = _files(GENERATED) if GENERATED.exists() else set()
        stale = sorted(want ^ have)
        stale += sorted(
            name
            for name in want & have
            if not filecmp.cmp(fresh / "silian" / name, GENERATED / name, shallow=False)
        )
        return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            hint = "stale generated files (run python -m gateway.proto.codegen):"
            print(hint, *stale, sep="\n  ")
            return 1
        print("generated code is up to date")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        shutil.rmtree(GENERATED, ignore_errors=True)
        shutil.copytree(Path(tmp) / "silian", GENERATED)
    print(f"wrote {GENERATED.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
