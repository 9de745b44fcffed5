"""Django-free ML kit: numpy/pandas/torch in, dataclasses out.

Nothing in this package may import Django or a project app; the apps import it.
"""
