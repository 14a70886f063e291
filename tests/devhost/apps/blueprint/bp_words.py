def greeting(name: str) -> str:
    return f"Good day, {name}"
