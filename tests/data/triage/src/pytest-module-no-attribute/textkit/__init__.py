from textkit.wrap import wrap_lines

__all__ = ["wrap_lines"]
