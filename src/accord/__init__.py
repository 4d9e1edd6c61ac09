"""Accord: licensed-by-design AI music.

Rights holders register catalogs and grant licences; a model trains only on what
those licences allow; outputs are checked and attributed; royalties are auditable.
"""

__version__ = "0.1.0"
