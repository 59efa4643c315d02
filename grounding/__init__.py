"""openvocab detectors (Grounding DINO) and mask heads (TAP, SAM).

Importing this package registers its components into ``openvocab.registry``.
"""
