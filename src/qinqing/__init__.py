"""Qinqing (亲情): medical-insurance family accounts, mutual aid and unbinding."""

__version__ = "0.1.0"
