"""nibabel, imported without pydicom when pydicom is not loaded yet.

``nibabel.nifti1`` imports pydicom at import time (about 0.1-0.15 s of CPU, measured with
``python -X importtime``) only to decode DICOM header extensions (NIfTI extension code 2)
into pydicom datasets. :mod:`dce` neither reads nor writes such extensions, and a rule job
that only reads and writes NIfTI (concentration, aif, fit, roi) should not pay for it: the
import below hides pydicom from nibabel (``sys.modules["pydicom"] = None`` makes its import
fail, which nibabel handles as "pydicom not installed"; such extensions are then kept as
raw bytes) and then unhides it, so ``import pydicom`` later in the process works as usual.
Once pydicom (or nibabel) is loaded, this is a plain import.
"""

from __future__ import annotations

from dce.io._hide import hidden

with hidden("pydicom", importer="nibabel"):
    import nibabel
    import nibabel.volumeutils as nibabel_volumeutils

__all__ = ["nibabel", "nibabel_volumeutils"]
