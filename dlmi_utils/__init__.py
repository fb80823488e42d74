"""dlmi_utils: the helper package of the DLMI labs.

Small modules, one idea each: ``fourier`` (centered orthonormal FFTs), ``metrics``,
``losses``, ``noise``, ``viz``, ``data`` (every data set the labs use), ``device``
(device choice and seeding) and ``notebooks`` (student labs generated from solutions).
"""

__version__ = "0.1.0"
