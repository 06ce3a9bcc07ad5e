"""dce: DCE-MRI analysis for spinal bone lesions treated with radiation.

Pure numerics live in the submodules (``signal``, ``t1``, ``aif``, ``models``, ``fit``,
``semiquant``); file input and output only in :mod:`dce.io`.
"""

__version__ = "0.1.0"
