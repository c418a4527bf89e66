"""``compare``, ``methods`` and ``weights``: looking at results and managing networks."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ParameterError

RAW = argparse.RawDescriptionHelpFormatter
COMPARE_EXAMPLES = """Examples:
  urst-dask compare out.zarr                      seam score and stroke size of a finished store
  urst-dask compare out.zarr whole.zarr           also PSNR and SSIM against a --whole run
  urst-dask compare photo.tif --stride 512        seams of an image made with 512-px tiles
  urst-dask compare frames-out/ frames/ --video   flicker of a stylized sequence against its content
"""
METHODS_EXAMPLES = """Examples:
  urst-dask methods                               networks and the state of their weight files
  urst-dask methods --weights /data/weights       the same for another weights folder
"""
WEIGHTS_EXAMPLES = """Examples:
  urst-dask weights fetch                         every network with a public download
  urst-dask weights fetch wct16x microast --dest /data/weights
  urst-dask weights where                         the folder in use
"""
FETCH_EXAMPLES = """Examples:
  urst-dask weights fetch                         every network with a public download
  urst-dask weights fetch microast                one network, into $URST_DASK_WEIGHTS or the user cache
  urst-dask weights fetch wct16x --dest /data/weights
"""
WHERE_EXAMPLES = """Examples:
  urst-dask weights where                         $URST_DASK_WEIGHTS, else the user cache
  URST_DASK_WEIGHTS=/data/weights urst-dask weights where
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="seam score and stroke size of an image (and PSNR/SSIM against a reference)",
                       description="Quality figures of an image, read chunk by chunk: the seam score at the tile "
                                   "stride, the stroke size, and PSNR/SSIM against a reference of the same shape.",
                       epilog=COMPARE_EXAMPLES, formatter_class=RAW)
    p.add_argument("image", help="an output store or an image file")
    p.add_argument("reference", nargs="?", help="the image to compare with (e.g. a --whole result)")
    p.add_argument("--stride", type=int, help="tile stride for the seam score (default: the store's, else 1000)")
    p.add_argument("--video", action="store_true", help="IMAGE (and REFERENCE, default: its recorded input) are "
                   "frame sequences or videos: report the flicker of IMAGE against its content")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("methods", help="list the style networks and whether their weights are found",
                       epilog=METHODS_EXAMPLES, formatter_class=RAW)
    p.add_argument("--weights", help="weights folder to check (default: $URST_DASK_WEIGHTS, then the user cache)")
    p.set_defaults(func=_cmd_methods)

    p = sub.add_parser("weights", help="manage pretrained weights", epilog=WEIGHTS_EXAMPLES, formatter_class=RAW)
    wsub = p.add_subparsers(dest="wcmd", required=True, title="commands", metavar="ACTION")
    f = wsub.add_parser("fetch", help="download weights from their upstream URLs, verifying sha256",
                        epilog=FETCH_EXAMPLES, formatter_class=RAW)
    f.add_argument("methods", nargs="*", help="methods to fetch (default: all with a public download)")
    f.add_argument("--dest", help="folder (default: $URST_DASK_WEIGHTS, then the user cache)")
    f.add_argument("--mirror", help="http://host:port replacing the upstream host (mirrors, tests)")
    wsub.add_parser("where", help="print the weights folder in use", epilog=WHERE_EXAMPLES, formatter_class=RAW)
    p.set_defaults(func=_cmd_weights)


def _cmd_compare(a: argparse.Namespace) -> None:
    from ..api import compare

    if a.video:
        f = compare(a.image, a.reference, stride=a.stride, video=True)  # a --stride is refused, not ignored
        print(f"flicker: {f['flicker']:.3f} (stylized change {f['stylized_change']:.5f} / content change "
              f"{f['content_change']:.5f}, {f['pairs']} frame pairs, {f['cuts_skipped']} across cuts skipped)")
        print("  motion-compensated frame-to-frame change of the stylized frames per unit of the content's; lower is steadier")
        return
    figures = compare(a.image, a.reference, stride=a.stride)
    print(f"seam score (stride {figures['stride']}): " + (f"{figures['seam']:.3f}" if figures["seam"] is not None
                                                          else "n/a (no tile boundary 48 px inside the image)"))
    print("  1.0: tile boundaries as smooth as the rest of the image; above ~1.1 seams start to show")
    if figures.get("stroke"):
        st = figures["stroke"]
        print(f"stroke size: {st['wavelength']:.1f} px dominant wavelength (centroid {st['centroid']:.1f} px, "
              f"{int(st['tile'])}-px tiles)")
    if a.reference:
        print(f"PSNR: {figures['psnr']:.2f} dB")
        print(f"SSIM: {figures['ssim']:.4f}")


def _cmd_methods(a: argparse.Namespace) -> None:
    from ..io.weights import resolve_weights_dir
    from ..models import METHODS, weights_report

    wdir = resolve_weights_dir(a.weights)
    print(f"weights folder: {wdir}")
    for name, files in weights_report(wdir).items():
        ok = sum(v == "ok" for v in files.values())
        print(f"{name:10s} {ok}/{len(files)} files ok  {METHODS[name].summary}")
        for rel, status in files.items():
            if status != "ok":
                print(f"{'':10s}   {status:8s} {rel}")


def _cmd_weights(a: argparse.Namespace) -> None:
    import os
    import sys

    from ..io.weights import ENV_VAR, default_cache_dir, fetch, resolve_weights_dir
    from ..models import METHODS, method_entry

    if a.wcmd == "where":
        print(resolve_weights_dir(None))
        return
    if a.dest is not None and not a.dest:
        raise ParameterError("dest='': an empty path; give a folder, or leave --dest out")
    # a folder named by --dest or the variable is made if missing: that is where the files should go
    dest = Path(a.dest or os.environ.get(ENV_VAR) or default_cache_dir()).expanduser()
    names = a.methods or list(METHODS)
    catalogue = [wf for n in names for wf in method_entry(n).catalogue]
    files = [wf for wf in catalogue if wf.url]
    if not files:
        raise ParameterError(f"methods={names!r}: nothing with a public download")

    def log(line: str) -> None:  # the per-file lines are progress: stderr, and silent with -q
        if not a.quiet:
            print(line, file=sys.stderr, flush=True)

    fetch(files, dest, mirror=a.mirror, log=log)
    for wf in catalogue:
        if not wf.url and a.methods:
            log(f"by hand  {wf.relpath} (no public download: copy it into {dest / wf.relpath} to use it)")
    print(f"weights in {dest}")
