"""Notebook helpers: code that serves one notebook, one module each, named for it.

* :mod:`~lmk.lessons.n04_landscape` -- notebook 04 (Yan et al. 2020): edge maps, loss
  landscapes and gradient checks of the bilinear crop.
* :mod:`~lmk.lessons.n05_cascade` -- notebook 05 (Mahpod et al. 2018): the CCNN's shape table,
  per-unit errors, the K ablation and cost rows.
* :mod:`~lmk.lessons.n06_multitask` -- notebook 06 (Xia et al. 2022, Yin et al. 2020): ATPN's
  shape table, one row of figures per model, Table 4's tracking rows.

They sit above the library, the families, the recipes and the zoo (they may use all of them)
and below only :mod:`lmk.course` and :mod:`lmk.bench`; nothing in the library imports them.
"""
