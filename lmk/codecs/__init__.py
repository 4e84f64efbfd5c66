"""Codecs: landmarks <-> network targets, one per output representation.

A codec is ``encode(landmarks) -> targets`` and ``decode(outputs) -> landmarks``, with the same
signatures for every representation (:class:`Codec`, :mod:`lmk.codecs.codec`):

* :class:`HeatmapCodec` -- one 2D Gaussian heatmap per landmark (Earp et al. (2021), Sec. 2).
* :class:`MarginalCodec` -- two 1D heatmaps per landmark, the marginals of the 2D Gaussian on
  the x and y axes (Yin et al. (2020), Eq. 12): ``O(N L)`` numbers instead of ``O(N L^2)``.
* :class:`CoordinateCodec` -- normalised coordinates for regression heads.
* :class:`StageCodec` -- one estimate of a multi-stage refinement model (FFLD, CCNN).

Under them, plain functions in heatmap cells: :func:`gaussian_heatmaps`,
:func:`gaussian_marginals` (:mod:`lmk.codecs.targets`) and the decoders :func:`decode_heatmaps`,
:func:`decode_marginals` with the methods of :data:`METHODS` (:mod:`lmk.codecs.decoders`).

Heatmap coordinates follow the project convention: cell ``(i, j)`` of a heatmap is centred on
the integer point ``(x=i, y=j)``. The codecs map between input pixels and heatmap cells with
:func:`lmk.geometry.resize_points`, which keeps pixel edges aligned::

      input, 4 px   |--0--|--1--|--2--|--3--|
      heatmap, 2 px |-----0-----|-----1-----|     input x = 1.5  <->  heatmap x = 0.5

Everything is torch underneath: encoding is differentiable in the points, and ``"soft_argmax"``
and ``"dark"`` in the map values (``argmax`` and ``shift`` are piecewise constant), so a model
can be trained through a decoder (integral regression).
"""

from .codec import (CODECS, Codec, CoordinateCodec, HeatmapCodec, LandmarksOutput, MarginalCodec,
                    StageCodec, build_codec)
from .reference import dark_reference_loop
from .decoders import decode_heatmaps, decode_marginals
from .targets import METHODS, gaussian_heatmaps, gaussian_marginals

__all__ = ["METHODS", "gaussian_heatmaps", "gaussian_marginals", "decode_heatmaps",
           "decode_marginals", "Codec", "HeatmapCodec", "MarginalCodec", "CoordinateCodec", "StageCodec",
           "LandmarksOutput", "CODECS", "build_codec", "dark_reference_loop"]
