"""Plots and widgets of the course (matplotlib; the Agg backend works headless).

* :mod:`lmk.viz.style` -- the course's figure sizes and fonts (:func:`use`, :func:`subplots`,
  :func:`figure`, legends off the data); every notebook figure is made with them.
* :mod:`lmk.viz.basics` -- faces and layouts, heatmaps and decoders, CED and learning curves,
  the upsampling blocks of notebook 03, and :func:`explore` (an ipywidgets panel, or the
  default view when no front end is attached).
* :mod:`lmk.viz.refinement` -- CropNet refinement (notebook 04): crops drawn on feature maps,
  loss landscapes, per-stage corrections.
* :mod:`lmk.viz.cascade` -- the CCNN's heatmap cascade (notebook 05).
* :mod:`lmk.viz.multitask` -- ATPN's cheap heatmap on a face, its three training stages (notebook 06).
* :mod:`lmk.viz.tracking` -- tracked videos: frames, crops, pose axes, NME over time (notebook 06).

Everything is importable from ``lmk.viz``.
"""

from . import style
from .basics import (draw_landmarks, draw_layout, draw_pose_axes, explore, landmark_options, plot_ced,
                     plot_deconv_footprint, plot_learning_curve, plot_pixel_shuffle,
                     show_decoders, show_decoding, show_heatmap, show_heatmap_marginals,
                     show_layout, show_quantization)
from .cascade import example_landmarks, plot_ablation, plot_unit_errors, show_cascade
from .multitask import plot_stages, show_cheap_heatmap
from .refinement import (bilinear_weights, crop_samples, draw_crop, draw_refinement,
                         plot_landscape, plot_landscapes, plot_profiles, plot_stage_corrections,
                         plot_stage_nme, show_patch)
from .style import figure, legend_above, legend_below, legend_outside, subplots
from .tracking import (crop_outline, draw_tracked_frame, plot_tracking_nme, show_track_frame,
                       show_track_strip)

__all__ = ["draw_landmarks", "draw_layout", "draw_pose_axes", "explore", "plot_ced",
           "plot_deconv_footprint", "plot_learning_curve", "plot_pixel_shuffle", "show_decoders",
           "show_decoding", "show_heatmap", "show_heatmap_marginals", "show_quantization"]
__all__ += ["style", "figure", "subplots", "legend_above", "legend_below", "legend_outside", "landmark_options", "show_layout"]
__all__ += ["example_landmarks", "plot_ablation", "plot_unit_errors", "show_cascade"]
__all__ += ["bilinear_weights", "crop_samples", "draw_crop", "draw_refinement", "plot_landscape",
            "plot_landscapes", "plot_profiles", "plot_stage_corrections", "plot_stage_nme",
            "show_patch"]
__all__ += ["crop_outline", "draw_tracked_frame", "plot_tracking_nme", "show_track_frame", "show_track_strip"]
__all__ += ["plot_stages", "show_cheap_heatmap"]
