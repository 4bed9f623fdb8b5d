"""Readers of spectrum files: one module per format family, each file's format told by its content.

- :mod:`~ramanid.io.files`: what users call (``read_spectrum_files``, ``read_one``, ``read_blocks``,
  ``sniff``, ``describe_file``);
- text: :mod:`~ramanid.io.rruff` (RRUFF files and zips), :mod:`~ramanid.io.delimited` (numeric
  tables in any dialect), :mod:`~ramanid.io.textfiles` (text exports: LabSpec, BWSpec, columns),
  :mod:`~ramanid.io.tables` (wide CSV, ``.npy``), :mod:`~ramanid.io.jcampdx` (JCAMP-DX);
- binary, through their maintained packages: :mod:`~ramanid.io.rosetta` (Renishaw .wdf, LabSpec
  XML, TriVista), :mod:`~ramanid.io.spc` (Galactic SPC), :mod:`~ramanid.io.opus` (Bruker OPUS);
- the x axis: :mod:`~ramanid.io.axis` (units to Raman shift), :mod:`~ramanid.io.calibration`
  (an instrument's correction from a standard).
"""
