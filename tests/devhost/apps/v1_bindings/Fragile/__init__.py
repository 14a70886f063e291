import azure.functions as func


def main(text: str, done: func.Out[str]) -> None:
    if text == "poison":
        raise ValueError("this message always fails")
    done.set(text)
