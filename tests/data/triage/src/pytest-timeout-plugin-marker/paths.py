def count_paths(rows, cols):
    """Lattice paths from the top-left to the bottom-right corner, moving right or down."""
    if rows == 0 or cols == 0:
        return 1
    return count_paths(rows - 1, cols) + count_paths(rows, cols - 1)
