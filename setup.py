"""Packaging metadata is in setup.cfg; only the package list is here, because it maps two top-level folders
of the checkout into the package: ``configs/`` -> ``openvocab/configs`` and ``demo/`` -> ``openvocab/demo``
(so a wheel runs ``openvocab label ... --config tiny_random`` and ``openvocab demo``; see openvocab/config.py)."""
from setuptools import find_packages, setup

SHIPPED = {"openvocab.configs": "configs", "openvocab.demo": "demo"}

setup(
    packages=find_packages(include=["openvocab", "openvocab.*", "tagging", "tagging.*",
                                    "grounding", "grounding.*"]) + list(SHIPPED),
    package_dir=SHIPPED,
    package_data={"openvocab.configs": ["**/*.py"],
                  "openvocab.demo": ["*.md", "*.json", "images/*.jpg"]},
)
