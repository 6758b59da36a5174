"""Types of the compiled markup scan (scan.pyx): see its docstring."""

def markup_counts(
    markup: str, depth_step: dict[str, int], formatting_step: dict[str, int]
) -> tuple[int, int, int, int, int, int, int, int, int, int, int, int, int] | None: ...
