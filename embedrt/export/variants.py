"""`embedrt optimize DIR --out DIR2`: another precision or optimisation of an existing fp32 export.

Every precision's parity is measured against the PyTorch source, so the variant is rebuilt from the source
the manifest records (its fingerprint must still match) with the same settings; only the engine differs.
"""

from __future__ import annotations

import os
from pathlib import Path

from embedrt.errors import ExportError
from embedrt.export.staging import check_not_precious, fingerprint
from embedrt.manifest import Manifest, read_manifest


def optimize_export(
    export_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    precision: str = "fp32",
    optimize: str | None = None,
    provider: str | None = None,
    int8_weights: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Write the `precision`/`optimize`/`provider` variant of the fp32 export at `export_dir` to `out` (int8_weights: see export_text)."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    if manifest.precision != "fp32" or manifest.optimizations:
        raise ExportError(
            f"{export_dir}: already a {manifest.precision} export ({', '.join(manifest.optimizations) or 'unoptimised'}); "
            "`embedrt optimize` starts from a plain fp32 export: give the one this was made from."
        )
    check_not_precious(Path(out).absolute(), [export_dir], "--out")  # the fp32 export is a source too
    settings = dict(precision=precision, optimize=optimize, provider=provider, int8_weights=int8_weights, opset=manifest.opset, overwrite=overwrite)
    if manifest.modality == "text":
        from embedrt.export.text.exporter import export_text
        from embedrt.export.text.source import read_text_source

        assert manifest.text is not None
        path = _recorded_path(export_dir, manifest)
        _check_fingerprint(export_dir, manifest, read_text_source(path).fingerprint_files())
        return export_text(
            path, out, pooling=manifest.pooling, normalize=manifest.normalize, max_length=manifest.text.max_length,
            pool_in_graph=manifest.pooled_in_graph, **settings,
        )
    from embedrt.export.image.exporter import export_image

    record = manifest.source
    if record.get("kind") == "torchvision":
        weights = record.get("weights")
        if weights:
            _check_fingerprint(export_dir, manifest, [Path(weights)])
        source = record["architecture"]
        return export_image(source, out, weights=weights, random_init=bool(record.get("random_init")), seed=int(record.get("seed", 0)),
                            normalize=manifest.normalize, **settings)
    path = _recorded_path(export_dir, manifest)
    return export_image(path, out, normalize=manifest.normalize, **settings)


def _recorded_path(export_dir: Path, manifest: Manifest) -> Path:
    path = manifest.source.get("path")
    if not path or not Path(path).is_dir():
        raise ExportError(
            f"{export_dir}: its source {path!r} is not here any more; the variant is measured against the PyTorch source, "
            "so run `embedrt export ... --precision ...` on the source model instead."
        )
    return Path(path)


def _check_fingerprint(export_dir: Path, manifest: Manifest, files: list[Path]) -> None:
    recorded = manifest.source.get("fingerprint")
    if recorded and fingerprint(files) != recorded:
        raise ExportError(
            f"{export_dir}: the source files {[str(f) for f in files]} changed since this export was made (fingerprint differs); "
            "re-export from the source instead."
        )
