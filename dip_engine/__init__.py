"""Deep Image Prior engine: pure PyTorch, no files, no orchestration.

from dip_engine import restore
result = restore(noisy, "denoise")        # noisy: float C×H×W in [0, 1]
result.image, result.iterations, result.stop_reason

from dip_engine import restore_video
for frame in restore_video(frames, "denoise"):   # frames: an iterable of C×H×W tensors
    frame.image, frame.cold, frame.restoration.iterations

from dip_engine import fit_batch            # K problems of one shape in one grouped network
results = fit_batch(problems, net_config, fit_config, seeds=[0, 1, 2, 3], device=device)

from dip_engine import TilingConfig          # a large image as overlapping tiles, blended with no seam
result = restore(scan, "denoise", tiling=TilingConfig(tile=512, overlap=32))
result = restore(scan, "denoise", tiling=TilingConfig(memory_budget=8 * 2**30))   # tiles chosen to fit
"""

from dip_engine.batch import fit_batch
from dip_engine.config import (
    FitConfig,
    GuardConfig,
    NetConfig,
    Performance,
    RestoreConfig,
    StoppingConfig,
)
from dip_engine.fit import Problem, fit
from dip_engine.functional import psnr, ssim
from dip_engine.operators import (
    Denoising,
    FlashNoFlash,
    FlashPair,
    Inpainting,
    Operator,
    SuperResolution,
    block_mask,
    synthesize_flash_pair,
)
from dip_engine.restore import restore
from dip_engine.result import FitState, History, Restoration
from dip_engine.step import CompiledSteps, performance_for
from dip_engine.tasks import Task, get_task, task_names
from dip_engine.temporal import TemporalConsistency
from dip_engine.tiling import Tile, TilingConfig, restore_tiles
from dip_engine.video import ChainConfig, FrameResult, restore_video

__all__ = [
    "ChainConfig",
    "CompiledSteps",
    "Denoising",
    "FitConfig",
    "FitState",
    "FlashNoFlash",
    "FlashPair",
    "FrameResult",
    "GuardConfig",
    "History",
    "Inpainting",
    "NetConfig",
    "Operator",
    "Performance",
    "Problem",
    "RestoreConfig",
    "Restoration",
    "StoppingConfig",
    "SuperResolution",
    "Task",
    "TemporalConsistency",
    "Tile",
    "TilingConfig",
    "block_mask",
    "fit",
    "fit_batch",
    "get_task",
    "performance_for",
    "psnr",
    "restore",
    "restore_tiles",
    "restore_video",
    "ssim",
    "synthesize_flash_pair",
    "task_names",
]
