"""The desktop simulator: runs on a board's config, heap estimate, pictures, actor export."""
