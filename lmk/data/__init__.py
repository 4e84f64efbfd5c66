"""Data: the synthetic face world, real-format readers and writers, datasets and transforms."""

# Real formats, datasets and transforms.
from .errors import AnnotationError, ImageError
from .formats import (check_300vw_root, find_image, read_image, read_jd106, read_pts, read_wflw,
                      read_300vw, read_300vw_videos, verify_image, write_image, write_jd106,
                      write_pts, write_wflw, write_300vw)
from .sources import DATA_NAMES, AnnotationSet, JD106Folder, PtsFolder, WFLWAnnotations, open_sample
from .transforms import Augment
from .dataset import (DatasetItemError, LandmarkDataset, data_label, open_dataset, open_source,
                      to_original)

# The synthetic face world (embedded default data).
from .synth import (DIFFICULTIES, Difficulty, SynthFaces, SynthNegatives,
                    boundary_gradient_ratio)
from .synth_video import SynthVideos, synth_video
from .multitask import HAS_LANDMARKS, MultitaskDataset, landmark_mask, synth_multitask

__all__ = [
    "AnnotationError", "ImageError", "check_300vw_root", "find_image", "read_image", "read_jd106",
    "read_pts", "read_wflw", "read_300vw", "read_300vw_videos", "verify_image", "write_image",
    "write_jd106", "write_pts", "write_wflw", "write_300vw",
    "DATA_NAMES", "AnnotationSet", "JD106Folder", "PtsFolder", "WFLWAnnotations", "open_sample", "Augment",
    "DatasetItemError", "LandmarkDataset", "data_label", "open_dataset", "open_source",
    "to_original",
    "DIFFICULTIES", "Difficulty", "SynthFaces", "SynthNegatives", "boundary_gradient_ratio",
    "SynthVideos", "synth_video",
    "HAS_LANDMARKS", "MultitaskDataset", "landmark_mask", "synth_multitask",
]
